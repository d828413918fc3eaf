"""The exchange every keyless job makes: its GitHub OIDC token for a Vault token and a kubeconfig.

Owns: the Vault JWT login with the job's OIDC token (GitHub's, or the local issuer's from
OIDC_TOKEN_FILE: deploy/oidc_token.py) to an identity's role (retried while a role that is being
granted is not there yet); a kubeconfig whose user is the token itself, refreshed by client-go's
exec credential (`python -m deploy.exec_credential`); both written 0600. Used by `make login`
(deploy/oidc_login.py) and `make review-login` (deploy/review_access.py).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from clients.vault import EndpointError, HvacVaultReader
from config.errors import EnvironmentProblem
from config.files import PROJECT_DIR, env_file, write_private
from config.github_oidc import OidcAccess
from config.model import Settings
from deploy import oidc_token as token_source


class LoginError(EnvironmentProblem):
    """No OIDC token, or no cluster to point the kubeconfig at."""


def oidc_token(audience: str) -> str:
    """The job's OIDC token (deploy/oidc_token.py), or a LoginError saying what the job needs."""
    try:
        return token_source.oidc_token(audience)
    except token_source.NoOidcToken as exc:
        raise LoginError(str(exc)) from None


GRANT_POLL_SECONDS = 5


def login(settings: Settings, access: OidcAccess, role: str, user: str, out: Path, wait_seconds: float = 0) -> Path:
    """The exchange: a Vault token of JWT role `role`, and a kubeconfig whose user asks for a fresh OIDC
    token whenever the last one expires (client-go's exec credential). The role may be a moment away
    (a pull request's grant runs beside its job): a role not found yet is retried for `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            vault = HvacVaultReader(settings.stack.vault_address.rstrip("/"), None, role=role,
                                    jwt=oidc_token(access.audience), auth_mount=access.jwt_auth_mount,
                                    login_method="jwt", ca=os.environ.get("VAULT_CACERT"),
                                    address_from=f"vaultAddress in {settings.stack_file}")
            break
        except EndpointError as exc:
            if "could not be found" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(GRANT_POLL_SECONDS)
    cluster = _cluster_of(settings.stack.kube_context)
    context = settings.stack.kube_context
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": cluster}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
        "users": [{"name": user, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
            "args": ["-m", "deploy.exec_credential", "--audience", access.audience],
            "env": [{"name": "PYTHONPATH", "value": str(PROJECT_DIR)}],
            "interactiveMode": "Never", "provideClusterInfo": False}}}],
    }
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(out / "kubeconfig", yaml.safe_dump(kubeconfig, sort_keys=False))
    write_private(out / "env", env_file({"VAULT_TOKEN": vault.token, "KUBECONFIG": str(out / "kubeconfig")}))
    return out


def _cluster_of(context: str) -> dict[str, Any]:
    """The server and CA of `context` in KUBECONFIG (in CI: a file with the cluster alone, no user)."""
    path = Path(os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
    try:
        config = yaml.safe_load(path.read_text()) or {}
        wanted = next(c["context"]["cluster"] for c in config.get("contexts") or () if c.get("name") == context)
        cluster = next(c["cluster"] for c in config.get("clusters") or () if c.get("name") == wanted)
    except (OSError, yaml.YAMLError, StopIteration, KeyError, TypeError):
        raise LoginError(f"{path} has no cluster for context {context!r} (kubeContext): the review job needs "
                                "the cluster's server and CA (a kubeconfig without any user)") from None
    return {k: cluster[k] for k in ("server", "certificate-authority", "certificate-authority-data") if k in cluster}
