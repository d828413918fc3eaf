"""Review environments on the staging rehearsal (https OpenBao, S3 state with checkpoints, ESO, the
node): two pull requests' stacks at once, deployed with the review identity CI's workflow holds
(`make identities STACK=review`, applied by "the platform team"); isolation checked with their own
tokens; a teardown that leaves nothing; a killed teardown, an expired stack and a closed pull request
all finished by one sweep; hostile PR values.

Runs after tests/e2e/test_rehearsal.py (its environment), before the prod rehearsal replaces it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from config.naming import RELEASE_TYPE
from tests.e2e.conftest import LocalStack
from tests.e2e.rehearsal import REHEARSAL, kube, refused_by_vault, refused_or_absent, rehearsal_env, vault_as
from tools.localenv.rehearse import review_platform

pytestmark = pytest.mark.e2e

PROJECT = REHEARSAL / "project"
BEARER = "integration-test-bearer-token"  # generated per review stack by the template


def as_review(pr: int) -> dict[str, str]:
    """The review workflow's credentials (one for every pull request), as its job for `pr` has them."""
    return {**rehearsal_env("review.env"), "PULUMI_SKIP_CONFIRMATIONS": "true"}


def make(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def review_stacks() -> set[str]:
    listed = subprocess.run(["pulumi", "stack", "ls", "--json"], cwd=PROJECT, env=rehearsal_env("admin.env"),
                            capture_output=True, text=True, check=True).stdout
    return {s["name"] for s in json.loads(listed)} - {"staging"}


def namespaces() -> set[str]:
    return {n["metadata"]["name"] for n in kube("get", "namespaces")["items"]}


def nothing_left_of(pr: int) -> None:
    stack = f"pr-{pr}"
    admin = vault_as("admin.env")
    assert stack not in review_stacks()
    assert f"integration-tests-{stack}" not in namespaces()
    assert not list((REHEARSAL / "s3" / "pulumi-state" / ".pulumi" / "stacks" / "testinfra").glob(f"{stack}.json*"))
    assert f"integration-tests-{stack}-read" not in admin.sys.list_acl_policies()["data"]["keys"]
    assert refused_or_absent(lambda: admin.read(f"auth/kubernetes/role/integration-tests-{stack}-eso"))
    with pytest.raises(hvac.exceptions.InvalidPath):
        admin.secrets.kv.v2.read_secret_metadata(path=f"integration/{stack}/{BEARER}", mount_point="secret")
    assert kube("get", "clustersecretstores.external-secrets.io", "--field-selector",
                f"metadata.name=vault-integration-tests-{stack}")["items"] == []


@pytest.fixture(scope="module")
def two_reviews(local_stack: LocalStack) -> dict[int, float]:
    review_platform()
    started = time.monotonic()
    ups = {pr: subprocess.Popen(["make", "-s", "review-up", f"PR={pr}"], cwd=PROJECT, env=as_review(pr),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for pr in (1, 2)}
    took = {}
    for pr, proc in ups.items():
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, out[-4000:]
        took[pr] = time.monotonic() - started
    local_stack.timings["review_two_up_s"] = round(max(took.values()), 1)
    return took


def test_two_review_stacks_come_up_at_once_and_their_suites_run(two_reviews, local_stack: LocalStack) -> None:
    assert {"pr-1", "pr-2"} <= review_stacks()
    for pr in (1, 2):
        namespace = f"integration-tests-pr-{pr}"
        jobs = kube("get", "jobs", "-n", namespace)["items"]
        assert len(jobs) >= 10
        assert all(any(c["type"] == "Complete" and c["status"] == "True" for c in j["status"].get("conditions", []))
                   for j in jobs), namespace
    for pr in (1, 2):  # every suite again on demand, as the workflow's `make run STACK=pr-<n>`
        started = time.monotonic()
        junit = REHEARSAL / f"junit-pr-{pr}"
        ran = subprocess.run([str(Path(".venv/bin/python")), "-m", "runs.run", "--all", "--stack", f"pr-{pr}",
                              "--junit-dir", str(junit)], cwd=PROJECT, env=as_review(pr), capture_output=True,
                             text=True, timeout=600, check=False)
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
        local_stack.timings[f"review_run_all_suites_pr{pr}_s"] = round(time.monotonic() - started, 1)
        assert len(list(junit.glob("*.xml"))) >= 10


def test_one_reviews_eso_role_reads_neither_the_others_keys_nor_writes_staging(two_reviews) -> None:
    env = rehearsal_env("admin.env")
    token = subprocess.run(["kubectl", "create", "token", "external-secrets", "-n", "external-secrets",
                            "--audience", "vault"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    eso = hvac.Client(url=env["VAULT_ADDR"], verify=env["VAULT_CACERT"])
    eso.auth.kubernetes.login(role="integration-tests-pr-1-eso", jwt=token)
    kv = eso.secrets.kv.v2
    assert kv.read_secret_version(path=f"integration/pr-1/{BEARER}", mount_point="secret",
                                  raise_on_deleted_version=True)["data"]["data"]  # its own: yes
    assert kv.read_secret_version(path="integration/staging/graph", mount_point="secret",
                                  raise_on_deleted_version=True)["data"]["data"]  # staging's external: read only
    assert refused_by_vault(lambda: kv.read_secret_version(path=f"integration/pr-2/{BEARER}", mount_point="secret",
                                                           raise_on_deleted_version=True))
    assert refused_by_vault(lambda: kv.create_or_update_secret(path="integration/staging/graph",
                                                               mount_point="secret", secret={"x": "y"}))
    # The review identity (CI's, every pull request's) writes review paths only: never staging's or prod's.
    deployer = vault_as("review.env")
    for path in ("integration/staging/graph", "integration/prod/graph", "integration/pr-1/../staging/graph"):
        assert refused_by_vault(lambda path=path: deployer.secrets.kv.v2.create_or_update_secret(
            path=path, mount_point="secret", secret={"x": "y"}))
    assert refused_by_vault(lambda: deployer.sys.delete_acl_policy("integration-tests-staging-read"))
    assert refused_by_vault(lambda: deployer.delete("auth/kubernetes/role/integration-tests-staging-eso"))
    assert refused_by_vault(lambda: deployer.write("auth/kubernetes/role/integration-tests-pr-1-eso",
                                                   bound_service_account_names=["default"],
                                                   bound_service_account_namespaces=["integration-tests-pr-1"],
                                                   token_policies=["integration-tests-pr-1-read"]))


def test_review_down_leaves_nothing_and_the_other_review_untouched(two_reviews, local_stack: LocalStack) -> None:
    before = kube("get", "externalsecrets.external-secrets.io", "-n", "integration-tests-pr-2")["items"]
    started = time.monotonic()
    down = make("review-down", "PR=1", env=as_review(1))
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-2000:]
    local_stack.timings["review_down_s"] = round(time.monotonic() - started, 1)
    nothing_left_of(1)
    after = kube("get", "externalsecrets.external-secrets.io", "-n", "integration-tests-pr-2")["items"]
    assert [e["metadata"]["uid"] for e in after] == [e["metadata"]["uid"] for e in before]
    assert "pr-2" in review_stacks()


def state_of(stack: str) -> dict:
    proc = subprocess.run(["pulumi", "stack", "export", "--stack", stack], cwd=PROJECT, env=as_review(2),
                          capture_output=True, text=True, check=True)
    return dict(json.loads(proc.stdout)["deployment"])


def test_a_killed_review_down_an_expired_stack_and_a_closed_pr_are_all_finished_by_one_sweep(two_reviews) -> None:
    down = subprocess.Popen(["make", "-s", "review-down", "PR=2"], cwd=PROJECT, env=as_review(2),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # Killed once the checkpoint in S3 shows a release's deletion in flight (the destroy step).
        for _ in range(240):
            ops = state_of("pr-2").get("pending_operations") or ()
            if any(op["resource"]["type"] == RELEASE_TYPE and op["type"] == "deleting" for op in ops):
                break
            time.sleep(0.25)
        else:
            pytest.fail("no deletion in flight was ever checkpointed")
    finally:
        os.killpg(down.pid, signal.SIGKILL)
        down.wait()
    assert "pr-2" in review_stacks()  # killed midway: still listed with its state and lock

    expiring = make("review-up", "PR=3", "TTL_HOURS=0.0005", env=as_review(3))  # expires in under 2 s
    assert expiring.returncode == 0, expiring.stdout[-3000:] + expiring.stderr[-2000:]
    time.sleep(2)
    closed = REHEARSAL / "closed-prs"
    closed.write_text("2\n")
    # The killed teardown's lock is seconds old: with the default bound (the workflow's 45 minutes) it
    # may be a running job's, and the sweep leaves pr-2 as it is, saying so.
    young = make("review-sweep", f"CLOSED_FILE={closed}", env=as_review(0))
    # The sweep exits 1 (make turns that into its own 2), naming the stack it left.
    assert young.returncode != 0 and "LEFT pr-2" in young.stdout and "locked" in young.stdout, \
        young.stdout[-3000:] + young.stderr[-2000:]
    assert "removed pr-3 (it expired at" in young.stdout and "pr-2" in review_stacks()
    nothing_left_of(3)
    # The rehearsal's runs are minutes long: a bound of 3 s makes that lock a killed run's.
    swept = make("review-sweep", f"CLOSED_FILE={closed}", "LOCK_MINUTES=0.05", env=as_review(0))
    said = swept.stdout + swept.stderr
    assert swept.returncode == 0, said[-3000:]
    assert "removed pr-2 (its pull request is closed)" in said, said
    nothing_left_of(2)


@pytest.mark.parametrize("value", ["../staging", "1;id", "0", "", "staging", "1000000", "$(touch /tmp/pwned)"])
def test_hostile_pr_values_are_refused_and_nothing_is_created(value: str) -> None:
    before_stacks, before_ns = review_stacks(), namespaces()
    for target in ("review-up", "review-down"):
        made = make(target, f"PR={value}", env=as_review(0))
        assert made.returncode != 0 and "not a pull request number" in made.stderr, made.stderr
    assert review_stacks() == before_stacks and namespaces() == before_ns
    assert not Path("/tmp/pwned").exists()
    assert not list(PROJECT.glob("Pulumi.pr-*.yaml"))
