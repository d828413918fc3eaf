"""A 100-service environment on an S3 backend with checkpoints on (as staging and prod keep their state):
its first `make up` killed with SIGKILL midway, then the README's recovery -- `make recover`, `make up`
-- brings it to exactly what the program declares, with nothing duplicated in the state or the cluster.

Runs on its worker's local environment after the local stack's destroy, with the synthetic catalog
`make bench-real` deploys (100 services shaped like the seed's `threads`), no suite run on install
(`python -m bench.real --no-suites`): what is recovered is the deployment, and 100 suites more than once
on the one 2-core node would cost the other workers minutes of CPU and change nothing asserted here.
"""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.real import project_copy
from config.loading import stack_settings
from config.naming import RELEASE_TYPE
from tests.e2e.conftest import LOCAL_ENV, LocalStack, provider_plugins, reap_plugins_since
from tools.localenv import layout, stacks
from tools.localenv.s3 import start_s3

pytestmark = pytest.mark.e2e

SERVICES = 100
S3_ROOT = LOCAL_ENV / "at-scale-s3"


class LargeStack:
    def __init__(self, project: Path, env: dict[str, str]) -> None:
        self.project, self.env = project, env
        self.namespace = stack_settings("local", project_dir=project).namespace

    def run(self, *argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), cwd=self.project, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL)

    def checked(self, *argv: str) -> str:
        proc = self.run(*argv)
        assert proc.returncode == 0, (argv, proc.stdout[-3000:], proc.stderr[-3000:])
        return proc.stdout

    def checkpoint(self) -> dict[str, Any] | None:
        """The stack's checkpoint as the S3 server holds it (read from its folder: no CLI while `up` runs)."""
        try:
            checkpoint = json.loads((S3_ROOT / "pulumi-state" / ".pulumi" / "stacks" / "testinfra" / "local.json")
                                    .read_text())["checkpoint"]
        except (OSError, ValueError):
            return None  # not written yet, or caught mid-write: read again
        return dict(checkpoint.get("latest") or {})

    def state(self) -> dict[str, Any]:
        return dict(json.loads(self.checked("pulumi", "stack", "export", "--stack", "local"))["deployment"])

    def kube(self, *args: str) -> list[dict[str, Any]]:
        return list(json.loads(self.checked("kubectl", *args, "-n", self.namespace, "-o", "json"))["items"])


@pytest.fixture(scope="module")
def large_stack(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LargeStack]:
    # The copy has no build/local-env link: `make` runs with this environment, not the local file backend.
    project = project_copy(tmp_path_factory.mktemp("at-scale"), SERVICES, suites=False)
    stacks.write_local_stack_file(project, "local")  # this worker's environment, as its other copies
    env = {**local_stack.env, **start_s3(layout.PROCESSES, layout.E2E_BIN / "versitygw", S3_ROOT),
           "PULUMI_SKIP_CONFIRMATIONS": "true"}
    env.pop("PULUMI_SKIP_CHECKPOINTS", None)  # checkpoints on, as staging and prod
    stacks.deploy_proto_stack(env, project=project / "tools" / "localenv" / "proto_stack")
    try:
        yield LargeStack(project, env)
    finally:
        layout.PROCESSES.stop("s3")


def test_a_killed_first_up_of_100_services_recovers_to_what_the_program_declares(
        large_stack: LargeStack, local_stack: LocalStack, request: pytest.FixtureRequest) -> None:
    s = large_stack
    plugins_before = provider_plugins()
    request.addfinalizer(lambda: reap_plugins_since(plugins_before))  # whatever happens below
    started = time.monotonic()
    # deploy.stack ends in `exec pulumi`: the process started is the CLI itself, in a group of its own
    # with the plugins it starts.
    up = subprocess.Popen([".venv/bin/python", "-m", "deploy.stack", "up", "--skip-preview"], cwd=s.project,
                          env={**s.env, "STACK": "local"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        # Killed once the checkpoint shows releases being created with most of the stack made: the
        # first `up` of a large environment, cut off as a lost CI runner cuts it.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and up.poll() is None:
            latest = s.checkpoint() or {}
            creating = [op for op in latest.get("pending_operations") or ()
                        if op["type"] == "creating" and op["resource"]["type"] == RELEASE_TYPE]
            if creating and len(latest.get("resources") or ()) > 2 * SERVICES:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"no release create was ever checkpointed in flight (up exited {up.poll()})")
    finally:
        up.send_signal(signal.SIGKILL)  # the CLI only: its plugins finish the call they are in
        up.wait()
    local_stack.timings["at_scale_up_killed_after_s"] = round(time.monotonic() - started, 1)
    killed = s.state()
    in_flight = [op["resource"]["urn"] for op in killed.get("pending_operations") or ()]
    assert any(RELEASE_TYPE in urn for urn in in_flight), in_flight

    # What the orphaned plugins were doing ends within seconds (a release install without waiting);
    # Helm's record must not be caught mid-install, or recover rightly asks for a hand.
    for _ in range(120):
        if not [r for r in s.kube("get", "secrets", "-l", "owner=helm")
                if r["metadata"]["labels"].get("status", "").startswith("pending")]:
            break
        time.sleep(0.5)
    # The killed CLI's plugins, each in a process group of its own (the CLI's group does not hold them).
    reap_plugins_since(plugins_before)

    refused = s.run("make", "-s", "up", "STACK=local", timeout=300)
    assert refused.returncode != 0 and "pulumi cancel" in refused.stderr + refused.stdout  # the lock stays

    started = time.monotonic()
    recovered = s.run("make", "-s", "recover", "STACK=local")
    local_stack.timings["at_scale_recover_s"] = round(time.monotonic() - started, 1)
    assert recovered.returncode == 0, recovered.stdout[-3000:] + recovered.stderr[-3000:]
    assert "settled:" in recovered.stdout and "make up STACK=local" in recovered.stdout
    assert not s.state().get("pending_operations")

    started = time.monotonic()
    s.checked("make", "-s", "up", "STACK=local")
    local_stack.timings["at_scale_up_after_recover_s"] = round(time.monotonic() - started, 1)

    after = s.state()
    counts = collections.Counter(r["urn"] for r in after["resources"])
    assert not [urn for urn, n in counts.items() if n > 1]  # nothing twice in the state
    assert sum(r["type"] == RELEASE_TYPE for r in after["resources"]) == SERVICES
    # The state holds exactly what the program declares: nothing to create, update or delete.
    s.checked("pulumi", "preview", "--expect-no-changes", "--stack", "local", "--non-interactive",
              "--policy-pack", "policy")
    # And the cluster holds each object once: one ExternalSecret and one deployed release per service.
    assert len(s.kube("get", "externalsecrets.external-secrets.io")) == SERVICES
    deployed = [r["metadata"]["labels"]["name"] for r in s.kube("get", "secrets", "-l", "owner=helm,status=deployed")]
    assert len(deployed) == len(set(deployed)) == SERVICES
