"""What one pull request's review job may reach, decided once: its OIDC identities and their grants.

Owns: the Vault JWT role a token of exactly that pull request logs in with, the Vault policy that
role's tokens carry (the review stack's own deploy grants, config/identities.py, and nothing else),
the transit key its state is encrypted with, ESO's Kubernetes-auth role and read policy for its
namespace, and the namespace with its Role, quota ceiling and token-review binding -- all created by
the trusted provisioner (deploy/review_access.py), never by the pull request's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config import naming
from config.github_oidc import ReviewAccess, jwt_role, review_username
from config.identities import DEPLOY, identity
from config.model import Settings

CEILING_QUOTA = "review-ceiling"


def access_of(settings: Settings) -> ReviewAccess:
    access = settings.stack.review_access
    if access is None:
        raise ValueError(f"{settings.stack_file}: {naming.config_key('reviewAccess')} is not set: name the "
                         "repository whose pull requests get review environments (docs/review-environments.md)")
    return access


def pull_request_of(settings: Settings) -> int:
    if not naming.is_review_stack(settings.environment):
        raise ValueError(f"stack {settings.environment} is not a review stack pr-<n>")
    return int(settings.environment[len(naming.REVIEW_STACK_PREFIX):])


def pull_request_ref(pull_request: int) -> str:
    return f"refs/pull/{pull_request}/merge"


@dataclass(frozen=True)
class ReviewGrant:
    """Everything `make review-grant PR=<n>` creates, and `make review-revoke` removes."""

    pull_request: int
    namespace: str
    username: str
    deploy_policy_name: str
    deploy_policy: str
    read_policy_name: str
    read_policy: str
    jwt_mount: str
    jwt_role_name: str
    jwt_role: dict[str, Any]
    eso_auth_mount: str
    eso_role_name: str
    eso_role: dict[str, Any]
    transit_mount: str
    transit_key: str
    manifests: tuple[dict[str, Any], ...]


def secrets_provider(settings: Settings) -> str:
    """Pulumi's `hashivault://` provider on the review stack's own transit key (VAULT_ADDR, VAULT_TOKEN)."""
    access = access_of(settings)
    return f"hashivault://{naming.review_transit_key(settings.environment)}?engine={access.transit_mount}"


def grant(settings: Settings) -> ReviewGrant:
    pull_request = pull_request_of(settings)
    access = access_of(settings)
    deployer = identity(settings, DEPLOY)
    name = deployer.name
    user = review_username(access, pull_request)
    cfg = settings.stack
    sa_name, sa_namespace = settings.vault_auth_service_account
    role = jwt_role(access, {"ref": pull_request_ref(pull_request), "event_name": "pull_request"}, "ref", name)
    eso_role = {
        "bound_service_account_names": [sa_name], "bound_service_account_namespaces": [sa_namespace],
        "audience": cfg.vault_audience, "token_policies": [settings.vault_policy_name],
        "token_ttl": cfg.vault_token_ttl_seconds, "token_max_ttl": cfg.vault_token_ttl_seconds * 2,
        "token_no_default_policy": True,
    }
    return ReviewGrant(
        pull_request=pull_request, namespace=settings.namespace, username=user,
        deploy_policy_name=name, deploy_policy=deployer.vault_policy(),
        read_policy_name=settings.vault_policy_name, read_policy=settings.vault_policy_hcl,
        jwt_mount=access.jwt_auth_mount, jwt_role_name=name, jwt_role=role,
        eso_auth_mount=cfg.vault_auth_mount, eso_role_name=settings.vault_role_name, eso_role=eso_role,
        transit_mount=access.transit_mount, transit_key=naming.review_transit_key(settings.environment),
        manifests=tuple(_manifests(settings, user, name)),
    )


def _manifests(settings: Settings, user: str, name: str) -> list[dict[str, Any]]:
    """The namespace (Pod Security `restricted`), a quota ceiling the pull request cannot edit, one
    Role bound to the pull request's username in that namespace alone, and the token-review binding
    Vault's Kubernetes auth needs for the namespace's store account."""
    ns = settings.namespace
    labels = {**settings.labels("review-access")}
    quota = settings.stack.resource_quota
    # The deploy identity's own grants, in this namespace alone (its `get` of the namespace included:
    # a Role may grant that on the namespace it lives in).
    rules = [g.rule() for g in identity(settings, DEPLOY).kube]
    rbac = "rbac.authorization.k8s.io/v1"
    sa_name, _ = settings.vault_auth_service_account
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": ns, "labels": {**settings.namespace_labels, **labels}}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": CEILING_QUOTA, "namespace": ns,
                                                                   "labels": labels},
         "spec": {"hard": {"pods": str(quota.pods), "requests.cpu": quota.requests_cpu,
                           "requests.memory": quota.requests_memory, "limits.cpu": quota.limits_cpu,
                           "limits.memory": quota.limits_memory,
                           "requests.ephemeral-storage": quota.requests_ephemeral_storage,
                           "limits.ephemeral-storage": quota.limits_ephemeral_storage}}},
        {"apiVersion": rbac, "kind": "Role", "metadata": {"name": name, "namespace": ns, "labels": labels},
         "rules": rules},
        {"apiVersion": rbac, "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns, "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]},
        # Vault's Kubernetes auth reviews each login with the login's own token (no long-lived reviewer).
        {"apiVersion": rbac, "kind": "ClusterRoleBinding",
         "metadata": {"name": settings.vault_token_review_binding_name, "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
         "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}]},
    ]
