"""The trusted provisioner's work for one pull request: create and remove what config/review_access.py
decides (deploy/review_access.py's `grant` and `revoke`, and the sweep's revoke in deploy/review.py),
with the platform's Vault token and kube context -- never a pull request's."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clients.vault import HvacVaultReader
from config import naming
from config.errors import EnvironmentProblem
from config.files import PROJECT_DIR
from config.model import Settings
from config.review_access import ReviewGrant, access_of, grant

MANAGER = "testinfra-review-provisioner"
NAMESPACE_GONE_SECONDS = 120
ORDER = ("Namespace", "ResourceQuota", "Role", "RoleBinding", "ClusterRoleBinding")


class ReviewAccessError(EnvironmentProblem):
    """The exchange or the provisioner could not finish."""


def review_settings(pull_request: str, project: Path = PROJECT_DIR) -> Settings:
    """pr-<n>'s settings, from its stack file as review-up writes it; a file written only for this
    is removed again (the provisioner leaves no stack file behind)."""
    from config.loading import stack_settings
    from deploy.review_stack_file import stack_file, write_stack_file

    stack = naming.review_stack(pull_request)
    path = stack_file(stack, project)
    existed = path.exists()
    write_stack_file(stack, project=project)
    try:
        return stack_settings(stack, project_dir=project)
    finally:
        if not existed:
            path.unlink(missing_ok=True)


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


def _getter(kube: Any, manifest: dict[str, Any]) -> Callable[[], Any]:
    return lambda: _resource(kube, manifest).get(name=manifest["metadata"]["name"])


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
    namespace = next(m for m in plan.manifests if m["kind"] == "Namespace")
    deadline = time.monotonic() + NAMESPACE_GONE_SECONDS
    while kube_call(_getter(kube, namespace), f"namespace {plan.namespace}") is not None:
        if time.monotonic() > deadline:
            raise ReviewAccessError(f"namespace {plan.namespace} is still terminating after {NAMESPACE_GONE_SECONDS} s "
                                    "(a finalizer?): run review-revoke again once it is gone")
        time.sleep(1)
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
    template = stack_settings(naming.REVIEW_TEMPLATE, project_dir=PROJECT_DIR)
    base = naming.review_transit_key("")  # every review role is named like its stack's key: <base>pr-<n>
    roles = platform_vault(template).list(f"auth/{access_of(template).jwt_auth_mount}/role")
    return [name[len(base):] for name in roles if name.startswith(base) and naming.is_review_stack(name[len(base):])]
