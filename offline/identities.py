"""`make identities STACK=<env>`: the platform team's one-time setup of a stack, rendered offline.

Owns: writing, from the catalog and the stack file (config/identities.py decides every grant),
`build/identities/<stack>/` --

    deploy.hcl, preview.hcl   the Vault policies of the deploy and preview identities
    kubernetes.yaml           the identities' namespace, ServiceAccounts and RBAC; the integration
                              namespace when the platform owns it (manageNamespace: false); ESO's
                              `system:auth-delegator` binding when the platform owns the auth method
    grants.txt                every grant with why it is needed
    <role>-jwt-role.json      with the stack's `oidc`: the Vault JWT role its GitHub job logs in with

-- and printing the commands that apply them. For the review template (`STACK=review`) it writes the
platform's one-time setup of review environments instead: `authentication-config.yaml` (the API
server's JWT authenticator for GitHub's review tokens) and the Vault commands of the JWT auth method
and the transit engine; each pull request's grants are `make review-grant PR=<n>`'s. It reads nothing
live and changes nothing.

Usage: python -m offline.identities --stack staging [--out DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from config import cli, naming
from config.files import PROJECT_DIR
from config.identities import ROLES, Identity, identity, platform_namespace
from config.loading import stack_settings
from config.model import Settings

MIN_ESO_VERSION = "0.16.2"  # the release the end-to-end tier runs; it serves external-secrets.io/v1 (ESO_API_VERSION)


def platform_manifests(settings: Settings, identities: list[Identity]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": naming.IDENTITY_NAMESPACE, "labels": {naming.LABEL_PART_OF: "integration-tests"}}}]
    namespace = platform_namespace(settings)
    if namespace:
        docs.append(namespace)
    if not settings.stack.vault_manage_auth_backend:
        sa, sa_ns = settings.vault_auth_service_account
        # Vault reviews each ESO login with the login's own token (disable_local_ca_jwt).
        docs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                     "metadata": {"name": settings.vault_token_review_binding_name},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                 "name": "system:auth-delegator"},
                     "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": sa_ns}]})
    for ident in identities:
        docs += ident.kube_manifests()
    return docs


def grants_text(identities: list[Identity]) -> str:
    lines = []
    for ident in identities:
        lines.append(f"{ident.name} ({ident.role})")
        lines += [f"  vault  {g.path}: {', '.join(g.capabilities)} -- {g.why}" for g in ident.vault]
        for g in ident.kube:
            where = "cluster" if g.cluster else (f"namespace {ident.namespace}" if ident.scoped else "every namespace")
            named = f" named {', '.join(g.names)}" if g.names else ""
            lines.append(f"  kube   {g.group or 'core'}/{','.join(g.resources)}{named} ({where}): "
                         f"{', '.join(g.verbs)} -- {g.why}")
    return "\n".join(lines) + "\n"


def setup_commands(settings: Settings, out: Path, identities: list[Identity]) -> str:
    cfg = settings.stack
    lines = [f"# One-time setup of stack {settings.environment} by the platform team (docs/identities.md).",
             f"# ESO {MIN_ESO_VERSION} or newer in {cfg.eso_namespace} (it serves {naming.ESO_API_VERSION}).",
             f"kubectl --context {cfg.kube_context} apply -f {out / 'kubernetes.yaml'}"]
    for ident in identities:
        lines.append(f"vault policy write {ident.name} {out / (ident.role + '.hcl')}")
        if ident.jwt_role and cfg.oidc:
            lines.append(f"vault write auth/{cfg.oidc.jwt_auth_mount}/role/{ident.name} "
                         f"@{out / (ident.role + '-jwt-role.json')}   # its GitHub job's login ({ident.oidc_user})")
    if not cfg.vault_manage_auth_backend:
        lines += [f"vault auth enable -path={cfg.vault_auth_mount} kubernetes   # once per Vault",
                  f"vault write auth/{cfg.vault_auth_mount}/config kubernetes_host=<API server URL> "
                  "kubernetes_ca_cert=@<cluster CA file> disable_local_ca_jwt=true"]
    lines.append("# Credentials for CI, per GitHub environment (README, CI): a Vault token per identity, e.g.")
    for ident in identities:
        lines.append(f"vault token create -orphan -no-default-policy -policy={ident.name} -period=24h "
                     f"-display-name={ident.name}")
        lines.append(f"kubectl --context {cfg.kube_context} -n {naming.IDENTITY_NAMESPACE} create token "
                     f"{ident.name} --duration=1h   # or an OIDC-federated identity bound the same way")
    return "\n".join(lines) + "\n"


GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def write_review_setup(settings: Settings, out: Path) -> str:
    """The review environments' one-time platform setup; returns the commands that apply it."""
    from config.github_oidc import authentication_config
    from config.review_access import access_of

    access = access_of(settings)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "authentication-config.yaml"
    path.write_text(yaml.safe_dump(authentication_config(access, GITHUB_ISSUER), sort_keys=False))
    return "\n".join([
        "# One-time setup of review environments by the platform team (docs/review-environments.md).",
        f"# The API server: --authentication-config={path} (Kubernetes 1.30+; merge its jwt entry into an",
        "# existing AuthenticationConfiguration). It maps a pull request's GitHub token to one username.",
        f"vault auth enable -path={access.jwt_auth_mount} jwt",
        f"vault write auth/{access.jwt_auth_mount}/config oidc_discovery_url={GITHUB_ISSUER} "
        f"bound_issuer={GITHUB_ISSUER}",
        f"vault secrets enable -path={access.transit_mount} transit",
        "# Then, per pull request, from the base branch only: make review-grant PR=<n> / make review-revoke PR=<n>",
    ]) + "\n"


def write(settings: Settings, out: Path) -> list[Identity]:
    """Both identities of a stack."""
    identities = [identity(settings, role) for role in ROLES]
    out.mkdir(parents=True, exist_ok=True)
    for ident in identities:
        (out / f"{ident.role}.hcl").write_text(ident.vault_policy())
        if ident.jwt_role:
            (out / f"{ident.role}-jwt-role.json").write_text(json.dumps(ident.jwt_role, indent=2) + "\n")
    (out / "kubernetes.yaml").write_text(yaml.safe_dump_all(platform_manifests(settings, identities),
                                                            sort_keys=False))
    (out / "grants.txt").write_text(grants_text(identities))
    return identities


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("offline.identities", __doc__)
    cli.add_stack(ap)
    ap.add_argument("--out", type=Path, help="default: build/identities/<stack>")
    ns = ap.parse_args(argv)
    return cli.run(f"identities {ns.stack}", lambda: write_setup(ns.stack, ns.out))


def write_setup(stack: str, out: Path | None) -> int:
    settings = stack_settings(stack, project_dir=PROJECT_DIR)
    out = out or PROJECT_DIR / "build" / "identities" / stack
    if stack == naming.REVIEW_TEMPLATE:
        print(write_review_setup(settings, out))
        return 0
    identities = write(settings, out)
    print(grants_text(identities))
    print(setup_commands(settings, out, identities))
    return 0


if __name__ == "__main__":
    sys.exit(main())
