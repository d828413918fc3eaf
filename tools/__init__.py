"""Everything outside the product that builds, starts and checks it. Three packages, none imported by
the product (config, components, offline, live, policy):

- `tools.setup`: the project's virtualenv and helm/kubectl, standard library only (they run before
  anything is installed);
- `tools.toolchain`: the end-to-end toolchain built from Go modules, the Vault stand-in provider, ESO's
  schemas, and the rule of when `make e2e` runs;
- `tools.localenv`: the local environment (API server, node, OpenBao, ESO, images, PKI, S3) and the
  rehearsals of staging and prod on it.

`tools/deploy/` holds the two shell wrappers `make preview|up|destroy` run (no Python package).
Run a module as `python -m tools.<package>.<module>` from the project's root (the Makefile does).
"""
