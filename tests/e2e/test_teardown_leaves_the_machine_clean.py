"""`make local-env-down` (run last on its worker, after the local stack's tests): the node's processes, pods,
mounts, network devices and cgroups are gone, and the machine's interfaces, mounts and cgroups are
what they were before `make local-env`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E_ENVIRONMENT, LOCAL_ENV, PROJECT_DIR, LocalStack, machine_state, provider_plugins
from tools.localenv.processes import Processes

pytestmark = pytest.mark.e2e


def test_local_env_down_leaves_the_machine_as_it_found_it(local_stack: LocalStack) -> None:
    processes = Processes(LOCAL_ENV)
    pids = [record.pid for p in processes.pids.iterdir() if (record := processes.recorded(p.name))]
    assert pids
    during = machine_state()
    # As a user runs it, with a Python that has none of the project's packages (`-S`: no site-packages),
    # as on a fresh machine: the stop must still end every server.
    down = subprocess.run(["make", "-s", "local-env-down", f"NAME={E2E_ENVIRONMENT}", "PYTHON=python3 -S"],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=False)
    assert down.returncode == 0 and "still busy" not in down.stderr, down.stderr
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # Nor a provider plugin of this environment that a killed CLI orphaned (each is a group of its own).
    assert provider_plugins() == set()
    after = machine_state()
    assert after == local_stack.machine_before
    # The node's pods ran inside the node's own namespaces: not one interface reached the machine.
    assert during["links"] == local_stack.machine_before["links"]
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    leftovers = [line for line in mounts if str(LOCAL_ENV) in line]
    assert not leftovers, leftovers
