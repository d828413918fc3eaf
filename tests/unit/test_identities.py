"""The deploy and preview identities of a stack: what each may do, and what neither may."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from config.identities import DEPLOY, PREVIEW, identity, platform_namespace
from deploy import permissions
from offline import identities as rendered
from tests.conftest import PROJECT_DIR, canary_config, fixture_project, fixture_settings, settings_for

WRITES = {"create", "update", "patch", "delete", "sudo", "bind", "escalate"}


def all_kube_verbs(ident) -> set[str]:
    return {v for g in ident.kube for v in g.verbs}


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_the_preview_identity_writes_nothing_and_reads_no_value_nor_secret(stack: str) -> None:
    ident = identity(fixture_settings(stack), PREVIEW)
    for grant in ident.vault:
        assert set(grant.capabilities) <= {"read", "list"} or grant.path == "sys/capabilities-self", grant
        assert "/data/" not in grant.path, grant
    assert not all_kube_verbs(ident) & WRITES
    assert not any(r in ("secrets", "pods/log") for g in ident.kube for r in g.resources)


def test_the_deploy_identity_reads_no_external_value_and_writes_only_the_stacks_own_paths() -> None:
    settings = fixture_settings("staging")
    ident = identity(settings, DEPLOY)
    external = [k for k in settings.vault_keys if k.source == "external"]
    assert external
    assert not any(k.api_read_path == g.path for k in external for g in ident.vault)
    # sys/capabilities-self takes `update` for what is a question (which of these paths may I use?).
    written = [g for g in ident.vault
               if set(g.capabilities) & {"create", "update", "delete"} and g.path != "sys/capabilities-self"]
    assert {g.path for g in written} == {f"sys/policies/acl/{settings.vault_policy_name}",
                                         f"auth/{settings.stack.vault_auth_mount}/role/{settings.vault_role_name}"}


def test_keys_the_program_writes_are_the_only_data_paths_the_deploy_identity_holds() -> None:
    config, secret_keys = canary_config("staging")
    from config.loading import load_settings

    settings = load_settings(project_dir=fixture_project(), environment="staging", config=config,
                             secret_keys=secret_keys)
    data = {g.path for g in identity(settings, DEPLOY).vault if "/data/" in g.path}
    assert data == {w.key.api_read_path for w in settings.vault_key_writes} and data


def test_the_eso_policy_and_role_can_be_written_only_as_the_program_declares_them(evaluations) -> None:
    settings = fixture_settings("staging")
    grants = {g.path: dict(g.allowed) for g in identity(settings, DEPLOY).vault}
    declared = evaluations["staging"].of_type("vault:index/policy:Policy")[0].inputs
    assert grants[f"sys/policies/acl/{declared['name']}"] == {"policy": (declared["policy"],)}
    role = evaluations["staging"].of_type("vault:kubernetes/authBackendRole:AuthBackendRole")[0].inputs
    allowed = grants[f"auth/{role['backend']}/role/{role['roleName']}"]
    assert allowed["token_policies"] == (role["tokenPolicies"][0], tuple(role["tokenPolicies"]))
    assert allowed["bound_service_account_names"][1] == tuple(role["boundServiceAccountNames"])
    assert allowed["bound_service_account_namespaces"][1] == tuple(role["boundServiceAccountNamespaces"])


def test_a_platform_owned_namespace_keeps_the_deploy_rights_in_it() -> None:
    settings = settings_for("staging", manageNamespace=False)
    ident = identity(settings, DEPLOY)
    docs = ident.kube_manifests()
    role = next(d for d in docs if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == settings.namespace
    assert not [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("in-namespace")]
    namespaces = [g for g in ident.kube if "namespaces" in g.resources]
    assert [(g.verbs, g.names) for g in namespaces] == [(("get",), (settings.namespace,))]
    created = platform_namespace(settings)
    assert created and created["metadata"]["labels"] == settings.namespace_labels


def test_a_namespace_the_program_creates_cannot_hold_a_binding_beforehand_so_the_grant_is_cluster_wide() -> None:
    settings = settings_for("staging", manageNamespace=True)
    ident = identity(settings, DEPLOY)
    assert not ident.scoped and platform_namespace(settings) is None
    kinds = {(d["kind"], d["metadata"]["name"]) for d in ident.kube_manifests()}
    assert ("ClusterRoleBinding", f"{ident.name}-in-namespace") in kinds and ("Role", f"{ident.name}-in-namespace") not in kinds
    namespace_verbs = {v for g in ident.kube if "namespaces" in g.resources and not g.names for v in g.verbs}
    assert "create" in namespace_verbs and "delete" not in namespace_verbs  # delete only by name


def test_the_deploy_identity_holds_what_it_grants_a_runner_role() -> None:
    rule = {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}
    settings = settings_for("staging", runnerRbac=[rule])
    grants = identity(settings, DEPLOY).kube
    assert any(g.group == "apps" and g.resources == ("deployments",) and set(g.verbs) == {"get", "list"} for g in grants)
    assert any("roles" in g.resources for g in grants)


def test_the_message_names_the_identity_the_permission_and_the_fix() -> None:
    ident = identity(fixture_settings("staging"), DEPLOY)
    held = {g.path: {"read", "list"} for g in ident.vault}
    missing = permissions.missing_in_vault(ident, lambda paths: {p: held.get(p, set()) for p in paths})
    said = permissions.message(ident, missing, "Pulumi.staging.yaml")
    assert said and ident.name in said and "Nothing was changed" in said
    assert "`create` on sys/policies/acl/" in said and f"make identities STACK={ident.environment}" in said
    assert permissions.missing_in_vault(ident, lambda paths: {p: {"root"} for p in paths}) == []
    assert permissions.message(ident, [], "Pulumi.staging.yaml") is None


def test_every_kubernetes_grant_becomes_questions_one_per_verb_resource_and_name() -> None:
    ident = identity(settings_for("staging", manageNamespace=False), PREVIEW)
    questions = [q for q, _ in permissions.kube_questions(ident)]
    assert len(questions) == sum(len(g.resources) * len(g.verbs) * max(1, len(g.names)) for g in ident.kube)
    denied = {q for q in questions if q.resource == "externalsecrets" and q.verb == "watch"}
    missing = permissions.missing_in_kubernetes(ident, lambda q: q not in denied)
    assert [m.permission for m in missing] == ["`watch` external-secrets.io/externalsecrets in namespace integration-tests"]


def test_make_identities_writes_the_platform_files_and_refuses_a_wrong_stack(tmp_path) -> None:
    settings = fixture_settings("staging")
    written = rendered.write(settings, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"deploy.hcl", "preview.hcl", "kubernetes.yaml", "grants.txt"}
    docs = list(yaml.safe_load_all((tmp_path / "kubernetes.yaml").read_text()))
    assert {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} <= {d["kind"] for d in docs}
    assert all(i.name in (tmp_path / "grants.txt").read_text() for i in written)
    proc = subprocess.run([sys.executable, "-m", "offline.identities", "--stack", "nosuch"], cwd=PROJECT_DIR,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_make_identities_of_the_review_template_writes_the_api_servers_github_authenticator(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "offline.identities", "--stack", "review", "--out", str(tmp_path)],
                          cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load((tmp_path / "authentication-config.yaml").read_text())
    assert config["kind"] == "AuthenticationConfiguration"
    assert config["jwt"][0]["issuer"]["url"] == "https://token.actions.githubusercontent.com"
    assert "vault auth enable -path=jwt jwt" in proc.stdout and "secrets enable -path=transit transit" in proc.stdout
