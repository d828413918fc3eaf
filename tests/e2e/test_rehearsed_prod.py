"""`make rehearse STACK=prod`, on its own fresh environment: prod's `protect: true` holds. Runs after
the local stack's runs on their worker (tests/e2e/test_local_stack_runs.py): it replaces their environment."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.e2e.conftest import PROJECT_DIR
from tests.e2e.rehearsal import in_rehearsal, kube

pytestmark = pytest.mark.e2e


def test_prod_rehearsed_protects_its_state_from_destroy(timings: dict[str, float]) -> None:
    """prod's difference that matters most: `protect: true`. Rehearsed on its own fresh environment,
    `make destroy STACK=prod` refuses and deletes nothing, in the API server or in the state."""
    env = {k: v for k, v in os.environ.items() if k not in ("STACK",)}
    proc = subprocess.run(["make", "-s", "rehearse", "STACK=prod"], cwd=PROJECT_DIR, env=env,
                          capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    took = re.search(r"done in (\d+) s", proc.stdout)
    timings["rehearse_prod_s"] = float(took.group(1)) if took else -1.0
    before = kube("get", "namespaces", "-l", "app.kubernetes.io/part-of=integration-tests")["items"]
    assert before
    urns = sorted(r["urn"] for r in json.loads(in_rehearsal(
        "pulumi", "stack", "export", "--stack", "prod").stdout)["deployment"]["resources"])
    assert len(urns) > 30
    destroy = in_rehearsal("make", "-s", "destroy", "STACK=prod", timeout=600,
                           extra={"PULUMI_SKIP_CONFIRMATIONS": "true"})
    said = destroy.stdout + destroy.stderr
    assert destroy.returncode != 0 and "protect" in said, said[-3000:]
    after = kube("get", "namespaces", "-l", "app.kubernetes.io/part-of=integration-tests")["items"]
    assert [n["metadata"]["uid"] for n in after] == [n["metadata"]["uid"] for n in before]
    exported = json.loads(in_rehearsal("pulumi", "stack", "export", "--stack", "prod").stdout)
    assert sorted(r["urn"] for r in exported["deployment"]["resources"]) == urns  # nothing left the state
