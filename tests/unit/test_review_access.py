"""What a pull request's review job may reach (config/review_access.py) and how it gets its
credentials (deploy/review_access.py): the grant's shape, the stack file's refusals, the exchange's
token sources. The grant on a real OpenBao and API server: tests/integration, tests/e2e."""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.errors import ConfigError
from config.files import PROJECT_DIR
from config.github_oidc import authentication_config, review_username
from config.loading import stack_settings
from config.review_access import grant, secrets_provider
from deploy import oidc_exchange as oidc_login
from deploy import oidc_token
from deploy.review_stack_file import write_stack_file


def pr7(review_project: Path) -> Any:
    write_stack_file("pr-7", project=review_project)
    return stack_settings("pr-7", project_dir=review_project)


def test_the_jwt_role_takes_only_pull_request_7s_token_and_gives_only_its_policy(review_project: Path) -> None:
    settings = pr7(review_project)
    plan = grant(settings)
    access = settings.stack.review_access
    role = plan.jwt_role
    assert role["bound_claims"] == {"repository": access.repository, "ref": "refs/pull/7/merge",
                                    "event_name": "pull_request"}
    assert role["bound_audiences"] == [access.audience] and role["token_policies"] == [plan.deploy_policy_name]
    assert role["token_no_default_policy"] is True and role["token_type"] == "service"  # revocable by accessor
    assert role["token_ttl"] == role["token_explicit_max_ttl"] == access.token_minutes * 60
    assert plan.eso_role["bound_service_account_namespaces"] == ["integration-tests-pr-7"]
    assert plan.eso_role["token_policies"] == [plan.read_policy_name]


def test_the_pull_requests_policy_writes_no_policy_no_role_and_nothing_of_another_stack(review_project: Path) -> None:
    policy = grant(pr7(review_project)).deploy_policy
    paths = [line.split('"')[1] for line in policy.splitlines() if line.startswith("path ")]
    assert not [p for p in paths if p.startswith(("sys/policies", "sys/auth", "sys/mounts", "auth/"))
                and p != "auth/token/lookup-self"]
    kv = [p for p in paths if p.startswith("secret/") and "/metadata/integration/review/" not in p
          and "/subkeys/integration/review/" not in p]
    assert kv and all("/integration/pr-7/" in p for p in kv if "/integration/review/" not in p), kv
    assert "transit/encrypt/testinfra-deploy-pr-7" in paths and "transit/decrypt/testinfra-deploy-pr-7" in paths
    assert not [p for p in paths if p.startswith("transit/") and "pr-7" not in p and not p.endswith("-references")]


def test_the_kubernetes_grant_is_one_role_in_its_own_namespace_for_its_own_username(review_project: Path) -> None:
    settings = pr7(review_project)
    plan = grant(settings)
    kinds = {m["kind"]: m for m in plan.manifests}
    assert set(kinds) == {"Namespace", "ResourceQuota", "Role", "RoleBinding", "ClusterRoleBinding"}
    assert kinds["RoleBinding"]["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                                 "name": review_username(settings.stack.review_access, 7)}]
    assert kinds["RoleBinding"]["metadata"]["namespace"] == kinds["Role"]["metadata"]["namespace"] == plan.namespace
    labels = kinds["Namespace"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # The only cluster-wide object: Vault's token review for the store's account in this namespace.
    binding = kinds["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == "system:auth-delegator"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "external-secrets-vault",
                                    "namespace": plan.namespace}]
    namespaces = [r for r in kinds["Role"]["rules"] if "namespaces" in r["resources"]]
    assert namespaces == [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"],
                           "resourceNames": [plan.namespace]}]
    quotas = [r for r in kinds["Role"]["rules"] if "resourcequotas" in r["resources"] and "delete" in r["verbs"]]
    assert quotas and all(r["resourceNames"] == ["integration-tests"] for r in quotas)  # never the ceiling


def test_the_api_servers_authenticator_admits_only_this_repositorys_jobs(review_project: Path) -> None:
    access = pr7(review_project).stack.review_access
    (jwt,) = authentication_config(access, "https://issuer.example")["jwt"]
    assert jwt["issuer"] == {"url": "https://issuer.example", "audiences": [access.audience]}
    rules = " ".join(r["expression"] for r in jwt["claimValidationRules"])
    assert access.repository in rules and "pull_request" in rules and "refs/pull/" in rules
    assert "claims.environment" in rules  # a job in a GitHub environment, or a pull request's own
    assert jwt["claimMappings"]["groups"] == {"expression": "[]"}


def test_a_review_stack_keeps_its_state_with_its_own_transit_key(review_project: Path) -> None:
    assert secrets_provider(pr7(review_project)) == "hashivault://testinfra-deploy-pr-7?engine=transit"


@pytest.mark.parametrize(("key", "value", "said"), [
    ("secretStoreKind", "ClusterSecretStore", "secretStoreKind: a review stack needs SecretStore"),
    ("manageNamespace", True, "manageNamespace: a review stack needs false"),
    ("vaultManageAuthBackend", True, "vaultManageAuthBackend: a review stack needs false"),
    ("reviewAccess", None, "reviewAccess: a review stack needs set"),
])
def test_a_review_template_that_would_give_a_pull_request_more_is_refused(review_project: Path, key, value, said) -> None:
    path = review_project / "Pulumi.review.yaml"
    document = yaml.safe_load(path.read_text())
    if value is None:
        document["config"].pop(f"testinfra:{key}")
    else:
        document["config"][f"testinfra:{key}"] = value
        if key == "vaultManageAuthBackend":
            document["config"]["testinfra:vaultKubernetesHost"] = "https://api.example:6443"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match=said):
        pr7(review_project)


def test_the_exec_credential_carries_the_tokens_expiry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 1796650000}).encode()).decode().rstrip("=")
    (tmp_path / "token").write_text(f"e30.{payload}.sig\n")
    monkeypatch.setenv("OIDC_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    credential = oidc_token.exec_credential("aud")
    assert credential["status"] == {"token": f"e30.{payload}.sig", "expirationTimestamp": "2026-12-07T13:26:40Z"}


def test_kubectl_reads_the_credential_alone_on_stdout_and_a_missing_token_as_one_line_on_stderr(
        tmp_path: Path) -> None:
    (tmp_path / "token").write_text("e30.e30.sig\n")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(PROJECT_DIR), "OIDC_TOKEN_FILE": str(tmp_path / "token")}
    given = subprocess.run([sys.executable, "-m", "deploy.exec_credential", "--audience", "aud"], env=env,
                           capture_output=True, text=True, check=False, timeout=60)
    assert given.returncode == 0 and given.stderr == ""
    assert json.loads(given.stdout) == {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                                        "status": {"token": "e30.e30.sig"}}  # no `exp`: client-go asks each time
    env.pop("OIDC_TOKEN_FILE")
    missing = subprocess.run([sys.executable, "-m", "deploy.exec_credential", "--audience", "aud"], env=env,
                             capture_output=True, text=True, check=False, timeout=60)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "id-token: write" in missing.stderr


def test_in_a_github_job_the_token_is_asked_for_with_the_audience(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str]] = []

    class GitHub(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append((self.path, self.headers["Authorization"]))
            body = json.dumps({"value": "the-id-token"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), GitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", f"http://127.0.0.1:{server.server_address[1]}/token?x=1")
        monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runtime-bearer")
        assert oidc_login.oidc_token("testinfra review") == "the-id-token"
    finally:
        server.shutdown()
    assert asked == [("/token?x=1&audience=testinfra%20review", "bearer runtime-bearer")]


def test_without_any_token_source_the_exchange_says_what_the_job_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "OIDC_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(oidc_login.LoginError, match="id-token: write"):
        oidc_login.oidc_token("aud")
