"""Review environments on the staging rehearsal with keyless, per-pull-request credentials: the
platform's one-time setup (Vault's JWT auth for the local OIDC issuer, transit, the review state
bucket), `make review-grant` by the trusted provisioner, and each pull request's job holding nothing
but what `make review-login` exchanged for its own OIDC token. Two pull requests at once; everything
pull request 1's credentials must not reach, tried and refused; the exchange's refusals; revoke; a
killed teardown, an expired stack and a closed pull request all finished by one sweep.

Runs after tests/e2e/test_rehearsal.py, on its environment (the last module of its worker)."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest

from config.naming import RELEASE_TYPE
from runs.jobs import SERVICE_LABEL
from tests.e2e.conftest import provider_plugins, reap_plugins_since
from tests.e2e.rehearsal import (
    REHEARSAL,
    kube,
    refused_by_vault,
    refused_or_absent,
    rehearsal_env,
    vault_as,
)
from tools.localenv import oidc
from tools.localenv.rehearse import review_platform
from tools.localenv.stacks import read_env_file

pytestmark = pytest.mark.e2e

PROJECT = REHEARSAL / "project"
BEARER = "integration-test-bearer-token"  # generated per review stack by the template
TOKENS = REHEARSAL / "oidc-tokens"


def make(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def provisioner() -> dict[str, str]:
    """The platform's credentials: review-grant, review-revoke, the sweep (base-branch code only)."""
    return {**rehearsal_env("review-provisioner.env"), "PULUMI_SKIP_CONFIRMATIONS": "true"}


def minted(pr: int, name: str = "", **claims: Any) -> Path:
    """A pull_request job's OIDC token for `pr` from the local issuer (45 min, as a job's), in a file."""
    access = oidc.review_access()
    TOKENS.mkdir(mode=0o700, exist_ok=True)
    key = claims.pop("key", None)
    token = oidc.mint(oidc.claims(pr, repository=claims.pop("repository", access.repository),
                                  audience=claims.pop("audience", access.audience),
                                  ttl_seconds=claims.pop("ttl_seconds", 2700), **claims), key)
    path = TOKENS / f"pr-{pr}{name}.jwt"
    path.write_text(token)
    return path


def job(pr: int) -> dict[str, str]:
    """A review job of `pr` after `make review-login`: no credential but those exchanged for its token."""
    env = {**rehearsal_env("review-job.env"), "OIDC_TOKEN_FILE": str(TOKENS / f"pr-{pr}.jwt"),
           "PULUMI_SKIP_CONFIRMATIONS": "true"}
    exchanged = PROJECT / "build" / "review" / f"pr-{pr}" / "env"
    return {**env, **read_env_file(exchanged)} if exchanged.exists() else env


def review_stacks() -> set[str]:
    listed = subprocess.run(["pulumi", "stack", "ls", "--json"], cwd=PROJECT, env=provisioner(),
                            capture_output=True, text=True, check=True).stdout
    return {s["name"] for s in json.loads(listed)}


def namespaces() -> set[str]:
    return {n["metadata"]["name"] for n in kube("get", "namespaces")["items"]}


def as_pr(pr: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", *args], cwd=PROJECT, env=job(pr), capture_output=True, text=True,
                          timeout=60, check=False)


def nothing_left_of(pr: int) -> None:
    stack = f"pr-{pr}"
    admin = vault_as("admin.env")
    assert stack not in review_stacks()
    assert f"integration-tests-{stack}" not in namespaces()
    assert not list((REHEARSAL / "s3" / "pulumi-review-state" / ".pulumi" / "stacks" / "testinfra").glob(f"{stack}.json*"))
    policies = admin.sys.list_acl_policies()["data"]["keys"]
    assert f"integration-tests-{stack}-read" not in policies and f"testinfra-deploy-{stack}" not in policies
    assert refused_or_absent(lambda: admin.read(f"auth/kubernetes/role/integration-tests-{stack}-eso"))
    assert refused_or_absent(lambda: admin.read(f"auth/jwt/role/testinfra-deploy-{stack}"))
    assert refused_or_absent(lambda: admin.read(f"transit/keys/testinfra-deploy-{stack}"))
    with pytest.raises(hvac.exceptions.InvalidPath):
        admin.secrets.kv.v2.read_secret_metadata(path=f"integration/{stack}/{BEARER}", mount_point="secret")


@pytest.fixture(scope="module")
def platform(timings: dict[str, float]) -> None:
    review_platform()
    for pr in (1, 2):
        granted = make("review-grant", f"PR={pr}", env=provisioner())
        assert granted.returncode == 0, granted.stdout[-2000:] + granted.stderr[-2000:]


@pytest.fixture(scope="module")
def two_reviews(platform: None, timings: dict[str, float]) -> dict[int, str]:
    """Each pull request's job: log in with its own token, deploy, then every suite with JUnit."""
    accessors = {}

    def start(pr: int) -> subprocess.Popen[str]:
        minted(pr)
        login = make("review-login", f"PR={pr}", env=job(pr))
        assert login.returncode == 0, login.stdout[-2000:] + login.stderr[-2000:]
        accessors[pr] = vault_as_job(pr).auth.token.lookup_self()["data"]["accessor"]
        script = (f"make -s review-up PR={pr} && .venv/bin/python -m runs.run --all --stack pr-{pr} "
                  f"--junit-dir {REHEARSAL / f'junit-pr-{pr}'}")
        return subprocess.Popen(["bash", "-c", script], cwd=PROJECT, env=job(pr), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    started = time.monotonic()
    jobs = {pr: start(pr) for pr in (1, 2)}
    for pr, proc in jobs.items():
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, out[-4000:]
        timings[f"review_login_up_to_all_junit_pr{pr}_s"] = round(time.monotonic() - started, 1)
    return accessors


def vault_as_job(pr: int) -> hvac.Client:
    env = job(pr)
    return hvac.Client(url=env["VAULT_ADDR"], token=env["VAULT_TOKEN"], verify=env["VAULT_CACERT"])


def test_two_pull_requests_deploy_and_run_their_suites_with_only_their_exchanged_credentials(two_reviews) -> None:
    for pr in (1, 2):
        env = job(pr)
        assert "PULUMI_CONFIG_PASSPHRASE" not in env and env["VAULT_TOKEN"].startswith(("s.", "hvs.", "b."))
        kubeconfig = Path(env["KUBECONFIG"]).read_text()
        assert "client-key" not in kubeconfig and "token:" not in kubeconfig  # exec: a fresh OIDC token
        namespace = f"integration-tests-pr-{pr}"
        # Each suite ran once, by `make run` (review stacks run none on install).
        jobs = collections.Counter(j["metadata"]["labels"].get(SERVICE_LABEL)
                                   for j in kube("get", "jobs", "-n", namespace)["items"])
        assert len(jobs) >= 10 and set(jobs.values()) == {1}, jobs
        assert len(list((REHEARSAL / f"junit-pr-{pr}").glob("*.xml"))) >= 10
        store = kube("get", "secretstores.external-secrets.io", "-n", namespace)["items"]
        assert [s["spec"]["provider"]["vault"]["auth"]["kubernetes"]["serviceAccountRef"]["name"] for s in store] \
            == ["external-secrets-vault"]
    assert kube("get", "clustersecretstores.external-secrets.io", "--field-selector",
                "metadata.name=vault-integration-tests-pr-1")["items"] == []


def test_pull_request_1s_vault_token_reaches_nothing_but_its_own(two_reviews) -> None:
    pr1 = vault_as_job(1)
    kv = pr1.secrets.kv.v2
    assert kv.read_secret_version(path=f"integration/pr-1/{BEARER}", mount_point="secret",
                                  raise_on_deleted_version=True)["data"]["data"]  # its own key: yes
    attempts = {
        "read PR 2's key": lambda: kv.read_secret_version(path=f"integration/pr-2/{BEARER}", mount_point="secret",
                                                          raise_on_deleted_version=True),
        "list PR 2's keys": lambda: kv.list_secrets(path="integration/pr-2", mount_point="secret"),
        "PR 2's key's metadata": lambda: kv.read_secret_metadata(path=f"integration/pr-2/{BEARER}",
                                                                 mount_point="secret"),
        "read staging's external key": lambda: kv.read_secret_version(path="integration/staging/graph",
                                                                      mount_point="secret",
                                                                      raise_on_deleted_version=True),
        "read a review key's value": lambda: kv.read_secret_version(path="integration/review/graph",
                                                                    mount_point="secret",
                                                                    raise_on_deleted_version=True),
        "list staging's keys": lambda: kv.list_secrets(path="integration/staging", mount_point="secret"),
        "write staging's key": lambda: kv.create_or_update_secret(path="integration/staging/graph",
                                                                  mount_point="secret", secret={"x": "y"}),
        "write any policy": lambda: pr1.sys.create_or_update_acl_policy(name="pr-1-own", policy='path "*" {}'),
        "rewrite its own policy": lambda: pr1.sys.create_or_update_acl_policy(
            name="testinfra-deploy-pr-1", policy='path "*" { capabilities = ["sudo"] }'),
        "rewrite its ESO policy": lambda: pr1.sys.create_or_update_acl_policy(
            name="integration-tests-pr-1-read", policy='path "*" { capabilities = ["read"] }'),
        "read its JWT role": lambda: pr1.read("auth/jwt/role/testinfra-deploy-pr-1"),
        "write its JWT role": lambda: pr1.write("auth/jwt/role/testinfra-deploy-pr-1", role_type="jwt",
                                                user_claim="sub", bound_audiences=["x"]),
        "read its ESO role": lambda: pr1.read("auth/kubernetes/role/integration-tests-pr-1-eso"),
        "write its ESO role": lambda: pr1.write("auth/kubernetes/role/integration-tests-pr-1-eso",
                                                bound_service_account_names=["*"],
                                                bound_service_account_namespaces=["*"]),
        "write staging's ESO role": lambda: pr1.write("auth/kubernetes/role/integration-tests-staging-eso",
                                                      bound_service_account_names=["*"],
                                                      bound_service_account_namespaces=["*"]),
        "enable an auth method": lambda: pr1.sys.enable_auth_method("userpass", path="pr-1"),
        "a child token": lambda: pr1.auth.token.create(policies=["testinfra-deploy-pr-1"]),
        "PR 2's transit key": lambda: pr1.write("transit/decrypt/testinfra-deploy-pr-2", ciphertext="vault:v1:AAAA"),
        "encrypt with the references key": lambda: pr1.write("transit/encrypt/testinfra-review-references",
                                                             plaintext="eA=="),
    }
    allowed = [what for what, attempt in attempts.items() if not refused_by_vault(attempt)]
    assert allowed == []
    # Log in to another role: PR 1's token is bound to PR 1's role alone (bound_claims on its ref).
    token = (TOKENS / "pr-1.jwt").read_text()
    client = hvac.Client(url=job(1)["VAULT_ADDR"], verify=job(1)["VAULT_CACERT"])
    for role, mount in (("testinfra-deploy-pr-2", "jwt"), ("testinfra-deploy-staging", "jwt")):
        with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden, hvac.exceptions.InvalidPath)):
            client.auth.jwt.jwt_login(role=role, jwt=token, path=mount)
    with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)):
        client.auth.kubernetes.login(role="integration-tests-staging-eso", jwt=token)


@pytest.mark.parametrize(("verb", "args"), [
    ("create a Secret in PR 2's namespace", ("create", "secret", "generic", "x", "-n", "integration-tests-pr-2")),
    ("create a Secret in ESO's namespace", ("create", "secret", "generic", "x", "-n", "external-secrets")),
    ("read a Secret of staging", ("get", "secrets", "-n", "integration-tests-staging")),
    ("create a Job in ESO's namespace", ("create", "job", "x", "--image=busybox", "-n", "external-secrets")),
    ("create a Job in PR 2's namespace", ("create", "job", "x", "--image=busybox", "-n", "integration-tests-pr-2")),
    ("read PR 2's pods", ("get", "pods", "-n", "integration-tests-pr-2")),
    ("a token for ESO's service account", ("create", "token", "external-secrets", "-n", "external-secrets")),
    ("delete its own namespace", ("delete", "namespace", "integration-tests-pr-1", "--wait=false")),
    ("delete PR 2's namespace", ("delete", "namespace", "integration-tests-pr-2", "--wait=false")),
    ("list namespaces", ("get", "namespaces")),
    ("bind itself cluster-admin", ("create", "clusterrolebinding", "x", "--clusterrole=cluster-admin",
                                   "--user=review:ameide/testinfra:pr-1")),
    ("read ClusterSecretStores", ("get", "clustersecretstores.external-secrets.io")),
    ("edit its quota ceiling", ("delete", "resourcequota", "review-ceiling", "-n", "integration-tests-pr-1")),
    ("bind itself more", ("create", "rolebinding", "x", "--clusterrole=admin", "--user=review:ameide/testinfra:pr-1",
                          "-n", "integration-tests-pr-1")),
])
def test_pull_request_1s_kubernetes_identity_reaches_nothing_outside_its_namespace(two_reviews, verb, args) -> None:
    tried = as_pr(1, *args)
    assert tried.returncode != 0 and "forbidden" in tried.stderr.lower(), (verb, tried.stdout, tried.stderr)
    assert as_pr(1, "get", "jobs", "-n", "integration-tests-pr-1").returncode == 0  # its own: yes


def test_pull_request_1_reaches_neither_stagings_state_nor_its_secrets(two_reviews) -> None:
    staging = rehearsal_env("admin.env")["PULUMI_BACKEND_URL"]
    env = {**job(1), "PULUMI_BACKEND_URL": staging}
    for argv in (["pulumi", "stack", "export", "--stack", "staging", "--show-secrets"],
                 ["pulumi", "stack", "ls"]):
        tried = subprocess.run(argv, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert tried.returncode != 0 and "AccessDenied" in tried.stderr, (argv, tried.stderr[-800:])
    # PR 2's state is in the review bucket: readable there, but its secrets need PR 2's transit key.
    export = subprocess.run(["pulumi", "stack", "export", "--stack", "pr-2", "--show-secrets"], cwd=PROJECT,
                            env=job(1), capture_output=True, text=True, timeout=120, check=False)
    assert export.returncode != 0 and "permission denied" in export.stderr.lower(), export.stderr[-800:]


@pytest.mark.parametrize(("case", "claims"), [
    ("expired", {"ttl_seconds": -60}),
    ("another repository", {"repository": "someone/else"}),
    ("a branch ref, not a pull request", {"ref": "refs/heads/main"}),
    ("a pull_request_target job", {"event_name": "pull_request_target"}),
    ("a wrong audience", {"audience": "sts.amazonaws.com"}),
    ("signed by another key", {"key": "other"}),
])
def test_the_exchange_refuses_every_token_but_a_pull_requests_own(platform, case: str, claims: dict[str, Any]) -> None:
    if claims.get("key") == "other":
        claims["key"] = oidc.prepare(REHEARSAL / "other-issuer")  # a key of another issuer, same claims
    path = minted(1, "-bad", **claims)
    login = make("review-login", "PR=1", env={**job(1), "OIDC_TOKEN_FILE": str(path), "VAULT_TOKEN": ""})
    assert login.returncode != 0 and "rejected the credentials" in login.stderr, (case, login.stderr[-800:])
    cluster_only = rehearsal_env("review-job.env")["KUBECONFIG"]  # the cluster's address and CA, no user
    whoami = subprocess.run(["kubectl", "auth", "whoami", "--token", path.read_text(), "--kubeconfig", cluster_only],
                            env=rehearsal_env("review-job.env"), capture_output=True, text=True, timeout=60,
                            check=False)
    assert whoami.returncode != 0 and "Unauthorized" in whoami.stderr, (case, whoami.stdout, whoami.stderr)


def test_review_down_and_revoke_leave_nothing_and_the_other_review_untouched(
        two_reviews: dict[int, str], timings: dict[str, float]) -> None:
    before = kube("get", "externalsecrets.external-secrets.io", "-n", "integration-tests-pr-2")["items"]
    started = time.monotonic()
    down = make("review-down", "PR=1", env=job(1))
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-2000:]
    timings["review_down_s"] = round(time.monotonic() - started, 1)
    started = time.monotonic()
    revoked = make("review-revoke", "PR=1", env=provisioner())
    assert revoked.returncode == 0, revoked.stdout[-3000:] + revoked.stderr[-2000:]
    timings["review_revoke_s"] = round(time.monotonic() - started, 1)
    nothing_left_of(1)
    admin = vault_as("admin.env")
    with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)):
        admin.auth.token.lookup_accessor(two_reviews[1])  # PR 1's Vault token: revoked
    assert refused_by_vault(lambda: vault_as_job(1).auth.token.lookup_self())
    after = kube("get", "externalsecrets.external-secrets.io", "-n", "integration-tests-pr-2")["items"]
    assert [e["metadata"]["uid"] for e in after] == [e["metadata"]["uid"] for e in before]
    assert "pr-2" in review_stacks()


def state_of(stack: str) -> dict[str, Any]:
    """The checkpoint as the S3 server holds it (read beside the CLI, which is busy with the teardown)."""
    checkpoint = REHEARSAL / "s3" / "pulumi-review-state" / ".pulumi" / "stacks" / "testinfra" / f"{stack}.json"
    try:
        return dict(json.loads(checkpoint.read_text())["checkpoint"]["latest"] or {})
    except (OSError, ValueError, KeyError):  # being replaced this very moment: the next look sees it
        return {}


def test_a_killed_review_down_an_expired_stack_and_a_closed_pr_are_all_finished_by_one_sweep(
        two_reviews, request: pytest.FixtureRequest) -> None:
    before = provider_plugins()
    request.addfinalizer(lambda: reap_plugins_since(before))  # what the killed CLI left, once it is over
    initial = len(state_of("pr-2").get("resources") or ())
    assert any(r["type"] == RELEASE_TYPE for r in state_of("pr-2").get("resources") or ())
    down = subprocess.Popen(["make", "-s", "review-down", "PR=2"], cwd=PROJECT, env=job(2),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # Killed once the checkpoint in S3 shows the destroy under way: a deletion in flight, or some of
        # the stack's resources gone and others not yet.
        for _ in range(1200):
            state = state_of("pr-2")
            ops = state.get("pending_operations") or ()
            if any(op["type"] == "deleting" for op in ops) or 0 < len(state.get("resources") or ()) < initial:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the destroy was never seen under way in the checkpoint")
    finally:
        os.killpg(down.pid, signal.SIGKILL)
        down.wait()
    assert "pr-2" in review_stacks()  # killed midway: still listed with its state and lock

    assert make("review-grant", "PR=3", env=provisioner()).returncode == 0
    minted(3)
    assert make("review-login", "PR=3", env=job(3)).returncode == 0
    expiring = make("review-up", "PR=3", "TTL_HOURS=0.0005", env=job(3))  # expires in under 2 s
    assert expiring.returncode == 0, expiring.stdout[-3000:] + expiring.stderr[-2000:]
    time.sleep(2)
    closed = REHEARSAL / "closed-prs"
    closed.write_text("2\n")
    # The killed teardown's lock is seconds old: with the default bound (the workflow's 45 minutes) it
    # may be a running job's, and the sweep leaves pr-2 as it is, saying so.
    young = make("review-sweep", f"CLOSED_FILE={closed}", env=provisioner())
    assert young.returncode != 0 and "LEFT pr-2" in young.stdout and "locked" in young.stdout, \
        young.stdout[-3000:] + young.stderr[-2000:]
    assert "removed pr-3 (it expired at" in young.stdout and "pr-2" in review_stacks()
    nothing_left_of(3)
    # The rehearsal's runs are minutes long: a bound of 3 s makes that lock a killed run's.
    swept = make("review-sweep", f"CLOSED_FILE={closed}", "LOCK_MINUTES=0.05", env=provisioner())
    said = swept.stdout + swept.stderr
    assert swept.returncode == 0, said[-3000:]
    assert "removed pr-2 (its pull request is closed)" in said, said
    nothing_left_of(2)


@pytest.mark.parametrize("value", ["../staging", "1;id", "0", "", "staging", "1000000", "$(touch /tmp/pwned)"])
def test_hostile_pr_values_are_refused_and_nothing_is_created(value: str) -> None:
    before_stacks, before_ns = review_stacks(), namespaces()
    for target, env in (("review-up", job(1)), ("review-down", job(1)), ("review-login", job(1)),
                        ("review-grant", provisioner()), ("review-revoke", provisioner())):
        made = make(target, f"PR={value}", env=env)
        assert made.returncode != 0 and "not a pull request number" in made.stderr, (target, made.stderr)
    assert review_stacks() == before_stacks and namespaces() == before_ns
    assert not Path("/tmp/pwned").exists()
    assert not list(PROJECT.glob("Pulumi.pr-*.yaml"))
