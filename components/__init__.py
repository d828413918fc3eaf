"""Reusable ComponentResources of the integration-test infrastructure and the settings they take.

One component per module; each takes one typed args object, parents its children to itself
and ends in `register_outputs`. Names and paths are decided only in `settings`.
"""
