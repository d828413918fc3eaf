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
    """The catalog entry every synthetic service copies: `threads` (a suite with secrets and env), or the
    catalog's first service when a team's catalog has none of that name."""
    services: dict[str, dict[str, Any]] = yaml.safe_load((project / "catalog.yaml").read_text())["services"]
    return services.get("threads") or services[sorted(services)[0]]


# Stack settings keyed by the committed catalog's services and keys: the synthetic catalog has
# neither, so a team's `serviceOverrides.graph` or `secretSources.graph` would name nothing there.
PER_SERVICE_SETTINGS = ("testinfra:serviceOverrides", "testinfra:secretSources", "testinfra:secretValues")


def size_quota(stack_file: Path, services: int) -> None:
    """The stack for a synthetic catalog: its resourceQuota holds `services` suites of the chart's
    default size, and the settings that name the committed catalog's services and keys are dropped."""
    stack = yaml.safe_load(stack_file.read_text())
    for key in PER_SERVICE_SETTINGS:
        stack["config"].pop(key, None)
    stack["config"]["testinfra:resourceQuota"] = {
        "pods": services, "requestsCpu": str(services // 4 + 1), "requestsMemory": f"{services // 2 + 1}Gi",
        "limitsCpu": str(services), "limitsMemory": f"{services}Gi",
        # The chart's default 256Mi/2Gi of ephemeral storage per suite.
        "requestsEphemeralStorage": f"{services // 4 + 1}Gi", "limitsEphemeralStorage": f"{2 * services}Gi"}
    stack_file.write_text(yaml.safe_dump(stack))
