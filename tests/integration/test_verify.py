"""`make verify`: the Vault half against a real OpenBao server; the Kubernetes half against
API-shaped objects built here (no API server runs on these machines: these stand in for what
one would return, and are labelled so)."""

from __future__ import annotations

import base64
import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import hvac
import pytest
import yaml

from config.errors import EnvironmentProblem
from config.files import stack_config
from config.loading import load_settings
from config.model import Settings
from config.naming import PROJECT
from live.verify import (
    ClientKubeReader,
    EndpointError,
    HvacVaultReader,
    kube_checks,
    preflight_problems,
    report,
    vault_checks,
)
from tests.conftest import CANARY, PROJECT_DIR, _free_port, settings_for

pytestmark = pytest.mark.xdist_group("openbao")


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
    with pytest.raises(EndpointError, match="may not read secret/verify-forbidden/staging/"):
        vault_checks(s, HvacVaultReader(openbao["addr"], token))


def test_an_unreachable_vault_is_one_clear_message() -> None:
    with pytest.raises(EndpointError, match="is unreachable"):
        HvacVaultReader(f"http://127.0.0.1:{_free_port()}", "x")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "live.verify", *args], capture_output=True, text=True,
                          cwd=PROJECT_DIR, env={"PATH": "/usr/bin:/bin", **env})


def test_cli_reports_missing_keys_and_exits_1(openbao: dict[str, str]) -> None:
    proc = run_cli("--stack", "prod", "--skip-kubernetes",
                   env={"VAULT_ADDR": openbao["addr"], "VAULT_TOKEN": openbao["token"]})
    assert proc.returncode == 1, proc.stderr
    assert "key missing at `secret/integration/prod/agents`" in proc.stdout
    assert "Traceback" not in proc.stderr


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
    paths = "\n".join(f'path "secret/subkeys/{k.path}" {{ capabilities = ["read"] }}' for k in s.vault_keys)
    root.sys.create_or_update_policy(name="preflight-subkeys", policy=paths)
    token = root.auth.token.create(policies=["preflight-subkeys"], ttl="5m")["auth"]["client_token"]
    reader = HvacVaultReader(openbao["addr"], token)
    assert preflight_problems(s, reader) == []
    with pytest.raises(EndpointError, match="may not read"):
        reader.properties("secret", s.vault_keys[0].path)


def test_preflight_cli_exits_1_naming_the_key(openbao: dict[str, str]) -> None:
    env = {"VAULT_ADDR": openbao["addr"], "VAULT_TOKEN": openbao["token"]}
    proc = run_cli("--stack", "prod", "--preflight", env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "preflight prod: Vault key secret/integration/prod/agents (source `external`" in proc.stderr
    assert "Traceback" not in proc.stderr
    # local generates every key: nothing to check but the connection.
    assert run_cli("--stack", "local", "--preflight", env=env).returncode == 0


def test_preflight_names_where_an_unreachable_address_came_from() -> None:
    port = _free_port()
    from_env = run_cli("--stack", "local", "--preflight",
                       env={"VAULT_ADDR": f"http://127.0.0.1:{port}", "VAULT_TOKEN": "x"})
    assert from_env.returncode == 2 and "Traceback" not in from_env.stderr
    assert f"Vault at http://127.0.0.1:{port} (from VAULT_ADDR) is unreachable" in from_env.stderr
    settings = load_settings(project_dir=PROJECT_DIR, environment="local",
                             config={**stack_config("local")[0], f"{PROJECT}:vaultAddress": f"http://127.0.0.1:{port}"},
                             secret_keys=[])
    with pytest.raises(EndpointError, match=r"\(from vaultAddress in Pulumi.local.yaml\) is unreachable.*fix vaultAddress"):
        HvacVaultReader(settings.stack.vault_address, "x", address_from=f"vaultAddress in {settings.stack_file}")


def test_cli_with_unreachable_vault_exits_2_without_traceback() -> None:
    proc = run_cli("--stack", "staging", "--skip-kubernetes",
                   env={"VAULT_ADDR": f"http://127.0.0.1:{_free_port()}", "VAULT_TOKEN": "x"})
    assert proc.returncode == 2
    assert "is unreachable" in proc.stderr and "Traceback" not in proc.stderr


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
    reader = ClientKubeReader("ameide-staging", str(kubeconfig(tmp_path, f"http://127.0.0.1:{_free_port()}")))
    with pytest.raises(EnvironmentProblem, match="Kubernetes API unreachable"):
        reader.get("Namespace", None, "integration-tests")


def test_a_missing_context_is_one_clear_message(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="no usable context 'nosuch'"):
        ClientKubeReader("nosuch", str(kubeconfig(tmp_path, "http://127.0.0.1:1")))


def test_the_table_never_shows_secret_data() -> None:
    s = settings_with_prefix("integration")
    objs = mutate(healthy_cluster(s), "Secret", "graph-int-tests-secrets", lambda o: o["data"].pop("DATABASE_URL"))
    text, _ = report(s, None, *kube_checks(s, RecordedCluster(objs)))
    assert "lacks key `DATABASE_URL`" in text
    assert base64.b64encode(b"redacted").decode() not in text and "redacted" not in text


def test_make_preview_stops_at_the_preflight_before_the_pulumi_cli(root: hvac.Client, openbao: dict[str, str],
                                                                   tmp_path: Path) -> None:
    # The Pulumi CLI cannot be installed here; a stand-in on PATH records whether it was reached.
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "STACK": "prod",
           "VAULT_ADDR": openbao["addr"], "VAULT_TOKEN": openbao["token"]}
    script = str(PROJECT_DIR / "tools" / "pulumi.sh")
    prod = settings_with_prefix("integration", "prod")  # the checked-in prefix
    for key in prod.vault_keys:
        root.secrets.kv.v2.delete_metadata_and_all_versions(path=key.path, mount_point=key.mount)
    stopped = subprocess.run([script, "preview", "--diff"], env=env, capture_output=True, text=True, check=False)
    assert stopped.returncode == 1 and "preflight prod: Vault key secret/integration/prod/" in stopped.stderr
    assert not calls.exists()  # nothing ran, nothing changed

    populate(root, prod)
    try:
        passed = subprocess.run([script, "preview", "--diff"], env=env, capture_output=True, text=True, check=False)
    finally:  # other tests of this server expect prod's keys absent
        for key in prod.vault_keys:
            root.secrets.kv.v2.delete_metadata_and_all_versions(path=key.path, mount_point=key.mount)
    assert passed.returncode == 0, passed.stderr
    assert calls.read_text().splitlines() == ["stack select --create prod", "preview --stack prod --policy-pack policy --diff"]
