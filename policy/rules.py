"""CrossGuard rules from the backlog and the design, importable without starting a policy server.

`policy/__main__.py` only builds the pack from these; tests call the validators directly with
arguments built from the resources the real program declares under mocks.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

# The pack runs from its own folder, in its own virtualenv: the project's naming module is
# standard-library only, so the pack spells no name, label or type token itself.
PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from config import naming  # noqa: E402
from config.credentials import credential_in  # noqa: E402

RELEASE = naming.RELEASE_TYPE
EXTERNAL_SECRET = naming.EXTERNAL_SECRET_TYPE
# Every type the program declares or reads; anything else (another API version of a kind, a Helm
# Chart instead of a Release, a ClusterRole) is refused, so a rule keyed on a type cannot be dodged.
ALLOWED_TYPES = frozenset({
    naming.NAMESPACE_TYPE, "kubernetes:core/v1:ResourceQuota", "kubernetes:core/v1:LimitRange",
    "kubernetes:core/v1:ServiceAccount", "kubernetes:core/v1:ConfigMap",
    "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    "kubernetes:rbac.authorization.k8s.io/v1:Role", "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
    naming.EXTERNAL_SECRET_TYPE, naming.SECRET_STORE_TYPE, naming.CLUSTER_SECRET_STORE_TYPE, naming.RELEASE_TYPE,
    naming.VAULT_MOUNT_TYPE, naming.VAULT_POLICY_TYPE, naming.VAULT_SECRET_TYPE, "vault:index/authBackend:AuthBackend",
    naming.VAULT_ROLE_TYPE, "vault:kubernetes/authBackendConfig:AuthBackendConfig",
    "random:index/randomPassword:RandomPassword", "pulumi:pulumi:StackReference", "pulumi:pulumi:Stack",
})
STATEFUL = {
    naming.NAMESPACE_TYPE,
    naming.CLUSTER_SECRET_STORE_TYPE,
    naming.SECRET_STORE_TYPE,
    naming.VAULT_MOUNT_TYPE,
    naming.VAULT_SECRET_TYPE,
}
ReportViolation = Callable[..., None]
CATALOG = PROJECT_DIR / naming.CATALOG_FILE


def kind_of(resource_type: str) -> tuple[str, str] | None:
    """(API group, kind) of a Kubernetes type token, whatever its version: `kubernetes:core/v1:Pod` ->
    ("core", "Pod"); None for other providers."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes":
        return None
    return parts[1].split("/", 1)[0], parts[2]


def is_kind(resource_type: str, group: str, kind: str) -> bool:
    return kind_of(resource_type) == (group, kind)


def is_helm(resource_type: str) -> bool:
    found = kind_of(resource_type)
    return found is not None and found[0] == "helm.sh"


@lru_cache(maxsize=1)
def catalog() -> dict[str, Any]:
    """catalog.yaml as plain data: the pack runs in its own virtualenv, without the program's models."""
    return yaml.safe_load(CATALOG.read_text()) or {}


def no_inline_credentials(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not is_helm(args.resource_type):
        return
    for item in (args.props.get("values") or {}).get("env") or []:
        name, value = item.get("name", ""), str(item.get("value", ""))
        why = credential_in(name, value)
        if why:
            report(
                f"release {args.name}: env var {name} is inline but looks like a credential ({why}); "
                "move it to the service's `secrets` in catalog.yaml (read from Vault via its ExternalSecret)"
            )


def unified_entrypoint(args: ResourceValidationArgs, report: ReportViolation) -> None:
    entrypoint = catalog().get("entrypoint")
    if is_helm(args.resource_type) and (args.props.get("values") or {}).get("entrypoint") != entrypoint:
        report(f"release {args.name}: must run the shared entrypoint {entrypoint}")


def integration_namespaces(args: StackValidationArgs) -> set[str]:
    """The namespace the stack creates, or -- where the platform team owns it and the program only reads
    it (a read is never shown to a policy pack) -- the one its ResourceQuota lives in."""
    created = {r.props["metadata"]["name"] for r in args.resources if is_kind(r.resource_type, "core", "Namespace")}
    quota = {r.props["metadata"].get("namespace") for r in args.resources
             if is_kind(r.resource_type, "core", "ResourceQuota")}
    return created | {n for n in quota if n}


def external_secret_uses_the_store(args: StackValidationArgs, report: ReportViolation) -> None:
    stores = [r for r in args.resources if is_kind(r.resource_type, "external-secrets.io", "ClusterSecretStore")
              or is_kind(r.resource_type, "external-secrets.io", "SecretStore")]
    namespaces = integration_namespaces(args)
    refs = {(s.props["kind"], s.props["metadata"]["name"]) for s in stores}
    for r in args.resources:
        if not is_kind(r.resource_type, "external-secrets.io", "ExternalSecret"):
            continue
        ref = r.props["spec"]["secretStoreRef"]
        if (ref.get("kind"), ref.get("name")) not in refs:
            report(f"ExternalSecret {r.name}: secretStoreRef {ref} is not this stack's store {sorted(refs)}")
        if r.props["metadata"].get("namespace") not in namespaces:
            report(f"ExternalSecret {r.name}: must live in the integration namespace {sorted(namespaces)}")


def every_catalog_service_has_a_release(args: StackValidationArgs, report: ReportViolation) -> None:
    """Backlog: every service must ship a runnable integration pack wired into the shared runner."""
    services = catalog().get("services") or {}
    releases = {r.props.get("name") for r in args.resources if is_helm(r.resource_type)}
    for name in sorted(services):
        release = naming.release_name(name)
        if release not in releases:
            report(f"catalog service {name} has no release {release}: its suite is not wired into the runner")


def prod_state_is_protected(args: StackValidationArgs, report: ReportViolation) -> None:
    # Every Kubernetes object the program declares carries the environment label (the namespace may
    # be the platform team's, read and so never shown here).
    environments = {
        ((r.props.get("metadata") or {}).get("labels") or {}).get(naming.LABEL_ENVIRONMENT)
        for r in args.resources
        if r.resource_type.startswith("kubernetes:") and isinstance(r.props.get("metadata"), dict)
    }
    if "prod" not in environments:
        return
    for r in args.resources:
        if r.resource_type in STATEFUL and not r.opts.protect:
            report(f"{r.resource_type} {r.name}: must be protected in prod (set {naming.PROJECT}:protect: true)")


def only_known_resource_types(args: ResourceValidationArgs, report: ReportViolation) -> None:
    t = args.resource_type
    if t in ALLOWED_TYPES or t.startswith("pulumi:providers:") or t.startswith(naming.COMPONENT_TYPE_PREFIX):
        return
    report(f"{t} {args.name}: not a type this program declares (the allow-list in policy/rules.py): "
           "add it there, with the rules it needs, or declare the kind at its listed API version")


def _dns_rule(rule: Mapping[str, Any]) -> bool:
    ports = rule.get("ports") or []
    return bool(ports) and all(p.get("port") == 53 for p in ports)


def egress_stays_off_the_cluster_and_metadata(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not is_kind(args.resource_type, "networking.k8s.io", "NetworkPolicy"):
        return
    for i, rule in enumerate((args.props.get("spec") or {}).get("egress") or [], start=1):
        for peer in rule.get("to") or []:
            cidr = (peer.get("ipBlock") or {}).get("cidr")
            if cidr:
                try:
                    network = ipaddress.IPv4Network(cidr, strict=False)
                except ValueError:
                    report(f"NetworkPolicy {args.name}: egress rule {i}: {cidr!r} is not an IPv4 network")
                    continue
                hits = [str(m) for m in naming.METADATA_NETWORKS if network.overlaps(m)]
                if hits:
                    report(f"NetworkPolicy {args.name}: egress rule {i} reaches the cloud metadata address {hits[0]}")
            labels = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {})
            target = labels.get("kubernetes.io/metadata.name")
            if target in naming.SYSTEM_NAMESPACES and not _dns_rule(rule):
                report(f"NetworkPolicy {args.name}: egress rule {i} reaches namespace {target} beyond DNS")
        internal = [p.get("port") for p in rule.get("ports") or [] if p.get("port") in naming.CONTROL_PLANE_PORTS]
        if internal:
            report(f"NetworkPolicy {args.name}: egress rule {i} opens control-plane port(s) {internal}")


def rbac_within_the_runner_set(args: ResourceValidationArgs, report: ReportViolation) -> None:
    t = args.resource_type
    if is_kind(t, "rbac.authorization.k8s.io", "Role"):
        for i, rule in enumerate(args.props.get("rules") or [], start=1):
            groups, resources = rule.get("apiGroups") or [], rule.get("resources") or []
            allowed = frozenset().union(*(naming.RUNNER_READABLE.get(g, frozenset()) for g in groups))
            writes = set(rule.get("verbs") or []) - naming.READ_VERBS
            outside = [r for r in resources if r not in allowed or (writes and r not in naming.RUNNER_WRITABLE)]
            if any(g not in naming.RUNNER_READABLE for g in groups) or outside or "*" in (rule.get("verbs") or []):
                report(f"Role {args.name}: rule {i} grants {sorted(writes) or 'read'} on {outside or groups} beyond "
                       "the runner's set (config/naming.py RUNNER_READABLE / RUNNER_WRITABLE)")
        return
    role_ref = args.props.get("roleRef") or {}
    if is_kind(t, "rbac.authorization.k8s.io", "RoleBinding") and role_ref.get("kind") != "Role":
        report(f"RoleBinding {args.name}: binds a ClusterRole; the runner gets only its own Role")
    if is_kind(t, "rbac.authorization.k8s.io", "ClusterRoleBinding") and role_ref.get("name") != "system:auth-delegator":
        report(f"ClusterRoleBinding {args.name}: binds {role_ref.get('name')}; the program binds only "
               "system:auth-delegator (Vault's token reviews)")


def policies(config: Mapping[str, Any] | None = None) -> list[Any]:
    level = EnforcementLevel.MANDATORY
    return [
        ResourceValidationPolicy("no-inline-credentials", "Release env holds no literal credential",
                                 no_inline_credentials, level),
        ResourceValidationPolicy("unified-entrypoint", "Every release runs the shared integration entrypoint",
                                 unified_entrypoint, level),
        StackValidationPolicy("external-secrets-use-the-store", "ExternalSecrets use the stack's store and namespace",
                              external_secret_uses_the_store, level),
        # Advisory: a stack may disable a service on purpose (serviceOverrides.<name>.enabled).
        StackValidationPolicy("every-service-has-a-release", "Every catalog service runs in this stack",
                              every_catalog_service_has_a_release, EnforcementLevel.ADVISORY),
        StackValidationPolicy("prod-state-protected", "Stateful resources are protected in prod",
                              prod_state_is_protected, level),
        ResourceValidationPolicy("only-known-resource-types", "Only the types this program declares, at their "
                                 "API versions", only_known_resource_types, level),
        ResourceValidationPolicy("egress-off-the-cluster-and-metadata", "Suite egress reaches no metadata "
                                 "address, system namespace or control-plane port", egress_stays_off_the_cluster_and_metadata,
                                 level),
        ResourceValidationPolicy("rbac-within-the-runner-set", "RBAC stays within the runner's set",
                                 rbac_within_the_runner_set, level),
    ]
