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
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from clients.vault import EndpointError, HvacVaultReader
from config import cli, naming
from config.files import PROJECT_DIR, write_private
from config.model import Settings
from config.review_access import access_of, grant
from deploy.review_grants import (
    ReviewAccessError,
    deprovision,
    dynamic_client,
    platform_vault,
    provision,
    review_settings,
)


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


GRANT_POLL_SECONDS = 5


def login(settings: Settings, out: Path, wait_seconds: float = 0) -> Path:
    """The exchange: a Vault token of the pull request's JWT role, and a kubeconfig whose user asks for
    a fresh OIDC token whenever the last one expires (client-go's exec credential)."""
    from config.review_access import pull_request_of

    access = access_of(settings)
    role = naming.identity_name("deploy", settings.environment)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            vault = HvacVaultReader(settings.stack.vault_address.rstrip("/"), None, role=role,
                                    jwt=oidc_token(access.audience), auth_mount=access.jwt_auth_mount,
                                    login_method="jwt", ca=os.environ.get("VAULT_CACERT"),
                                    address_from=f"vaultAddress in {settings.stack_file}")
            break
        except EndpointError as exc:
            # The grant (review-provision.yml) runs beside this job: its role may not be there yet.
            if "could not be found" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(GRANT_POLL_SECONDS)
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
    sub.choices["login"].add_argument("--wait-seconds", type=float, default=300,
                                      help="wait this long for the pull request's grant (default 300)")
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
        out = login(settings, args.out or PROJECT_DIR / "build" / "review" / settings.environment,
                    wait_seconds=args.wait_seconds)
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
