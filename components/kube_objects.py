"""Kubernetes objects and Helm releases, registered by type token through the SDK's untyped
`pulumi.CustomResource` rather than pulumi_kubernetes' generated classes.

Why: importing the generated classes costs about 1 s of CPU before the program registers anything
(`pulumi_kubernetes.core.v1` alone defines some 800 input and output classes), which was most of a
12-service `pulumi preview` (docs/benchmarks.md), and a typed registration costs several times an
untyped one. The engine and the provider see the same registration as the generated classes make:
type token (derived from the API version and kind, as the generated classes name theirs), name,
camelCase properties with `apiVersion` and `kind`, the package version, and the aliases the
generated class declares. tests/program/test_kube_objects.py registers each kind both
ways under mocks and compares the requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.provider_sdks import with_plugin_version
from config.naming import RELEASE_TYPE


def type_token(api_version: str, kind: str) -> str:
    """pulumi_kubernetes' type token of a kind: `kubernetes:<group>/<version>:<Kind>`, `core` for the core group."""
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return f"kubernetes:{group_version}:{kind}"


@dataclass(frozen=True)
class KubeKind:
    """One Kubernetes kind as pulumi_kubernetes registers it."""

    api_version: str
    kind: str
    # Output-only properties the generated class exposes (e.g. `status`).
    outputs: tuple[str, ...] = ()
    # Former API versions of the kind the generated class aliases (`pulumi.Alias(type_=...)`).
    former_versions: tuple[str, ...] = ()

    @property
    def token(self) -> str:
        return type_token(self.api_version, self.kind)

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(type_token(version, self.kind) for version in self.former_versions)


_RBAC = "rbac.authorization.k8s.io"
NAMESPACE = KubeKind("v1", "Namespace", outputs=("spec", "status"))
RESOURCE_QUOTA = KubeKind("v1", "ResourceQuota", outputs=("status",))
LIMIT_RANGE = KubeKind("v1", "LimitRange")
SERVICE_ACCOUNT = KubeKind("v1", "ServiceAccount")
CONFIG_MAP = KubeKind("v1", "ConfigMap")
NETWORK_POLICY = KubeKind("networking.k8s.io/v1", "NetworkPolicy", outputs=("status",),
                          former_versions=("extensions/v1beta1",))
ROLE = KubeKind(f"{_RBAC}/v1", "Role", former_versions=(f"{_RBAC}/v1alpha1", f"{_RBAC}/v1beta1"))
ROLE_BINDING = KubeKind(f"{_RBAC}/v1", "RoleBinding", former_versions=(f"{_RBAC}/v1alpha1", f"{_RBAC}/v1beta1"))
CLUSTER_ROLE_BINDING = KubeKind(f"{_RBAC}/v1", "ClusterRoleBinding",
                                former_versions=(f"{_RBAC}/v1alpha1", f"{_RBAC}/v1beta1"))


def _options(opts: pulumi.ResourceOptions | None, aliases: tuple[str, ...] = ()) -> pulumi.ResourceOptions:
    merged = with_plugin_version("kubernetes", opts)
    if aliases:
        merged = pulumi.ResourceOptions.merge(
            merged, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=token) for token in aliases])
        )
    return merged


class KubeObject(pulumi.CustomResource):
    """A Kubernetes object of `kind` with the given top-level fields (camelCase, as in a manifest)."""

    metadata: pulumi.Output[dict[str, Any]]

    def __init__(
        self, kind: KubeKind, name: str, fields: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {"apiVersion": kind.api_version, "kind": kind.kind, **fields, **dict.fromkeys(kind.outputs)}
        super().__init__(kind.token, name, props, _options(opts, kind.aliases))


class ExistingObject(pulumi.CustomResource):
    """An object read from the cluster, not managed (`<Kind>.get`): `fields` become its output attributes."""

    data: pulumi.Output[dict[str, str] | None]

    def __init__(
        self, kind: KubeKind, name: str, object_id: str, fields: tuple[str, ...],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            kind.token, name, dict.fromkeys(("apiVersion", "kind", *fields)),
            _options(pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(id=object_id))),
        )


class HelmRelease(pulumi.CustomResource):
    """A `helm.sh/v3` Release; `fields` are its inputs in camelCase (`maxHistory`, `waitForJobs`, ...)."""

    name: pulumi.Output[str]

    def __init__(self, name: str, fields: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        # `compat` is a constant the generated class always sends; `status` is output only.
        super().__init__(RELEASE_TYPE, name, {**fields, "compat": "true", "status": None}, _options(opts))
