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
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from config.types import StrictModel, VaultPath


class OidcAccess(StrictModel):
    """Which GitHub repository's jobs get this stack's identities through GitHub's OIDC tokens (`oidc`;
    for review stacks `reviewAccess`): the platform binds each identity to that repository's jobs."""

    repository: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", max_length=140)]
    """GitHub's `repository` claim (owner/name): tokens of any other repository are refused."""
    audience: str = Field(default="testinfra", min_length=1, max_length=200)
    """The `aud` a job asks GitHub for (actions/core getIDToken) and both Vault and the API server require."""
    jwt_auth_mount: VaultPath = "jwt"
    """Vault's JWT auth method the platform configured for GitHub's issuer (bound_issuer)."""
    token_minutes: int = Field(default=45, ge=5, le=360)
    """A token's whole life: the job's timeout-minutes (a test ties the two)."""


class ReviewAccess(OidcAccess):
    """A review stack's: the trusted provisioner (`make review-grant`) binds it to one pull request."""

    transit_mount: VaultPath = "transit"
    """Vault's transit engine holding each review stack's state-encryption key."""


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


def jwt_role(access: OidcAccess, claims: dict[str, str], user_claim: str, policy: str) -> dict[str, Any]:
    """A Vault JWT role for GitHub's tokens with exactly these claims: the policy alone, no `default`,
    a service token (revocable by accessor) that lives `tokenMinutes` and no longer."""
    ttl = access.token_minutes * 60
    return {
        "role_type": "jwt", "user_claim": user_claim, "bound_audiences": [access.audience],
        "bound_claims_type": "string", "bound_claims": {"repository": access.repository, **claims},
        "token_policies": [policy], "token_no_default_policy": True, "token_type": "service",
        "token_ttl": ttl, "token_max_ttl": ttl, "token_explicit_max_ttl": ttl, "token_num_uses": 0, "token_period": 0,
    }


def identity_jwt_role(access: OidcAccess, role: str, stack: str, policy: str) -> dict[str, Any]:
    """The Vault JWT role a deploy or preview job of `stack` logs in with: only this repository's jobs
    in that GitHub environment (a deploy: from main only), its identity's policy alone."""
    claims = {"environment": github_environment(role, stack), **({"ref": DEPLOY_REF} if role == "deploy" else {})}
    return jwt_role(access, claims, "environment", policy)


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
