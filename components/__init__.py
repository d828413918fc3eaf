"""Reusable ComponentResources of the integration-test infrastructure.

One component per module; each takes one typed args object of plain values (decided in `config/`),
registers its children through the providers' generated SDK classes (pulumi_kubernetes,
pulumi_vault, pulumi_random) with `parent=self`, and ends in `register_outputs`.
"""
