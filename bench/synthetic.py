"""The synthetic catalog both benchmarks deploy: N services shaped like the seed's `threads` (an own
key and a shared one, env, a release), and the namespace quota that holds N suites starting on
install (the program refuses a smaller one when it loads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def synthetic_catalog(project: Path, services: dict[str, dict[str, Any]]) -> None:
    """Replace the project's catalog services (name -> entry, entries from `seed_template`)."""
    catalog = yaml.safe_load((project / "catalog.yaml").read_text())
    catalog["services"] = services
    (project / "catalog.yaml").write_text(yaml.safe_dump(catalog))


def seed_template(project: Path) -> dict[str, Any]:
    entry: dict[str, Any] = yaml.safe_load((project / "catalog.yaml").read_text())["services"]["threads"]
    return entry


def size_quota(stack_file: Path, services: int) -> None:
    """Set the stack's resourceQuota to hold `services` suites of the chart's default size."""
    stack = yaml.safe_load(stack_file.read_text())
    stack["config"]["testinfra:resourceQuota"] = {
        "pods": services, "requestsCpu": str(services // 4 + 1), "requestsMemory": f"{services // 2 + 1}Gi",
        "limitsCpu": str(services), "limitsMemory": f"{services}Gi",
        # The chart's default 256Mi/2Gi of ephemeral storage per suite.
        "requestsEphemeralStorage": f"{services // 4 + 1}Gi", "limitsEphemeralStorage": f"{2 * services}Gi"}
    stack_file.write_text(yaml.safe_dump(stack))
