"""The end-to-end toolchain: every binary of toolchain.toml built from the Go module proxy (build), the
Vault provider's stand-in (standin_providers, standin_kinds), ESO's CRD schemas from the pinned module
(eso_schemas), and when `make e2e` runs its tests (e2e)."""
