"""GitHub Actions' OIDC tokens as this project's identities, decided once.

Owns: the Kubernetes username each kind of job maps to -- a pull request's review job
(`review:<repo>:pr-<n>`) and a job in a GitHub environment (`github:<repo>:environment:<name>`: the
deploy job in `staging`/`prod`, the preview job in `preview-<stack>`) -- the API server's structured
authentication configuration that maps them (one JWT authenticator for GitHub's issuer), the GitHub
environment each identity's job runs in, and the Vault JWT role of a deploy or preview identity (its
bound claims: the repository, that environment, and for a deploy the main branch).

A job enters a GitHub environment only if the environment's deployment-branch policy admits its ref
(docs/platform-setup.md): that is what makes the `environment` claim an identity.
"""

from __future__ import annotations

import json
from typing import Any

from config import naming
from config.stack import OidcAccess

REVIEW_USERNAME_PREFIX = "review:"
ENVIRONMENT_USERNAME_PREFIX = "github:"
DEPLOY_REF = "refs/heads/main"


def review_username(access: OidcAccess, pull_request: int) -> str:
    return f"{REVIEW_USERNAME_PREFIX}{access.repository}:pr-{pull_request}"


def github_environment(role: str, stack: str) -> str:
    """The GitHub environment a stack's deploy or preview job runs in (the workflows' names)."""
    return stack if role == "deploy" else f"preview-{stack}"


def environment_username(access: OidcAccess, github_env: str) -> str:
    return f"{ENVIRONMENT_USERNAME_PREFIX}{access.repository}:environment:{github_env}"


def identity_jwt_role(access: OidcAccess, role: str, stack: str, policy: str) -> dict[str, Any]:
    """The Vault JWT role a deploy or preview job of `stack` logs in with: only this repository's jobs
    in that GitHub environment (a deploy: from main only), its identity's policy alone."""
    claims = {"repository": access.repository, "environment": github_environment(role, stack)}
    if role == "deploy":
        claims["ref"] = DEPLOY_REF
    ttl = access.token_minutes * 60
    return {
        "role_type": "jwt", "user_claim": "environment", "bound_audiences": [access.audience],
        "bound_claims_type": "string", "bound_claims": claims,
        "token_policies": [policy], "token_no_default_policy": True, "token_type": "service",
        "token_ttl": ttl, "token_max_ttl": ttl, "token_explicit_max_ttl": ttl, "token_num_uses": 0, "token_period": 0,
    }


def authentication_config(access: OidcAccess, issuer: str, ca_pem: str = "") -> dict[str, Any]:
    """The API server's JWT authenticator for GitHub's tokens of this repository: a job in a GitHub
    environment maps to that environment's username; a `pull_request` job with none to its pull
    request's; anything else is refused. No groups."""
    issuer_spec: dict[str, Any] = {"url": issuer, "audiences": [access.audience]}
    if ca_pem:
        issuer_spec["certificateAuthority"] = ca_pem
    repository = json.dumps(access.repository)
    pull_request = ("claims.event_name == 'pull_request' && "
                    "claims.ref.matches('^refs/pull/[1-9][0-9]{0,5}/merge$')")
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [{
            "issuer": issuer_spec,
            "claimValidationRules": [
                {"expression": f"claims.repository == {repository}",
                 "message": f"only jobs of {access.repository} get an identity here"},
                {"expression": f"(has(claims.environment) && claims.environment != '') || ({pull_request})",
                 "message": "only a job in a GitHub environment, or a pull_request job of a pull request's merge "
                            "ref (never pull_request_target, a push or a schedule without an environment)"},
            ],
            "claimMappings": {
                "username": {"expression": (
                    "has(claims.environment) && claims.environment != '' ? "
                    f"{json.dumps(ENVIRONMENT_USERNAME_PREFIX)} + claims.repository + ':environment:' + "
                    "claims.environment : "
                    f"{json.dumps(REVIEW_USERNAME_PREFIX)} + claims.repository + ':pr-' + claims.ref.split('/')[2]")},
                "groups": {"expression": "[]"},
                "uid": {"expression": "claims.jti"},
            },
        }],
    }


def deploy_identity_names(stack: str) -> dict[str, str]:
    """role -> the identity name its JWT role and policy carry (config/identities.py's names)."""
    return {role: naming.identity_name(role, stack) for role in ("deploy", "preview")}
