"""The project's virtualenv and the helm/kubectl binaries: standard library only, run before anything
is installed (`python3 -m tools.setup.venv`, `python3 -m tools.setup.helm`)."""
