"""Benchmark: evaluate the real program under the mock runtime with N synthetic services, and in
the same process two references:

- floor: the bare Pulumi SDK registering as many plain resources (two small inputs each);
- replay: the bare SDK registering exactly what the program declared -- same types, names,
  parents and inputs, through the untyped `CustomResource`/`ComponentResource` -- so
  program_s - replay_s is what the program's own code and the typed SDK classes add.

    python -m bench.evaluate --services 100
prints one JSON line: services, resources, program_s, floor_s, ratio (= program_s / floor_s),
replay_s, ratio_to_replay (= program_s / replay_s). Times are the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench.record import record
from bench.synthetic import seed_template, size_quota, synthetic_catalog
from config.files import stack_config
from config.loading import load_settings
from offline.harness import Evaluation, declared_vault, evaluate, run_program

PROJECT_DIR = Path(__file__).resolve().parent.parent

FLOOR_PROGRAM = '''
import pulumi
count = int(pulumi.Config().require("count"))
for i in range(count):
    pulumi.CustomResource("bench:index:Plain", f"r{i}", {"index": i, "labels": {"a": "b"}})
'''


REPLAY_PROGRAM = '''
import json
from pathlib import Path

import pulumi

by_urn = {}
for d in json.loads(Path(__file__).with_name("declarations.json").read_text()):
    opts = pulumi.ResourceOptions(parent=by_urn.get(d["parent"]), protect=d["protect"])
    if d["custom"]:
        by_urn[d["urn"]] = pulumi.CustomResource(d["type"], d["name"], d["inputs"], opts)
    else:
        by_urn[d["urn"]] = pulumi.ComponentResource(d["type"], d["name"], None, opts)
'''


def synthetic_project(root: Path, services: int, source: Path = PROJECT_DIR) -> Path:
    """The program of `source` (default: this checkout) with its staging stack and a synthetic catalog."""
    project = root / "program"
    project.mkdir()
    for name in ("__main__.py", "Pulumi.yaml", "Pulumi.staging.yaml"):
        shutil.copy(source / name, project / name)
    for name in ("components", "charts"):
        (project / name).symlink_to(source / name)
    shutil.copy(source / "catalog.yaml", project / "catalog.yaml")
    template = seed_template(project)
    template = {**template, "env": {"SERVICE_URL": "http://svc:8080"},
                "requiredEnv": [*template["requiredEnv"], "SERVICE_URL"]}
    synthetic_catalog(project, {f"svc-{i:04d}": template for i in range(services)})
    size_quota(project / "Pulumi.staging.yaml", services)
    return project


def floor_project(root: Path) -> Path:
    project = root / "floor"
    project.mkdir()
    (project / "__main__.py").write_text(FLOOR_PROGRAM)
    return project


def replay_project(root: Path, ev: Evaluation) -> Path:
    project = root / "replay"
    project.mkdir()
    (project / "__main__.py").write_text(REPLAY_PROGRAM)
    declarations = [
        {"type": r.type, "name": r.name, "urn": r.urn, "parent": r.parent, "protect": r.protect,
         "custom": r.custom, "inputs": r.inputs}
        for r in ev.resources
    ]
    (project / "declarations.json").write_text(json.dumps(declarations, default=str))
    return project


T = TypeVar("T")


def best_of(repeat: int, run: Callable[[], T]) -> tuple[float, T]:
    """The fastest of `repeat` timed runs after one warm-up (imports and caches are not what is
    measured), and the last run's result."""
    result = run()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    parser.add_argument("--record", action="store_true", help="add the row to docs/figures.json and figures.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = synthetic_project(Path(tmp), args.services)
        config, secret_keys = stack_config("staging", project_dir=project)
        # What the offline stand-in for Vault answers, worked out once: reading Vault is not the
        # program's cost here (with a real Vault it is a network round trip per key).
        vault = declared_vault(load_settings(project_dir=project, environment="staging", config=config,
                                             secret_keys=secret_keys))
        program_s, ev = best_of(args.repeat, lambda: evaluate(
            "staging", project_dir=project, config=config, secret_keys=secret_keys,
            external_vault=vault))
        floor, replay = floor_project(Path(tmp)), replay_project(Path(tmp), ev)
        floor_config = {"testinfra:count": str(len(ev.resources))}
        floor_s, _ = best_of(args.repeat, lambda: run_program("staging", project_dir=floor, config=floor_config))
        replay_s, _ = best_of(args.repeat, lambda: run_program("staging", project_dir=replay, config={}))
    row = {
        "services": args.services, "resources": len(ev.resources), "program_s": round(program_s, 3),
        "floor_s": round(floor_s, 3), "ratio": round(program_s / floor_s, 2),
        "replay_s": round(replay_s, 3), "ratio_to_replay": round(program_s / replay_s, 2),
    }
    print(json.dumps(row))
    if args.record:
        record("make bench (program under mocks)", " ".join(["python -m bench.evaluate", *sys.argv[1:]]), row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
