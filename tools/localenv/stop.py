"""`make local-env-down [NAME=<name>]` (`python -m tools.localenv.stop`): stop one local environment by PID.

Owns the stop path, which must work with any Python the machine has: a fresh machine's own Python
has none of the project's packages (no pulumi, no yaml, no cryptography), and a stop that fails on an
import would leave every server running as root. So this module and what it imports use the standard
library only (tests/unit/test_local_stop.py imports it under `python -S`). It stops every recorded
process (tools/localenv/processes.py: by PID, only while the PID is still the process it started), all
at once -- SIGTERM to each, SIGKILL to what still runs 5 s later: the servers' graceful stops overlap
(one after another they took ~17 s) -- then removes the node's cgroup root and a named environment's
Pulumi.local-<name>.yaml.
Which environment: TESTINFRA_LOCAL_ENV (make's NAME; tools/localenv/layout.py), the default otherwise.

Exit 0 when nothing is left running (or nothing was); 1 when a cgroup stayed busy.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

from tools.localenv import layout
from tools.localenv.layout import PROCESSES, STATE

CGROUP_FS = Path("/sys/fs/cgroup")
# The order `make local-env-down` reports them in: whatever else the environment started (the rehearsal's
# Vault and S3) first, then these, the reverse of their start.
REPORT_ORDER = ("external-secrets", "openbao", "node", "node-kubelet-relay", "node-api-relay", "kube-scheduler",
                "kube-controller-manager", "kube-apiserver", "etcd")


def cgroup_root(state: Path) -> str:
    """One cgroup root per environment folder, so stopping it never touches another's."""
    return "testinfra-" + hashlib.sha256(str(state.resolve()).encode()).hexdigest()[:10]


def remove_cgroups(state: Path, timeout: float = 10.0) -> list[str]:
    """Remove the node's cgroup root from every hierarchy, deepest first; return what stayed."""
    name = cgroup_root(state)
    roots = [h / name for h in CGROUP_FS.iterdir() if (h / name).is_dir()] if CGROUP_FS.is_dir() else []
    deadline = time.monotonic() + timeout
    left: list[str] = []
    for root in roots:
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [root]:
            while True:
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        left.append(str(folder))
                        break
                    time.sleep(0.2)
    return left


def down() -> int:
    problem = layout.chosen_name_problem()
    if problem:
        print(f"local-env: {problem}", file=sys.stderr, flush=True)
        return 2
    if layout.NAME != layout.DEFAULT_NAME:
        (layout.ROOT / f"Pulumi.{layout.STACK}.yaml").unlink(missing_ok=True)
    if not PROCESSES.pids.exists():
        print(f"local-env: {layout.NAME}: nothing is running", flush=True)
        return 0
    for name, outcome in PROCESSES.stop_all(REPORT_ORDER):
        print(f"local-env: {layout.NAME}: {name}: {outcome}", flush=True)
    left = remove_cgroups(STATE)
    if left:
        print(f"local-env: cgroups still busy, not removed: {', '.join(left)}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(down())
