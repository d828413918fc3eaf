"""Benchmark: evaluate the real program under the mock runtime with N synthetic services, and the
floor (the bare Pulumi SDK registering as many plain resources) in the same process.

    python bench/evaluate.py --services 100
prints one JSON line: services, resources, program_s, floor_s, ratio (= program_s / floor_s).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

import yaml  # noqa: E402

from offline.harness import evaluate, stack_config  # noqa: E402

FLOOR_PROGRAM = '''
import pulumi
count = int(pulumi.Config().require("count"))
for i in range(count):
    pulumi.CustomResource("bench:index:Plain", f"r{i}", {"index": i, "labels": {"a": "b"}})
'''


def synthetic_project(root: Path, services: int) -> Path:
    project = root / "program"
    project.mkdir()
    for name in ("__main__.py", "Pulumi.yaml", "Pulumi.staging.yaml"):
        shutil.copy(PROJECT_DIR / name, project / name)
    for name in ("components", "charts"):
        (project / name).symlink_to(PROJECT_DIR / name)
    catalog = yaml.safe_load((PROJECT_DIR / "catalog.yaml").read_text())
    template = catalog["services"]["threads"]  # secrets (own + shared key), env and a release
    template = {**template, "env": {"SERVICE_URL": "http://svc:8080"},
                "requiredEnv": [*template["requiredEnv"], "SERVICE_URL"]}
    catalog["services"] = {f"svc-{i:04d}": template for i in range(services)}
    (project / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    return project


def floor_project(root: Path) -> Path:
    project = root / "floor"
    project.mkdir()
    (project / "__main__.py").write_text(FLOOR_PROGRAM)
    return project


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = synthetic_project(Path(tmp), args.services)
        config, secret_keys = stack_config("staging", project_dir=project)
        evaluate("staging", project_dir=project, config=config, secret_keys=secret_keys)  # warm imports
        program_s, resources = float("inf"), 0
        for _ in range(args.repeat):
            start = time.perf_counter()
            ev = evaluate("staging", project_dir=project, config=config, secret_keys=secret_keys)
            program_s = min(program_s, time.perf_counter() - start)
            resources = len(ev.resources)
        floor = floor_project(Path(tmp))
        floor_config = {"testinfra:count": str(resources)}
        no_vault = lambda mount, path: []  # noqa: E731 - the floor declares no Vault keys
        evaluate("staging", project_dir=floor, config=floor_config, external_vault=no_vault)
        floor_s = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            evaluate("staging", project_dir=floor, config=floor_config, external_vault=no_vault)
            floor_s = min(floor_s, time.perf_counter() - start)
    print(json.dumps({
        "services": args.services, "resources": resources, "program_s": round(program_s, 3),
        "floor_s": round(floor_s, 3), "ratio": round(program_s / floor_s, 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
