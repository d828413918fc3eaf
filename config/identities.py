"""The two identities a stack is deployed and previewed with, least privilege, decided once.

Owns: every Vault path and Kubernetes permission the **deploy** identity (`make up`, `destroy`,
`verify`, `run`) and the **preview** identity (`make preview`, `make drift`: read-only) need for one stack, each
with the reason it is needed; their Vault policies (HCL) and Kubernetes RBAC (manifests) as the
platform team applies them (`make identities`), and the same grants as the checks the preflight makes
with the caller's own credentials (deploy/permissions.py), so a missing permission is one message
naming the identity and the permission before anything changes.

Deliberately absent: reading the value of any key (`<mount>/data/...` is granted only for keys the
program itself writes), writing outside the stack's own paths, policy and role, and -- for the preview
identity -- any write at all and any Secret.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from config import github_oidc, naming
from config.model import Settings
from config.vault_keys import VaultKey, key_folders

DEPLOY = "deploy"
PREVIEW = "preview"
ROLES = (DEPLOY, PREVIEW)
READ = ("get", "list", "watch")
MANAGE = ("get", "list", "watch", "create", "update", "patch", "delete")
VAULT_WRITE = ("create", "update")


@dataclass(frozen=True)
class VaultGrant:
    """Capabilities on one Vault API path; `allowed` pins request parameters to exact values."""

    path: str
    capabilities: tuple[str, ...]
    why: str
    # Each value a string, a bool, or a tuple for a list parameter: Vault compares a list-valued
    # parameter with each allowed value as a whole, so ["p"] is allowed by ["p"] and ["p", "root"] by
    # nothing. An empty tuple admits any value (Vault cannot pin a JSON number: a TTL).
    allowed: tuple[tuple[str, tuple[str | bool | tuple[str, ...], ...]], ...] = ()
    denied: tuple[str, ...] = ()  # refused whatever `allowed` says (Vault applies denied first)

    def hcl(self) -> str:
        caps = ", ".join(json.dumps(c) for c in self.capabilities)
        lines = [f"# {self.why}", f"path {json.dumps(self.path)} {{", f"  capabilities = [{caps}]"]
        if self.allowed:
            lines.append("  allowed_parameters = {")
            lines.extend(f"    {json.dumps(name)} = {json.dumps([list(v) if isinstance(v, tuple) else v for v in values])}"
                         for name, values in self.allowed)
            lines.append("  }")
        if self.denied:
            lines.append("  denied_parameters = {")
            lines.extend(f"    {json.dumps(name)} = []" for name in self.denied)
            lines.append("  }")
        return "\n".join([*lines, "}"])


@dataclass(frozen=True)
class KubeGrant:
    """Verbs on resources of one API group; `names` narrows to those objects (RBAC resourceNames:
    Kubernetes cannot narrow `create`, so a grant that creates lists it apart, unnarrowed)."""

    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str
    names: tuple[str, ...] = ()
    cluster: bool = False  # a cluster-scoped kind: bound cluster-wide, narrowed by name

    def rule(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"apiGroups": [self.group], "resources": list(self.resources),
                                "verbs": list(self.verbs)}
        if self.names:
            rule["resourceNames"] = list(self.names)
        return rule


@dataclass(frozen=True)
class Identity:
    role: str  # deploy | preview
    environment: str
    namespace: str  # the integration namespace its namespaced grants apply to
    # True: the namespaced grants are a Role bound in that namespace; False (the program creates the
    # namespace, so nothing can be bound in it beforehand): a ClusterRole bound cluster-wide.
    scoped: bool
    vault: tuple[VaultGrant, ...]
    kube: tuple[KubeGrant, ...]
    # With the stack's `oidc`: the Kubernetes user its GitHub job maps to (bound beside the
    # ServiceAccount) and the Vault JWT role that job logs in with (config/github_oidc.py).
    oidc_user: str | None = None
    jwt_role: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """Its Vault policy, Kubernetes ServiceAccount and (Cluster)Role names."""
        return naming.identity_name(self.role, self.environment)

    def vault_policy(self) -> str:
        head = (f"# Vault policy of the {self.role} identity of stack {self.environment}: `make identities "
                f"STACK={self.environment}` renders it from the catalog and the stack file.\n")
        return head + "\n\n".join(g.hcl() for g in self.vault) + "\n"

    def kube_manifests(self) -> list[dict[str, Any]]:
        labels = {naming.LABEL_PART_OF: "integration-tests", naming.LABEL_ENVIRONMENT: self.environment,
                  naming.LABEL_COMPONENT: f"{self.role}-identity"}
        subject: Any = {"kind": "ServiceAccount", "name": self.name, "namespace": naming.IDENTITY_NAMESPACE}
        subjects = [subject] + ([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": self.oidc_user}]
                                if self.oidc_user else [])
        cluster = [g.rule() for g in self.kube if g.cluster]
        namespaced = [g.rule() for g in self.kube if not g.cluster]
        rbac = "rbac.authorization.k8s.io/v1"
        docs: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": False,
             "metadata": {"name": self.name, "namespace": naming.IDENTITY_NAMESPACE, "labels": labels}},
            {"apiVersion": rbac, "kind": "ClusterRole", "metadata": {"name": self.name, "labels": labels},
             "rules": cluster},
            {"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": {"name": self.name, "labels": labels},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": self.name},
             "subjects": subjects},
        ]
        in_ns = f"{self.name}-in-namespace"
        if self.scoped:
            meta = {"name": in_ns, "namespace": self.namespace, "labels": labels}
            docs += [{"apiVersion": rbac, "kind": "Role", "metadata": meta, "rules": namespaced},
                     {"apiVersion": rbac, "kind": "RoleBinding", "metadata": meta, "subjects": subjects,
                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": in_ns}}]
        else:
            meta = {"name": in_ns, "labels": labels}
            docs += [{"apiVersion": rbac, "kind": "ClusterRole", "metadata": meta, "rules": namespaced},
                     {"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": meta, "subjects": subjects,
                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": in_ns}}]
        return docs


def _pinned(param: str, value: str) -> tuple[str, tuple[str | bool | tuple[str, ...], ...]]:
    """An allowed_parameters entry admitting `value` alone, sent as a string or as a one-item list."""
    return param, (value, (value,))


def _vault_reads(settings: Settings, role: str) -> list[VaultGrant]:
    grants = [
        VaultGrant("auth/token/lookup-self", ("read",), "the provider and the preflight look the token up"),
        VaultGrant("sys/capabilities-self", ("update",), "the preflight asks which of these grants the token holds"),
    ]
    for mount, folder in key_folders(k for k in settings.vault_keys if k.source == "external"):
        grants.append(VaultGrant(f"{mount}/metadata/{folder}/", ("list",),
                                 "the program lists an external key's folder before asking for its property names"))
    keys = settings.vault_keys if role == DEPLOY else [k for k in settings.vault_keys if k.source == "external"]
    for mount, folder in key_folders(keys):
        why = ("property names, never values: the preflight's and the program's existence check"
               + (", and `make verify`" if role == DEPLOY else "") + f" (every key under {folder}/)")
        grants.append(VaultGrant(f"{mount}/subkeys/{folder}/*", ("read",), why))
    return grants


def _run_reads(keys: Sequence[VaultKey], purpose: str = "`make run`'s readiness gate and provenance") -> list[VaultGrant]:
    """What `make run` (deploy's identity) and `make drift` read of the keys: versions and when each was written."""
    return [VaultGrant(f"{mount}/metadata/{folder}/*", ("read",),
                       f"versions and times, never values: {purpose} (every key under {folder}/)")
            for mount, folder in key_folders(keys)]


def _drift_reads(settings: Settings) -> list[VaultGrant]:
    """`make drift` with the preview identity: key versions (never a value), ESO's policy text and role."""
    grants = _run_reads(settings.vault_keys, "`make drift` compares each key's version with the state's")
    if not (settings.eso_access_by_platform and settings.stack.review_access):
        cfg = settings.stack
        grants += [
            VaultGrant(f"sys/policies/acl/{settings.vault_policy_name}", ("read",),
                       "`make drift` compares ESO's policy's text with the declared one"),
            VaultGrant(f"auth/{cfg.vault_auth_mount}/role/{settings.vault_role_name}", ("read",),
                       "`make drift` compares ESO's role's parameters with the declared ones"),
        ]
    return grants


def _vault_writes(settings: Settings) -> list[VaultGrant]:
    cfg = settings.stack
    sa_name, sa_namespace = settings.vault_auth_service_account
    grants = [VaultGrant(
        f"{w.key.mount}/data/{w.key.path}", ("create", "read", "update"),
        f"the program writes {w.key.source} key {w.key.name} (read: refresh; no delete: the program retains "
        "every key it wrote, so another team may rely on it)")
        for w in settings.vault_key_writes]
    grants += [VaultGrant(f"{w.key.mount}/destroy/{w.key.path}", ("update",),
                          f"`make rotate` destroys the previous version of {w.key.name} after the overlap window")
               for w in settings.vault_key_writes if w.generated]
    if naming.is_review_stack(settings.environment):
        # `read` again here: Vault applies the most specific path alone, so this one shadows the
        # folder's metadata read for the key.
        grants += [VaultGrant(f"{w.key.mount}/metadata/{w.key.path}", ("read", "delete"),
                              f"`make review-down` removes review key {w.key.name} with every version; `make run` "
                              "reads its versions")
                   for w in settings.vault_key_writes]
    if settings.eso_access_by_platform and cfg.review_access:
        # ESO's policy and role of a review stack are the provisioner's (config/review_access.py); the
        # state is encrypted with the stack's own transit key.
        key, mount = naming.review_transit_key(settings.environment), cfg.review_access.transit_mount
        grants += [VaultGrant(f"{mount}/{op}/{key}", ("update",), f"Pulumi's hashivault secrets provider: {op} "
                              "of this review stack's state and config secrets with its own key")
                   for op in ("encrypt", "decrypt")]
        grants.append(VaultGrant(f"{mount}/decrypt/{naming.REVIEW_REFERENCES_KEY}", ("update",),
                                 "the stacks a review stack references (the proto stack) are encrypted with the "
                                 "platform's references key: reading their outputs decrypts with it"))
    else:
        grants += _eso_access_writes(settings, sa_name, sa_namespace)
    if cfg.vault_create_mount:
        grants += [
            VaultGrant(f"sys/mounts/{cfg.vault_mount}", ("create", "read", "update", "delete"),
                       "the stack creates its KV v2 mount (vaultCreateMount)"),
            VaultGrant(f"sys/mounts/{cfg.vault_mount}/tune", VAULT_WRITE, "a changed mount description is a tune"),
        ]
    if cfg.vault_manage_auth_backend:
        grants += [
            VaultGrant(f"sys/auth/{cfg.vault_auth_mount}", ("create", "read", "update", "delete", "sudo"),
                       "the stack enables its Kubernetes auth method (vaultManageAuthBackend; Vault wants sudo)"),
            VaultGrant(f"sys/auth/{cfg.vault_auth_mount}/tune", VAULT_WRITE, "a changed description is a tune"),
            VaultGrant(f"auth/{cfg.vault_auth_mount}/config", ("create", "read", "update"),
                       "and configures it (API server and CA)"),
        ]
    return grants


# What the Vault provider sends when it writes a Kubernetes-auth role, beyond the pinned ones: numbers
# Vault cannot pin (a JSON number matches no allowed value), and lists and strings left at their empty
# default. Anything else -- the deprecated `policies`, a namespace selector -- is refused.
_ROLE_NUMBERS = ("token_ttl", "token_max_ttl", "token_explicit_max_ttl", "token_period", "token_num_uses")
_ROLE_DENIED = ("policies", "bound_service_account_namespace_selector", "token_bound_cidrs", "alias_name_source")


def _eso_access_writes(settings: Settings, sa_name: str, sa_namespace: str) -> list[VaultGrant]:
    cfg = settings.stack
    return [
        VaultGrant(f"sys/policies/acl/{settings.vault_policy_name}", ("create", "read", "update", "delete"),
                   "ESO's read policy: only this exact text can be written (allowed_parameters)",
                   allowed=(("policy", (settings.vault_policy_hcl,)),)),
        VaultGrant(
            f"auth/{cfg.vault_auth_mount}/role/{settings.vault_role_name}", ("create", "read", "update", "delete"),
            "ESO's Kubernetes-auth role: only for ESO's service account and audience, only with ESO's read "
            "policy, no `default` policy; every other parameter refused",
            allowed=(_pinned("token_policies", settings.vault_policy_name),
                     _pinned("bound_service_account_names", sa_name),
                     _pinned("bound_service_account_namespaces", sa_namespace),
                     ("audience", (cfg.vault_audience,)), ("token_no_default_policy", (True,)),
                     ("token_type", ("default", "service")),
                     *((name, ()) for name in _ROLE_NUMBERS)),
            denied=_ROLE_DENIED),
    ]


def _named(group: str, resource: str, name: str, verbs: tuple[str, ...], why: str) -> list[KubeGrant]:
    """A cluster-scoped object the program manages: `create` and `list`/`watch` cannot be narrowed to
    its name (Kubernetes checks no name on a create; the provider watches the whole kind, without a
    name field selector, to see a deletion finish -- narrowed, `destroy` waits out its timeout)."""
    unnarrowed = tuple(v for v in verbs if v in ("create", "list", "watch"))
    narrowed = tuple(v for v in verbs if v not in unnarrowed)
    grants = [KubeGrant(group, (resource,), unnarrowed, f"{why} (these verbs take no name)", cluster=True)]
    if narrowed:
        grants.append(KubeGrant(group, (resource,), narrowed, why, names=(name,), cluster=True))
    return grants


def _kube_cluster(settings: Settings, verbs: tuple[str, ...]) -> list[KubeGrant]:
    cfg, ns = settings.stack, settings.namespace
    writes = verbs == MANAGE
    grants: list[KubeGrant] = []
    if cfg.manage_namespace:
        grants += _named("", "namespaces", ns, verbs, "the integration namespace the program creates")
    else:
        grants.append(KubeGrant("", ("namespaces",), ("get",), "the program reads the platform's namespace",
                                names=(ns,), cluster=True))
    if cfg.secret_store_kind == "ClusterSecretStore":
        grants += _named("external-secrets.io", "clustersecretstores", settings.secret_store_name, verbs,
                         "the stack's ClusterSecretStore")
    if cfg.vault_manage_auth_backend:
        grants += _named("rbac.authorization.k8s.io", "clusterrolebindings", settings.vault_token_review_binding_name,
                         verbs, "lets ESO's service account review tokens for Vault (vaultManageAuthBackend)")
        if writes:
            grants.append(KubeGrant("rbac.authorization.k8s.io", ("clusterroles",), ("bind",),
                                    "binding system:auth-delegator without holding it",
                                    names=("system:auth-delegator",), cluster=True))
        grants.append(KubeGrant("", ("configmaps",), ("get",), "the API server's CA, for Vault's Kubernetes auth "
                                "config", names=(naming.CLUSTER_CA_CONFIGMAP.partition("/")[2],), cluster=True))
    return grants


def _kube_namespaced(settings: Settings, role: str) -> list[KubeGrant]:
    verbs = MANAGE if role == DEPLOY else READ
    stores = ("externalsecrets",) + (("secretstores",) if settings.stack.secret_store_kind == "SecretStore" else ())
    changes = tuple(v for v in verbs if v in ("update", "patch", "delete"))
    grants = [
        KubeGrant("", ("serviceaccounts",), verbs, "the runner accounts the program declares"),
        # A quota or limit range only narrows what the namespace may run: creating one is harmless; an
        # edit or a deletion is allowed only on the program's own (a platform's ceiling stays).
        KubeGrant("", ("resourcequotas", "limitranges"), tuple(v for v in verbs if v not in changes),
                  "the quota and the limits the program declares"),
        *([KubeGrant("", ("resourcequotas", "limitranges"), changes, "the program's own quota and limits, "
                     "and no other's", names=(naming.NAMESPACE_LIMITS_NAME,))] if changes else []),
        KubeGrant("networking.k8s.io", ("networkpolicies",), verbs, "default-deny and the declared egress"),
        KubeGrant("external-secrets.io", stores, verbs, "one ExternalSecret per service (and a namespaced store)"),
        KubeGrant("batch", ("jobs", "cronjobs"), verbs, "the chart's suite Jobs; `make run` starts one"),
    ]
    if any(r.rules for r in settings.runner_identities):
        grants.append(KubeGrant("rbac.authorization.k8s.io", ("roles", "rolebindings"), verbs,
                                "the runner Roles the stack configures (runnerRbac)"))
    if role == PREVIEW:
        return grants
    grants += [
        KubeGrant("", ("secrets",), MANAGE, "Helm keeps each release in a Secret; `make verify` checks the "
                  "synced Secrets' keys"),
        KubeGrant("", ("pods",), READ, "Helm waits for the suites' Jobs; `make run` follows their pods"),
        KubeGrant("", ("pods/log",), ("get",), "`make run` reads a suite's result from its log"),
        KubeGrant("", ("events",), ("list",), "`make run`'s readiness gate reads ESO's warnings about an "
                  "ExternalSecret"),
    ]
    # RBAC's escalation check: the program can grant a runner Role only what it holds itself.
    for rule in sorted({(g, tuple(r.resources), tuple(r.verbs)) for ident in settings.runner_identities
                        for r in ident.rules for g in r.api_groups}):
        grants.append(KubeGrant(rule[0], rule[1], rule[2], "held so it can be granted to a runner Role "
                                "(Kubernetes refuses to grant what the granter lacks)"))
    return grants


def identity(settings: Settings, role: str) -> Identity:
    if role not in ROLES:
        raise ValueError(f"identity role {role!r}: one of {ROLES}")
    # The deploy identity's writes come before what `make run` reads: a missing-permission message names
    # the first few, and what `up` cannot do matters first.
    vault = _vault_reads(settings, role) + (
        _vault_writes(settings) + _run_reads(settings.vault_keys) if role == DEPLOY else _drift_reads(settings))
    kube = _kube_cluster(settings, MANAGE if role == DEPLOY else READ) + _kube_namespaced(settings, role)
    access = settings.stack.oidc
    name = naming.identity_name(role, settings.environment)
    return Identity(role=role, environment=settings.environment, namespace=settings.namespace,
                    scoped=not settings.stack.manage_namespace, vault=tuple(vault), kube=tuple(kube),
                    oidc_user=github_oidc.environment_username(access, github_oidc.github_environment(
                        role, settings.environment)) if access else None,
                    jwt_role=github_oidc.identity_jwt_role(access, role, settings.environment, name) if access else None)


def platform_namespace(settings: Settings) -> dict[str, Any] | None:
    """The integration namespace as the platform team creates it (manageNamespace: false), else None."""
    if settings.stack.manage_namespace:
        return None
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": settings.namespace, "labels": settings.namespace_labels}}
