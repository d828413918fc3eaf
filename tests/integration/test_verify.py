"""`make verify`: the Vault half against a real OpenBao server; the Kubernetes half against
API-shaped objects built here (no API server runs on these machines: these stand in for what
one would return, and are labelled so)."""

from __future__ import annotations

import base64
import copy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import hvac
import pytest
import yaml

from config.errors import EnvironmentProblem
from config.model import Settings
from deploy.verify import (
    ClientCluster,
    EndpointError,
    HvacVaultReader,
    kube_checks,
    preflight_problems,
    report,
    vault_checks,
)
from tests.conftest import CANARY, PROJECT_DIR, _free_port, project_with_stack, settings_for


def settings_with_prefix(prefix: str, stack: str = "staging") -> Settings:
    return settings_for(stack, vaultPathPrefix=prefix)


@pytest.fixture(scope="module")
def root(openbao: dict[str, str]) -> hvac.Client:
    return hvac.Client(url=openbao["addr"], token=openbao["token"])


def populate(root: hvac.Client, settings: Settings, skip: dict[str, set[str] | None] | None = None) -> None:
    skip = skip or {}
    for key in settings.vault_keys:
        if key.name in skip and skip[key.name] is None:
            continue
        props = {p: f"{CANARY}-{p}" for p in key.properties if p not in (skip.get(key.name) or set())}
        props["unrelated"] = "x"
        root.secrets.kv.v2.create_or_update_secret(path=key.path, secret=props, mount_point=key.mount)


def test_vault_all_present(root: hvac.Client, openbao: dict[str, str]) -> None:
    s = settings_with_prefix("verify-ok")
    populate(root, s)
    checks = vault_checks(s, HvacVaultReader(openbao["addr"], openbao["token"]))
    assert all(c.ok for c in checks.values())
    text, ok = report(s, checks, None, None)
    assert ok and "all checks passed" in text and CANARY not in text


def test_vault_missing_key_and_property_are_named(root: hvac.Client, openbao: dict[str, str]) -> None:
    s = settings_with_prefix("verify-missing")
    populate(root, s, skip={"graph": {"database-url"}, "agents": None})
    checks = vault_checks(s, HvacVaultReader(openbao["addr"], openbao["token"]))
    assert checks["graph"].problems == ["property `database-url` missing at `secret/verify-missing/staging/graph`"]
    assert checks["agents"].problems[0].startswith("key missing at `secret/verify-missing/staging/agents`")
    text, ok = report(s, checks, None, None)
    assert not ok
    assert "✗ graph: property `database-url` missing at `secret/verify-missing/staging/graph`" in text
    assert CANARY not in text


def test_a_bad_token_is_one_clear_message(openbao: dict[str, str]) -> None:
    with pytest.raises(EndpointError, match="rejected the credentials"):
        HvacVaultReader(openbao["addr"], "not-a-token")


def test_a_token_without_the_policy_is_named(root: hvac.Client, openbao: dict[str, str]) -> None:
    s = settings_with_prefix("verify-forbidden")
    populate(root, s)
    token = root.auth.token.create(policies=["default"], ttl="5m")["auth"]["client_token"]
    with pytest.raises(EndpointError, match="may not read secret/subkeys/verify-forbidden/staging/"):
        vault_checks(s, HvacVaultReader(openbao["addr"], token))


def test_an_unreachable_vault_is_one_clear_message() -> None:
    with pytest.raises(EndpointError, match="is unreachable"):
        HvacVaultReader(f"http://127.0.0.1:{_free_port()}", "x")


def run_cli(*args: str, env: dict[str, str], project: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy.verify", *args], capture_output=True, text=True,
                          cwd=project, env={"PATH": "/usr/bin:/bin", **env})


def local_stack_at(tmp_path: Path, openbao_addr: str, prefix: str) -> Path:
    """The local stack deploying to the test's OpenBao, every key `external` (the owners write them)."""
    return project_with_stack(tmp_path / "project", vaultAddress=openbao_addr, vaultPathPrefix=prefix,
                              defaultSecretSource="external")


def test_cli_reports_missing_keys_and_exits_1(openbao: dict[str, str]) -> None:
    proc = run_cli("--stack", "prod", "--skip-kubernetes", "--vault-address", openbao["addr"],
                   env={"VAULT_TOKEN": openbao["token"]})
    assert proc.returncode == 1, proc.stderr
    assert "key missing at `secret/integration/prod/agents`" in proc.stdout
    assert "Traceback" not in proc.stderr


def subkeys_only_token(root: hvac.Client, settings: Settings, policy: str) -> str:
    """A token that may read the keys' subkeys (property names) and not their values."""
    paths = "\n".join(f'path "secret/subkeys/{k.path}" {{ capabilities = ["read"] }}' for k in settings.vault_keys)
    root.sys.create_or_update_policy(name=policy, policy=paths)
    token: str = root.auth.token.create(policies=[policy], ttl="5m")["auth"]["client_token"]
    return token


def test_verify_reads_property_names_not_values(root: hvac.Client, openbao: dict[str, str]) -> None:
    s = settings_with_prefix("verify-subkeys")
    populate(root, s)
    # A token that may read subkeys and not the data is enough for a full Vault check.
    checks = vault_checks(s, HvacVaultReader(openbao["addr"], subkeys_only_token(root, s, "verify-subkeys")))
    assert all(c.ok for c in checks.values()), checks


def test_a_vault_slower_than_the_deadline_is_one_message(root: hvac.Client, openbao: dict[str, str]) -> None:
    s = settings_with_prefix("verify-deadline")
    reader = HvacVaultReader(openbao["addr"], openbao["token"])
    started = time.monotonic()

    def slow(mount: str, path: str) -> set[str] | None:
        time.sleep(2)
        return None

    reader.subkeys = slow  # type: ignore[method-assign]
    with pytest.raises(EndpointError, match=rf"did not answer {len(s.vault_keys)} of {len(s.vault_keys)} key reads "
                                            r"within 0.5 s"):
        vault_checks(s, reader, deadline=0.5)
    assert time.monotonic() - started < 2


def test_preflight_names_absent_and_incomplete_external_keys_with_the_fix(root: hvac.Client,
                                                                         openbao: dict[str, str]) -> None:
    s = settings_with_prefix("preflight")
    populate(root, s, skip={"graph": {"database-url"}, "agents": None})
    problems = preflight_problems(s, HvacVaultReader(openbao["addr"], openbao["token"]))
    assert problems == [
        "Vault key secret/preflight/staging/agents (source `external`, owned by agents) does not exist: "
        + s.external_key_fix(next(k for k in s.vault_keys if k.name == "agents")),
        "Vault key secret/preflight/staging/graph (source `external`, owned by graph) lacks property database-url: "
        + s.external_key_fix(next(k for k in s.vault_keys if k.name == "graph")),
    ]
    assert "config.testinfra:secretSources.graph to `config`" in problems[1] and "Pulumi.staging.yaml" in problems[1]


def test_preflight_reads_only_subkeys_so_values_never_reach_it(root: hvac.Client, openbao: dict[str, str]) -> None:
    s = settings_with_prefix("preflight-subkeys")
    populate(root, s)
    # A token that may read subkeys but not the values is enough for the preflight.
    reader = HvacVaultReader(openbao["addr"], subkeys_only_token(root, s, "preflight-subkeys"))
    assert preflight_problems(s, reader) == []
    with pytest.raises(EndpointError, match="may not read"):
        reader.properties("secret", s.vault_keys[0].path)


def test_preflight_cli_exits_1_naming_the_key(openbao: dict[str, str], tmp_path: Path) -> None:
    project = local_stack_at(tmp_path, openbao["addr"], "preflight-cli")
    env = {"VAULT_TOKEN": openbao["token"]}
    proc = run_cli("--stack", "local", "--preflight", env=env, project=project)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "preflight local: Vault key secret/preflight-cli/local/agents (source `external`" in proc.stderr
    assert "Traceback" not in proc.stderr
    # VAULT_ADDR naming the same server (as `make local-env` sets it) is no mismatch.
    same = run_cli("--stack", "local", "--preflight", env={**env, "VAULT_ADDR": openbao["addr"] + "/"}, project=project)
    assert same.returncode == 1 and "preflight local: Vault key" in same.stderr


def test_preflight_refuses_a_vault_addr_that_is_not_where_the_stack_deploys(openbao: dict[str, str],
                                                                           tmp_path: Path) -> None:
    project = local_stack_at(tmp_path, openbao["addr"], "preflight-mismatch")
    elsewhere = f"http://127.0.0.1:{_free_port()}"
    proc = run_cli("--stack", "local", "--preflight", env={"VAULT_ADDR": elsewhere, "VAULT_TOKEN": openbao["token"]},
                   project=project)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (f"VAULT_ADDR is {elsewhere}, but stack local deploys to vaultAddress {openbao['addr']} (Pulumi.local.yaml)"
            in proc.stderr)
    assert "Unset VAULT_ADDR" in proc.stderr and "is unreachable" not in proc.stderr  # nothing was sent there
    assert openbao["token"] not in proc.stderr
    # make verify may be pointed elsewhere, but only explicitly; the preflight may not.
    explicit = run_cli("--stack", "local", "--preflight", "--vault-address", elsewhere,
                       env={"VAULT_TOKEN": "x"}, project=project)
    assert explicit.returncode == 2 and "--vault-address is for `make verify`" in explicit.stderr


def test_an_unreachable_vault_names_where_its_address_came_from(tmp_path: Path) -> None:
    port = _free_port()
    project = project_with_stack(tmp_path / "project", vaultAddress=f"http://127.0.0.1:{port}")
    from_stack = run_cli("--stack", "local", "--preflight", env={"VAULT_TOKEN": "x"}, project=project)
    assert from_stack.returncode == 2 and "Traceback" not in from_stack.stderr
    assert (f"Vault at http://127.0.0.1:{port} (from vaultAddress in Pulumi.local.yaml) is unreachable"
            in from_stack.stderr and "fix vaultAddress" in from_stack.stderr)
    explicit = run_cli("--stack", "staging", "--skip-kubernetes", "--vault-address", f"http://127.0.0.1:{port}",
                       env={"VAULT_TOKEN": "x"})
    assert explicit.returncode == 2 and "Traceback" not in explicit.stderr
    assert f"Vault at http://127.0.0.1:{port} (from --vault-address) is unreachable" in explicit.stderr


# --------------------------------------------------------------------------- Kubernetes half


class RecordedCluster:
    """API objects in the shape the API server returns them (recorded shape, not a live cluster)."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        for o in self.objects:
            meta = o["metadata"]
            if o["kind"] == kind and meta["name"] == name and meta.get("namespace") == namespace:
                return o
        return None

    def helm_releases(self, namespace: str) -> dict[str, str]:
        out = {}
        for o in self.objects:
            labels = o["metadata"].get("labels", {})
            if o["kind"] == "Secret" and labels.get("owner") == "helm" and o["metadata"]["namespace"] == namespace:
                out[labels["name"]] = labels["status"]
        return out


def healthy_cluster(s: Settings) -> list[dict[str, Any]]:
    ns = s.namespace
    objs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": ns, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}]
    for svc in s.services:
        if svc.secret_name:
            objs.append({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
                         "metadata": {"name": svc.secret_name, "namespace": ns},
                         "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced"}]}})
            objs.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                         "metadata": {"name": svc.secret_name, "namespace": ns},
                         "data": {m.secret_key: base64.b64encode(b"redacted").decode() for m in svc.secrets}})
        objs.append({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                     "metadata": {"name": f"sh.helm.release.v1.{svc.release_name}.v1", "namespace": ns,
                                  "labels": {"owner": "helm", "name": svc.release_name, "status": "deployed",
                                             "version": "1"}}})
    return objs


def test_kubernetes_healthy_cluster_passes() -> None:
    s = settings_with_prefix("integration")
    ns, per_service = kube_checks(s, RecordedCluster(healthy_cluster(s)))
    assert ns.ok and all(c.ok for checks in per_service.values() for c in checks)
    assert report(s, None, ns, per_service)[1]


def mutate(objs: list[dict[str, Any]], kind: str, name: str, change) -> list[dict[str, Any]]:
    objs = copy.deepcopy(objs)
    for o in objs:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            change(o)
    return objs


@pytest.mark.parametrize(
    ("kind", "name", "change", "expected"),
    [
        ("Namespace", "integration-tests", lambda o: o["metadata"]["labels"].clear(),
         "lacks label pod-security.kubernetes.io/enforce=restricted"),
        ("ExternalSecret", "graph-int-tests-secrets",
         lambda o: o["status"]["conditions"][0].update(status="False", message="could not get secret data from provider"),
         "`graph-int-tests-secrets` not Ready: could not get secret data from provider"),
        ("Secret", "transformation-int-tests-secrets", lambda o: o["data"].pop("transformation-db-password"),
         "lacks key `transformation-db-password` (TRANSFORMATION_DB_PASSWORD)"),
        ("Secret", "sh.helm.release.v1.test-www-ameide.v1", lambda o: o["metadata"]["labels"].update(status="failed"),
         "Helm release `test-www-ameide` is failed"),
    ],
    ids=["psa-label", "not-ready", "secret-key", "release-failed"],
)
def test_kubernetes_problems_are_named(kind: str, name: str, change, expected: str) -> None:
    s = settings_with_prefix("integration")
    ns, per_service = kube_checks(s, RecordedCluster(mutate(healthy_cluster(s), kind, name, change)))
    text, ok = report(s, None, ns, per_service)
    assert not ok and expected in text, text


def test_missing_objects_are_named() -> None:
    s = settings_with_prefix("integration")
    objs = [o for o in healthy_cluster(s) if o["metadata"]["name"] != "threads-int-tests-secrets"]
    text, ok = report(s, None, *kube_checks(s, RecordedCluster(objs)))
    assert not ok
    assert "ExternalSecret `threads-int-tests-secrets` does not exist" in text
    assert "Secret `threads-int-tests-secrets` does not exist" in text


def kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "ameide-staging", "context": {"cluster": "c", "user": "u"}},
                     {"name": "other", "context": {"cluster": "c", "user": "u"}}],
    }))
    return path


def test_the_real_client_on_an_unreachable_api_server_is_one_clear_message(tmp_path: Path) -> None:
    reader = ClientCluster("ameide-staging", str(kubeconfig(tmp_path, f"http://127.0.0.1:{_free_port()}")))
    with pytest.raises(EnvironmentProblem, match="Kubernetes API unreachable"):
        reader.get("Namespace", None, "integration-tests")


def test_a_missing_context_is_one_clear_message(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="no usable context 'nosuch'"):
        ClientCluster("nosuch", str(kubeconfig(tmp_path, "http://127.0.0.1:1")))


def test_the_table_never_shows_secret_data() -> None:
    s = settings_with_prefix("integration")
    objs = mutate(healthy_cluster(s), "Secret", "graph-int-tests-secrets", lambda o: o["data"].pop("DATABASE_URL"))
    text, _ = report(s, None, *kube_checks(s, RecordedCluster(objs)))
    assert "lacks key `DATABASE_URL`" in text
    assert base64.b64encode(b"redacted").decode() not in text and "redacted" not in text


def test_make_preview_stops_at_the_preflight_before_the_pulumi_cli(root: hvac.Client, openbao: dict[str, str],
                                                                   tmp_path: Path) -> None:
    # A stand-in `pulumi` on PATH records whether the CLI was reached (the real one runs in tests/e2e).
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    project = local_stack_at(tmp_path, openbao["addr"], "preflight-make")
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "STACK": "local", "VAULT_TOKEN": openbao["token"],
           "PULUMI_BACKEND_URL": f"file://{tmp_path}", "PULUMI_CONFIG_PASSPHRASE": "test"}
    command = [sys.executable, "-m", "deploy.stack", "preview", "--diff"]
    stopped = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert stopped.returncode == 1 and "preflight local: Vault key secret/preflight-make/local/" in stopped.stderr
    assert not calls.exists()  # nothing ran, nothing changed

    populate(root, settings_for("local", vaultPathPrefix="preflight-make", defaultSecretSource="external"))
    passed = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert passed.returncode == 0, passed.stderr
    # The Automation API selects (creating the local stack in its own backend), then the CLI itself runs.
    made = calls.read_text().splitlines()
    assert made[0] == "version" and made[-1] == "preview --stack local --policy-pack policy --diff", made
    assert any("stack select" in line and "--stack local" in line for line in made[1:-1]), made


def test_make_up_of_a_staging_stack_the_backend_lacks_stops_before_vault_and_creates_nothing(tmp_path: Path) -> None:
    # A stand-in `pulumi` whose backend has no such stack (the real CLI's answer is pinned in tests/e2e).
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n'
                    'case "$*" in *"stack select"*) echo "error: no stack named \'staging\' found" >&2; exit 255;; esac\n')
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "STACK": "staging", "VAULT_TOKEN": "unused"}
    proc = subprocess.run([sys.executable, "-m", "deploy.stack", "up"], cwd=PROJECT_DIR, env=env, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Stack staging cannot be selected" in proc.stderr and "no stack named 'staging' found" in proc.stderr
    assert "make init STACK=staging" in proc.stderr and "preflight" not in proc.stderr
    made = calls.read_text().splitlines()
    assert made[0] == "version" and all("stack select" in line for line in made[1:]), made  # nothing created
