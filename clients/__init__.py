"""One adapter per outside system, and nothing else: Kubernetes (kubernetes: the API client, the
cluster a run drives, what verify and recover read, Helm's release records in helm_records), Vault
(vault: hvac, never following a redirect) and the Pulumi CLI (pulumi). Imports only `config`; the
commands in `deploy`, `runs` and `ci` depend on narrow Protocols these satisfy."""
