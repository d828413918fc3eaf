"""`make rehearse STACK=staging`: the committed staging stack file, connection facts swapped, deployed
by the real engine on a fresh local environment prepared as staging's platform team has it -- an
https OpenBao (not a dev server) with the Kubernetes auth method already configured, every `external`
key written by its owner, ESO's service account in its own namespace (the ClusterSecretStore path),
Pulumi's state in a real S3 API server with checkpoints on -- then `make verify`.

Runs on a worker of its own (tests/e2e/conftest.py E2E_GROUPS): `make rehearse` starts its own environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from config.naming import RELEASE_TYPE
from tests.e2e.conftest import LOCAL_ENV, PROJECT_DIR, provider_plugins, reap_plugins_since
from tests.e2e.rehearsal import (
    REHEARSAL,
    in_rehearsal,
    kube,
    refused_by_kubernetes,
    refused_by_vault,
    refused_or_absent,
    rehearsal_env,
    vault_as,
)

pytestmark = pytest.mark.e2e

STACK = "staging"


def test_make_rehearse_deploys_staging_through_its_cluster_secret_store(timings: dict[str, float]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("STACK",)}
    # A caller logged in elsewhere, with a token of its own: the rehearsal must use neither.
    env.update({"PULUMI_ACCESS_TOKEN": "caller-token-never-used", "VAULT_TOKEN": "caller-vault-token-never-used",
                "PULUMI_BACKEND_URL": "https://api.pulumi.com"})
    proc = subprocess.run(["make", "-s", "rehearse", f"STACK={STACK}"], cwd=PROJECT_DIR, env=env,
                          capture_output=True, text=True, timeout=1500, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    for key in ("kubeContext", "vaultAddress", "vaultCaBundle", "suiteImage"):
        assert re.search(rf"^  {key}: ", proc.stdout, re.MULTILINE), proc.stdout[-3000:]
    assert "make verify: ok" in proc.stdout
    took = re.search(r"done in (\d+) s", proc.stdout)
    timings["rehearse_staging_s"] = float(took.group(1)) if took else -1.0
    env_file = (REHEARSAL / "env").read_text()
    assert "caller-token-never-used" not in env_file and "caller-vault-token-never-used" not in env_file
    assert "PULUMI_ACCESS_TOKEN" not in env_file


def test_staging_was_deployed_and_previewed_with_oidc_exchanged_credentials_alone() -> None:
    """No stored token: each job's GitHub-shaped OIDC token exchanged (`make login`) for its identity's
    Vault JWT role and the Kubernetes user of its GitHub environment; another job's token is refused."""
    import hvac

    from tools.localenv import oidc

    for who, user in (("env", "staging"), ("preview.env", "preview-staging")):
        env = rehearsal_env(who)
        assert "OIDC_TOKEN_FILE" in env and env["KUBECONFIG"].startswith(f"{REHEARSAL / 'login'}/")
        assert "token:" not in Path(env["KUBECONFIG"]).read_text()  # an exec credential, no stored token
        whoami = in_rehearsal("kubectl", "auth", "whoami", "-o", "json", who=who)
        assert whoami.returncode == 0, whoami.stderr
        assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == \
            f"github:{oidc.review_access().repository}:environment:{user}"
        policy = {"env": f"testinfra-deploy-{STACK}", "preview.env": f"testinfra-preview-{STACK}"}[who]
        assert vault_as(who).auth.token.lookup_self()["data"]["policies"] == [policy]
    access = oidc.review_access()
    deploy_token = Path(rehearsal_env("env")["OIDC_TOKEN_FILE"]).read_text()
    preview_token = Path(rehearsal_env("preview.env")["OIDC_TOKEN_FILE"]).read_text()
    # A job in the staging environment, but of a pull request's ref: never the deploy identity.
    not_main = oidc.mint(oidc.claims(1, repository=access.repository, audience=access.audience, environment=STACK))
    client = hvac.Client(url=rehearsal_env()["VAULT_ADDR"], verify=rehearsal_env()["VAULT_CACERT"])
    for token, role in ((deploy_token, f"testinfra-preview-{STACK}"), (preview_token, f"testinfra-deploy-{STACK}"),
                        (not_main, f"testinfra-deploy-{STACK}")):
        with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)):
            client.auth.jwt.jwt_login(role=role, jwt=token, path="jwt")


def test_the_committed_stack_file_only_changed_its_connection_facts() -> None:
    import yaml

    committed = yaml.safe_load((PROJECT_DIR / f"Pulumi.{STACK}.yaml").read_text())["config"]
    rehearsed = yaml.safe_load((REHEARSAL / "project" / f"Pulumi.{STACK}.yaml").read_text())["config"]
    def same(value: Any) -> Any:  # the CLI rewrites the file (`make init`), writing booleans as strings
        return str(value).lower() if isinstance(value, bool) else value

    changed = {k for k in set(committed) | set(rehearsed) if same(committed.get(k)) != same(rehearsed.get(k))}
    # protoStack is not among them: `ameide-core-proto/staging` resolves in the stack's own organisation,
    # on this DIY backend as on Pulumi Cloud.
    assert changed == {f"testinfra:{k}" for k in ("kubeContext", "vaultAddress", "vaultClusterAddress",
                                                   "vaultCaBundle", "suiteImage")}, changed


def test_every_external_secret_is_ready_through_the_cluster_secret_store() -> None:
    stores = kube("get", "clustersecretstores.external-secrets.io")["items"]
    assert len(stores) == 1
    store = stores[0]
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in store["status"]["conditions"]), store["status"]
    assert store["spec"]["provider"]["vault"]["server"].startswith("https://")
    assert store["spec"]["provider"]["vault"]["caBundle"]
    items = kube("get", "externalsecrets.external-secrets.io", "-A")["items"]
    assert len(items) >= 10
    for es in items:
        assert es["spec"]["secretStoreRef"]["kind"] == "ClusterSecretStore"
        ready = [c for c in es["status"].get("conditions", []) if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", es["metadata"]["name"]


def test_staging_gated_on_its_suites_and_they_ran() -> None:
    jobs = kube("get", "jobs", "-A", "-l", "app.kubernetes.io/part-of=integration-tests")["items"]
    assert len(jobs) >= 10
    for job in jobs:
        assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"].get("conditions", [])), \
            job["metadata"]["name"]


def test_the_state_is_in_s3_with_its_checkpoints_and_history() -> None:
    state = REHEARSAL / "s3" / "pulumi-state" / ".pulumi"
    assert (state / "stacks" / "testinfra" / f"{STACK}.json").is_file()
    history = in_rehearsal("pulumi", "stack", "history", "--json", "--stack", STACK)
    assert history.returncode == 0, history.stderr
    updates = json.loads(history.stdout)
    assert updates and updates[0]["result"] == "succeeded" and updates[0]["kind"] == "update"


def test_a_deleted_external_property_stops_preview_cleanly_naming_the_key() -> None:
    path = f"integration/{STACK}/integration-test-bearer-token"
    kv = vault_as("admin.env").secrets.kv.v2  # the key's owner
    kept = kv.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)["data"]["data"]
    kv.create_or_update_secret(path=path, mount_point="secret", secret={"other": "x"})
    try:
        made = in_rehearsal("make", "-s", "preview", f"STACK={STACK}")
        assert made.returncode != 0
        assert "integration-test-bearer-token" in made.stderr and "token" in made.stderr, made.stderr[-2000:]
        raw = in_rehearsal("pulumi", "preview", "--stack", STACK, "--non-interactive")
        said = raw.stdout + raw.stderr
        assert raw.returncode != 0 and "integration-test-bearer-token" in said, said[-3000:]
        assert not re.search(r"panic|plugin .* crashed|goroutine \d+", said), said[-3000:]
    finally:
        kv.create_or_update_secret(path=path, mount_point="secret", secret=kept)


def state(stack: str = STACK) -> dict[str, Any]:
    proc = in_rehearsal("pulumi", "stack", "export", "--stack", stack)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout)["deployment"])


def test_an_up_killed_midway_recovers_and_an_earlier_config_rolls_back(request: pytest.FixtureRequest) -> None:
    """SIGKILL during `up` (checkpoints on: the state in S3 records the operations in flight, the lock
    stays); the README's recovery -- `pulumi cancel`, `pulumi refresh`, `make up` -- brings the stack back
    with nothing duplicated or lost; re-applying the earlier stack file rolls the change back."""
    project = REHEARSAL / "project"
    earlier = (project / f"Pulumi.{STACK}.yaml").read_text()
    before = state()
    urns = sorted(r["urn"] for r in before["resources"])
    timeouts = {n: s["timeoutSeconds"] for n, s in json.loads(
        in_rehearsal("pulumi", "stack", "output", "--json", "--stack", STACK).stdout)["services"].items()}
    changed = ["graph", "threads", "platform"]
    for name in changed:
        assert in_rehearsal("pulumi", "config", "set", "--path", f"testinfra:serviceOverrides.{name}.timeoutSeconds",
                            "95", "--stack", STACK).returncode == 0
    plugins_before = provider_plugins()
    # The killed CLI's plugins finish the call they are in (as on a runner that lost only the CLI);
    # once the test is over, the ones it left are ended.
    request.addfinalizer(lambda: reap_plugins_since(plugins_before))
    up = subprocess.Popen(["pulumi", "up", "--yes", "--skip-preview", "--stack", STACK, "--non-interactive"],
                          cwd=project, env=rehearsal_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Kill once the checkpoint in S3 shows a release's update in flight: staging waits for its suite,
        # so that operation lasts seconds (a quick one may finish between the read and the kill).
        for _ in range(120):
            if any(op["resource"]["type"] == RELEASE_TYPE for op in state().get("pending_operations") or ()):
                break
            time.sleep(0.5)
        else:
            pytest.fail("no operation in flight was ever checkpointed")
    finally:
        up.kill()
        up.wait()
    assert state()["pending_operations"]
    locks = list((REHEARSAL / "s3" / "pulumi-state" / ".pulumi" / "locks").rglob("*.json"))
    assert len(locks) == 1
    refused = in_rehearsal("pulumi", "up", "--yes", "--stack", STACK, "--non-interactive")
    assert refused.returncode != 0 and "pulumi cancel" in refused.stderr, refused.stderr[-1500:]

    for step in (("pulumi", "cancel", "--yes", "--stack", STACK),
                 ("pulumi", "refresh", "--yes", "--stack", STACK, "--non-interactive"),
                 ("make", "-s", "up", f"STACK={STACK}")):
        done = in_rehearsal(*step, extra={"PULUMI_SKIP_CONFIRMATIONS": "true"})
        assert done.returncode == 0, (step, done.stdout[-2000:], done.stderr[-2000:])
    after = state()
    assert not after.get("pending_operations")
    assert sorted(r["urn"] for r in after["resources"]) == urns  # nothing duplicated, nothing lost
    releases = kube("get", "secrets", "-A", "-l", "owner=helm,status=deployed")["items"]
    assert len(releases) == len(timeouts)  # one deployed revision per release
    outputs = json.loads(in_rehearsal("pulumi", "stack", "output", "--json", "--stack", STACK).stdout)["services"]
    assert all(outputs[n]["timeoutSeconds"] == 95 for n in changed)

    (project / f"Pulumi.{STACK}.yaml").write_text(earlier)  # the earlier commit's stack file
    rolled = in_rehearsal("make", "-s", "up", f"STACK={STACK}", extra={"PULUMI_SKIP_CONFIRMATIONS": "true"})
    assert rolled.returncode == 0, rolled.stdout[-2000:]
    outputs = json.loads(in_rehearsal("pulumi", "stack", "output", "--json", "--stack", STACK).stdout)["services"]
    assert {n: s["timeoutSeconds"] for n, s in outputs.items()} == timeouts
    history = json.loads(in_rehearsal("pulumi", "stack", "history", "--json", "--stack", STACK).stdout)
    assert [h["result"] for h in history[:2]] == ["succeeded", "succeeded"] and len(history) >= 4


def test_the_checkouts_staging_commands_never_see_the_rehearsal() -> None:
    """The rehearsal changed no file of the checkout, and a staging command run from the checkout gets
    none of the local or rehearsal environment (only STACK=local loads the local one)."""
    diff = subprocess.run(["git", "status", "--porcelain", "--", "Pulumi.staging.yaml", "Pulumi.prod.yaml",
                           "tools/localenv/proto_stack"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    assert diff.stdout == ""
    env = {k: v for k, v in os.environ.items() if k not in ("STACK", "KUBECONFIG", "VAULT_TOKEN", "VAULT_ADDR")}
    seen = subprocess.run(["./tools/deploy/stack_env.sh", "env"], cwd=PROJECT_DIR, env={**env, "STACK": STACK},
                          capture_output=True, text=True, check=True).stdout
    rehearsal = rehearsal_env()
    assert rehearsal["VAULT_TOKEN"] not in seen and str(LOCAL_ENV) not in seen


def test_a_new_service_and_its_key_deploy_with_the_existing_identity_and_no_platform_step() -> None:
    """One team's change: a service added to the catalog, its key written by its owner; `make up` by the
    deploy identity the platform applied before (no `make identities` since), and its suite runs. The
    catalog is then restored and `make up` removes the service again."""
    import yaml

    project = REHEARSAL / "project"
    catalog = project / "catalog.yaml"
    committed = catalog.read_text()
    document = yaml.safe_load(committed)
    document["services"]["reporting"] = json.loads(json.dumps(document["services"]["agents"]))
    catalog.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        from config.loading import stack_settings

        settings = stack_settings(STACK, project_dir=project)
        (key,) = [k for k in settings.vault_keys if k.name == "reporting"]
        assert key.source == "external"
        password = "owner-chosen-" + key.name  # its owner writes it, in the shapes the suite checks
        vault_as("admin.env").secrets.kv.v2.create_or_update_secret(
            path=key.path, mount_point=key.mount,
            secret={p: settings.generated_property(key, p).value(password) for p in key.properties})
        up = in_rehearsal("make", "-s", "up", f"STACK={STACK}", extra={"PULUMI_SKIP_CONFIRMATIONS": "true"})
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]
        jobs = kube("get", "jobs", "-n", "integration-tests", "-l", "ameide.io/service=reporting")["items"]
        assert jobs and all(any(c["type"] == "Complete" and c["status"] == "True"
                                for c in j["status"].get("conditions", [])) for j in jobs)
    finally:
        catalog.write_text(committed)
    restored = in_rehearsal("make", "-s", "up", f"STACK={STACK}", extra={"PULUMI_SKIP_CONFIRMATIONS": "true"})
    assert restored.returncode == 0, restored.stdout[-3000:] + restored.stderr[-2000:]


def test_the_deploy_identity_cannot_read_an_external_value_nor_write_outside_its_paths() -> None:
    """Tried with the deploy identity's own Vault token and ServiceAccount token, not read off the policy."""
    deploy = vault_as("env")
    kv = deploy.secrets.kv.v2
    external = f"integration/{STACK}/integration-test-bearer-token"
    assert deploy.adapter.get(f"/v1/secret/subkeys/{external}")["data"]["subkeys"]  # its names: yes
    assert refused_by_vault(lambda: kv.read_secret_version(path=external, mount_point="secret",
                                                           raise_on_deleted_version=True))  # its value: no
    assert refused_by_vault(lambda: kv.create_or_update_secret(path=external, mount_point="secret",
                                                               secret={"token": "x"}))
    assert refused_by_vault(lambda: kv.create_or_update_secret(path="integration/prod/graph", mount_point="secret",
                                                               secret={"password": "x"}))
    assert refused_by_vault(lambda: deploy.sys.create_or_update_acl_policy("integration-tests-prod-read", 'path "*" {}'))
    # Its own ESO policy: only the exact text the program writes (allowed_parameters), never a wider one.
    assert refused_by_vault(lambda: deploy.sys.create_or_update_acl_policy(
        f"integration-tests-{STACK}-read", 'path "secret/data/*" { capabilities = ["read"] }'))
    assert refused_by_vault(lambda: deploy.write(
        f"auth/kubernetes/role/integration-tests-{STACK}-eso", bound_service_account_names=["default"],
        bound_service_account_namespaces=["integration-tests"], token_policies=[f"integration-tests-{STACK}-read"]))
    refused_by_kubernetes("env", "create", "configmap", "intruder", "-n", "default")
    refused_by_kubernetes("env", "get", "secrets", "-n", "kube-system")
    refused_by_kubernetes("env", "create", "namespace", "intruder")
    refused_by_kubernetes("env", "delete", "namespace", "integration-tests")


def test_the_preview_identity_cannot_write_anything() -> None:
    preview = vault_as("preview.env")
    kv = preview.secrets.kv.v2
    external = f"integration/{STACK}/integration-test-bearer-token"
    assert preview.adapter.get(f"/v1/secret/subkeys/{external}")["data"]["subkeys"]
    assert refused_by_vault(lambda: kv.read_secret_version(path=external, mount_point="secret",
                                                           raise_on_deleted_version=True))
    assert refused_by_vault(lambda: kv.create_or_update_secret(path=external, mount_point="secret",
                                                               secret={"token": "x"}))
    assert refused_by_vault(lambda: preview.sys.create_or_update_acl_policy(
        f"integration-tests-{STACK}-read", 'path "secret/data/*" { capabilities = ["read"] }'))
    assert refused_by_vault(lambda: preview.sys.delete_acl_policy(f"integration-tests-{STACK}-read"))
    assert refused_by_vault(lambda: preview.delete(f"auth/kubernetes/role/integration-tests-{STACK}-eso"))
    refused_by_kubernetes("preview.env", "create", "configmap", "intruder", "-n", "integration-tests")
    refused_by_kubernetes("preview.env", "get", "secrets", "-n", "integration-tests")
    name = kube("get", "externalsecrets.external-secrets.io", "-n", "integration-tests")["items"][0]["metadata"]["name"]
    refused_by_kubernetes("preview.env", "delete", "externalsecret.external-secrets.io", name, "-n", "integration-tests")
    refused_by_kubernetes("preview.env", "delete", "jobs", "--all", "-n", "integration-tests")


def test_drift_with_the_preview_identity_finds_nothing_and_says_what_it_could_not_read() -> None:
    """`make drift` as the daily job runs it: the preview identity's OIDC-exchanged credentials, read
    only. The rehearsed staging has not drifted; Helm's records (Secrets) are out of its reach, and it
    says so instead of failing; the state is untouched."""
    before = state()
    proc = in_rehearsal(".venv/bin/python", "-m", "deploy.drift", "--stack", STACK, who="preview.env")
    said = proc.stdout + proc.stderr
    assert proc.returncode == 0, said[-3000:]
    assert re.search(rf"^drift {STACK}: 0 drifted, \d+ expected, \d+ resources compared", proc.stdout, re.MULTILINE), said
    assert "the releases' values not compared" in proc.stdout and "Traceback" not in said
    assert state()["resources"] == before["resources"]


def test_a_missing_permission_stops_up_with_one_message_naming_the_identity() -> None:
    """`make up` with the preview identity's credentials: refused before anything runs, naming the
    deploy identity and the permission, and the state is untouched."""
    before = state()
    made = in_rehearsal("make", "-s", "up", f"STACK={STACK}", who="preview.env",
                        extra={"PULUMI_SKIP_CONFIRMATIONS": "true"})
    said = made.stdout + made.stderr
    assert made.returncode != 0, said[-2000:]
    assert f"deploy identity testinfra-deploy-{STACK}" in made.stderr and "Nothing was changed" in made.stderr, said
    assert re.search(r"Vault `(create|update)` on sys/policies/acl/", made.stderr), made.stderr
    assert "Traceback" not in said
    assert state()["resources"] == before["resources"]


def test_staging_destroyed_by_its_deploy_identity_leaves_the_platforms_namespace_empty() -> None:
    destroy = in_rehearsal("make", "-s", "destroy", f"STACK={STACK}", timeout=600,
                           extra={"PULUMI_SKIP_CONFIRMATIONS": "true"})
    assert destroy.returncode == 0, destroy.stdout[-3000:] + destroy.stderr[-2000:]
    assert not state().get("resources")
    assert kube("get", "namespace", "integration-tests")["metadata"]["name"] == "integration-tests"  # the platform's
    for kind in ("externalsecrets.external-secrets.io", "jobs", "networkpolicies", "resourcequotas"):
        assert kube("get", kind, "-n", "integration-tests")["items"] == [], kind
    assert not kube("get", "secrets", "-n", "integration-tests", "-l", "owner=helm")["items"]
    assert kube("get", "clustersecretstores.external-secrets.io")["items"] == []
    admin = vault_as("admin.env")
    assert f"integration-tests-{STACK}-read" not in admin.sys.list_acl_policies()["data"]["keys"]
    assert refused_or_absent(lambda: admin.read(f"auth/kubernetes/role/integration-tests-{STACK}-eso"))


