"""Review access: the trusted provisioner of one pull request's credentials, and the job's exchange.

Owns: `make review-grant PR=<n>` and `make review-revoke PR=<n>` -- run with the platform's
credentials by code of the base branch only (never a pull request's checkout) -- which create and
remove everything config/review_access.py decides for pull request <n>: its namespace, quota
ceiling, Role and RoleBinding for its OIDC username, token-review binding, and in Vault its deploy
policy, JWT role, ESO read policy and role, and transit key (revoke first revokes every token of the
pull request's two roles, by accessor); and `make review-login PR=<n>`, the review job's side: its
GitHub OIDC token exchanged for a Vault token of the pull request's JWT role and a kubeconfig whose
user is that token (the API server's JWT authenticator maps it), written 0600 to
build/review/pr-<n>/ -- no long-lived credential anywhere in the job.

The OIDC token comes from GitHub (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN, `permissions: id-token:
write`) or from the file REVIEW_OIDC_TOKEN_FILE names (the local environment's issuer).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from clients.vault import HvacVaultReader
from config import cli, naming
from config.errors import EnvironmentProblem
from config.files import PROJECT_DIR, write_private
from config.model import Settings
from config.review_access import ReviewGrant, access_of, grant

MANAGER = "testinfra-review-provisioner"
ORDER = ("Namespace", "ResourceQuota", "Role", "RoleBinding", "ClusterRoleBinding")


class ReviewAccessError(EnvironmentProblem):
    """The exchange or the provisioner could not finish."""


def review_settings(pull_request: str, project: Path = PROJECT_DIR) -> Settings:
    from config.loading import stack_settings
    from deploy.review import write_stack_file

    stack = naming.review_stack(pull_request)
    write_stack_file(stack, project=project)
    return stack_settings(stack, project_dir=project)


def platform_vault(settings: Settings) -> HvacVaultReader:
    token = os.environ.get("VAULT_TOKEN")
    if not token:
        raise ReviewAccessError("VAULT_TOKEN is not set: review-grant and review-revoke run with the platform's "
                                "Vault credential (the review-provision environment), never a pull request's")
    return HvacVaultReader(settings.stack.vault_address.rstrip("/"), token, ca=os.environ.get("VAULT_CACERT"),
                           address_from=f"vaultAddress in {settings.stack_file}")


def dynamic_client(settings: Settings) -> Any:
    from kubernetes.dynamic import DynamicClient

    from clients.kubernetes import api_client

    return DynamicClient(api_client(settings.stack.kube_context, os.environ.get("KUBECONFIG")))  # type: ignore[no-untyped-call]


def _resource(kube: Any, manifest: dict[str, Any]) -> Any:
    return kube.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])


def _applier(kube: Any, manifest: dict[str, Any]) -> Callable[[], Any]:
    meta = manifest["metadata"]
    return lambda: _resource(kube, manifest).server_side_apply(
        body=manifest, name=meta["name"], namespace=meta.get("namespace"), field_manager=MANAGER,
        force_conflicts=True)


def _deleter(kube: Any, manifest: dict[str, Any]) -> Callable[[], Any]:
    return lambda: _resource(kube, manifest).delete(name=manifest["metadata"]["name"])


def kube_call(fn: Callable[[], Any], what: str, *, missing_ok: bool = True) -> Any:
    """The dynamic client's errors as one message (404: gone already, when allowed)."""
    import urllib3
    from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError

    try:
        return fn()
    except NotFoundError:
        if missing_ok:
            return None
        raise ReviewAccessError(f"Kubernetes has no {what}") from None
    except DynamicApiError as exc:
        raise ReviewAccessError(f"Kubernetes refused {what} ({exc.status} {exc.reason}): the provisioner needs the "
                                "platform's credentials for the stack's kubeContext") from None
    except urllib3.exceptions.HTTPError as exc:
        raise ReviewAccessError(f"Kubernetes API unreachable ({type(exc).__name__}) for {what}") from None


def provision(plan: ReviewGrant, vault: HvacVaultReader, kube: Any) -> None:
    for manifest in sorted(plan.manifests, key=lambda m: ORDER.index(m["kind"])):
        kube_call(_applier(kube, manifest), f"{manifest['kind']} {manifest['metadata']['name']}", missing_ok=False)
    vault.write(f"sys/policies/acl/{plan.deploy_policy_name}", {"policy": plan.deploy_policy})
    vault.write(f"sys/policies/acl/{plan.read_policy_name}", {"policy": plan.read_policy})
    vault.write(f"auth/{plan.jwt_mount}/role/{plan.jwt_role_name}", plan.jwt_role)
    vault.write(f"auth/{plan.eso_auth_mount}/role/{plan.eso_role_name}", plan.eso_role)
    if vault.read(f"{plan.transit_mount}/keys/{plan.transit_key}") is None:
        vault.write(f"{plan.transit_mount}/keys/{plan.transit_key}", {"type": "aes256-gcm96"})


def revoke_tokens(plan: ReviewGrant, vault: HvacVaultReader) -> int:
    """Every live token of the pull request's JWT role and ESO role, revoked by accessor."""
    roles = {(f"auth/{plan.jwt_mount}/", plan.jwt_role_name), (f"auth/{plan.eso_auth_mount}/", plan.eso_role_name)}
    revoked = 0
    for accessor in vault.list("auth/token/accessors"):
        found = vault.write("auth/token/lookup-accessor", {"accessor": accessor}).get("data") or {}
        role = (found.get("meta") or {}).get("role")
        if any(str(found.get("path", "")).startswith(mount) and role == name for mount, name in roles):
            vault.write("auth/token/revoke-accessor", {"accessor": accessor})
            revoked += 1
    return revoked


def deprovision(plan: ReviewGrant, vault: HvacVaultReader, kube: Any) -> int:
    revoked = revoke_tokens(plan, vault)
    vault.delete(f"auth/{plan.jwt_mount}/role/{plan.jwt_role_name}")
    vault.delete(f"auth/{plan.eso_auth_mount}/role/{plan.eso_role_name}")
    vault.delete(f"sys/policies/acl/{plan.deploy_policy_name}")
    vault.delete(f"sys/policies/acl/{plan.read_policy_name}")
    if vault.read(f"{plan.transit_mount}/keys/{plan.transit_key}") is not None:
        vault.write(f"{plan.transit_mount}/keys/{plan.transit_key}/config", {"deletion_allowed": True})
        vault.delete(f"{plan.transit_mount}/keys/{plan.transit_key}")
    for manifest in sorted(plan.manifests, key=lambda m: -ORDER.index(m["kind"])):
        if manifest["kind"] in ("Namespace", "ClusterRoleBinding"):  # the rest goes with the namespace
            kube_call(_deleter(kube, manifest), f"{manifest['kind']} {manifest['metadata']['name']}")
    return revoked


def revoker() -> Callable[[str], str]:
    """The sweep's revoke of one review stack's grant, with the platform's credentials."""
    def revoke(stack: str) -> str:
        settings = review_settings(stack[len(naming.REVIEW_STACK_PREFIX):])
        revoked = deprovision(grant(settings), platform_vault(settings), dynamic_client(settings))
        return f"grant revoked ({revoked} token(s))"
    return revoke


def granted_stacks() -> list[str]:
    """Review stacks whose pull request holds a grant: the JWT roles in Vault (the template's mount)."""
    from config.loading import stack_settings
    from config.review_access import transit_key

    template = stack_settings(naming.REVIEW_TEMPLATE, project_dir=PROJECT_DIR)
    base = transit_key("")  # every review role is named like its stack's key: <base>pr-<n>
    roles = platform_vault(template).list(f"auth/{access_of(template).jwt_auth_mount}/role")
    return [name[len(base):] for name in roles if name.startswith(base) and naming.is_review_stack(name[len(base):])]


def oidc_token(audience: str) -> str:
    """The job's GitHub OIDC token for `audience` (or the local issuer's, from a file)."""
    url, bearer = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"), os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if url and bearer:
        request = urllib.request.Request(f"{url}&audience={urllib.parse.quote(audience)}",
                                         headers={"Authorization": f"bearer {bearer}"})
        try:
            with urllib.request.urlopen(request, timeout=20) as answer:
                return str(json.loads(answer.read())["value"])
        except (OSError, ValueError, KeyError) as exc:
            raise ReviewAccessError(f"GitHub gave no OIDC token ({type(exc).__name__}): the job needs "
                                    "`permissions: id-token: write`") from None
    file = os.environ.get("REVIEW_OIDC_TOKEN_FILE")
    if file:
        try:
            return Path(file).read_text().strip()
        except OSError as exc:
            raise ReviewAccessError(f"REVIEW_OIDC_TOKEN_FILE={file}: {exc.strerror}") from None
    raise ReviewAccessError("no OIDC token: run in a GitHub job with `permissions: id-token: write`, or set "
                            "REVIEW_OIDC_TOKEN_FILE (the local issuer: python -m tools.localenv.oidc mint)")


def token_expiry(token: str) -> str | None:
    """The token's `exp` (not verified: the API server and Vault verify it) for the exec credential."""
    try:
        payload = token.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]
        return datetime.fromtimestamp(int(exp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def exec_credential(audience: str) -> dict[str, Any]:
    token = oidc_token(audience)
    status: dict[str, Any] = {"token": token}
    if expiry := token_expiry(token):
        status["expirationTimestamp"] = expiry
    return {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}


def login(settings: Settings, out: Path) -> Path:
    """The exchange: a Vault token of the pull request's JWT role, and a kubeconfig whose user asks for
    a fresh OIDC token whenever the last one expires (client-go's exec credential)."""
    from config.review_access import pull_request_of

    access = access_of(settings)
    role = naming.identity_name("deploy", settings.environment)
    vault = HvacVaultReader(settings.stack.vault_address.rstrip("/"), None, role=role, jwt=oidc_token(access.audience),
                            auth_mount=access.jwt_auth_mount, login_method="jwt", ca=os.environ.get("VAULT_CACERT"),
                            address_from=f"vaultAddress in {settings.stack_file}")
    cluster = _cluster_of(settings.stack.kube_context)
    context = settings.stack.kube_context
    user = f"review-pr-{pull_request_of(settings)}"
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": cluster}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
        "users": [{"name": user, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
            "args": ["-m", "deploy.review_access", "exec-credential", "--audience", access.audience],
            "env": [{"name": "PYTHONPATH", "value": str(PROJECT_DIR)}],
            "interactiveMode": "Never", "provideClusterInfo": False}}}],
    }
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(out / "kubeconfig", yaml.safe_dump(kubeconfig, sort_keys=False))
    write_private(out / "env", "".join(f"export {k}={shlex.quote(v)}\n" for k, v in
                                       (("VAULT_TOKEN", vault.token), ("KUBECONFIG", str(out / "kubeconfig")))))
    return out


def _cluster_of(context: str) -> dict[str, Any]:
    """The server and CA of `context` in KUBECONFIG (in CI: a file with the cluster alone, no user)."""
    path = Path(os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
    try:
        config = yaml.safe_load(path.read_text()) or {}
        wanted = next(c["context"]["cluster"] for c in config.get("contexts") or () if c.get("name") == context)
        cluster = next(c["cluster"] for c in config.get("clusters") or () if c.get("name") == wanted)
    except (OSError, yaml.YAMLError, StopIteration, KeyError, TypeError):
        raise ReviewAccessError(f"{path} has no cluster for context {context!r} (kubeContext): the review job needs "
                                "the cluster's server and CA (a kubeconfig without any user)") from None
    return {k: cluster[k] for k in ("server", "certificate-authority", "certificate-authority-data") if k in cluster}


def main(argv: Sequence[str] | None = None) -> int:
    ap = cli.parser("deploy.review_access", __doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("grant", "revoke", "login"):
        sub.add_parser(name).add_argument("pr")
    sub.choices["login"].add_argument("--out", type=Path, help="default build/review/pr-<n>")
    sub.add_parser("exec-credential").add_argument("--audience", required=True)
    args = ap.parse_args(argv)
    if args.command == "exec-credential":  # client-go reads stdout: nothing else may be printed there
        return cli.run("review-access", lambda: _print(json.dumps(exec_credential(args.audience))))
    return cli.run(f"review-{args.command}", lambda: command(args))


def _print(text: str) -> int:
    print(text)
    return 0


def command(args: argparse.Namespace) -> int:
    try:
        settings = review_settings(args.pr)
    except ValueError as exc:
        raise ReviewAccessError(str(exc)) from None
    plan = grant(settings)
    if args.command == "login":
        out = login(settings, args.out or PROJECT_DIR / "build" / "review" / settings.environment)
        print(f"review-login: {settings.environment}: a Vault token of role {plan.jwt_role_name} "
              f"({access_of(settings).token_minutes} min) and Kubernetes user {plan.username}; "
              f"`set -a; . {out / 'env'}; set +a` before make review-up / make run")
        return 0
    vault, kube = platform_vault(settings), dynamic_client(settings)
    if args.command == "grant":
        provision(plan, vault, kube)
        print(f"review-grant: {settings.environment}: namespace {plan.namespace} (Role for {plan.username}), "
              f"Vault policy and JWT role {plan.jwt_role_name}, ESO role {plan.eso_role_name}, transit key "
              f"{plan.transit_key}")
    else:
        revoked = deprovision(plan, vault, kube)
        print(f"review-revoke: {settings.environment}: {revoked} token(s) revoked; roles, policies, transit key "
              f"and namespace {plan.namespace} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
