"""Everything decided from catalog.yaml + Pulumi.<stack>.yaml; no Pulumi resources.

naming (every name, one place) -> types -> catalog / stack (schemas) -> model (resolved) ->
files (reading YAML and the stack files as the CLI does) -> loading (all errors at once).
"""
