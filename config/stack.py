"""The schema of the `testinfra:*` keys of Pulumi.<stack>.yaml (scalars typed in Pulumi.yaml too)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    StrictInt,
    field_validator,
    model_validator,
)

from config.addresses import server_url_problem
from config.github_oidc import OidcAccess, ReviewAccess
from config.naming import (
    CONTROL_PLANE_PORTS,
    METADATA_NETWORKS,
    READ_VERBS,
    RUNNER_READABLE,
    RUNNER_WRITABLE,
    SYSTEM_NAMESPACES,
)
from config.types import (
    CONTROL_PLANE_NODE_LABELS,
    CpuQuantity,
    DnsLabel,
    DnsSubdomain,
    Duration,
    EnvValue,
    EnvVarName,
    ExternalKeysFrom,
    ImageDigest,
    ImageRepository,
    ImageTag,
    KubeVersion,
    LabelKey,
    LabelValue,
    MemoryQuantity,
    OutputName,
    PodResources,
    SecretSource,
    ServiceName,
    StackName,
    StoreKind,
    StrictModel,
    Toleration,
    VaultPath,
    VaultSegment,
)


class RbacRule(StrictModel):
    """A Role rule for the suites' service account in the integration namespace (within the safe set)."""

    api_groups: list[str] = Field(min_length=1)
    resources: list[str] = Field(min_length=1)
    verbs: list[Literal["get", "list", "watch", "create", "update", "patch", "delete"]] = Field(
        min_length=1
    )

    @model_validator(mode="after")
    def _within_the_safe_set(self) -> RbacRule:
        groups = [g for g in self.api_groups if g not in RUNNER_READABLE]
        if groups:
            raise ValueError(f"apiGroups {groups} not allowed for a suite runner; allowed: "
                             + ", ".join(repr(g) for g in RUNNER_READABLE))
        readable = frozenset().union(*(RUNNER_READABLE[g] for g in self.api_groups))
        unknown = [r for r in self.resources if r not in readable]
        if unknown:
            raise ValueError(f"resources {unknown} not allowed for a suite runner in apiGroups {self.api_groups} "
                             f"(never secrets, service accounts, exec or RBAC); allowed: {sorted(readable)}")
        writes = sorted(set(self.verbs) - READ_VERBS)
        unwritable = [r for r in self.resources if r not in RUNNER_WRITABLE]
        if writes and unwritable:
            raise ValueError(f"verbs {writes} on {unwritable}: a runner may only read these (a workload it creates "
                             "could mount any Secret or account); write verbs only on "
                             + ", ".join(sorted(RUNNER_WRITABLE)))
        return self


class ServiceOverride(StrictModel):
    """One service in one stack. The most specific image setting wins: this override's digest, tag
    or image, then the catalog's digest, then the stack's imageTag."""

    enabled: bool = True
    image: ImageRepository | None = None
    image_tag: ImageTag | None = None
    image_digest: ImageDigest | None = None
    timeout_seconds: int | None = Field(default=None, ge=10, le=3600)
    env: dict[EnvVarName, EnvValue] = Field(default_factory=dict)
    resources: PodResources | None = None
    # Replaces the stack's imagePullSecrets for this service when set.
    image_pull_secrets: list[DnsSubdomain] | None = Field(default=None, max_length=16)
    node_selector: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    # Role rules for this suite alone: it then runs as its own service account, with a token.
    runner_rbac: list[RbacRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_image_reference(self) -> ServiceOverride:
        if self.image_tag is not None and self.image_digest is not None:
            raise ValueError("set imageTag or imageDigest, not both (a digest already names one image)")
        on_control_plane = sorted(CONTROL_PLANE_NODE_LABELS & set(self.node_selector))
        if on_control_plane:
            raise ValueError(f"nodeSelector {on_control_plane[0]} puts the suite on a control-plane node: select the "
                             "worker nodes meant for tests instead")
        return self


# A rule broader than this reaches a large part of the internet, not a suite's dependency.
BROADEST_PREFIX = 8
# Vault's own mounts: never the integration's.
RESERVED_VAULT_MOUNTS = frozenset({"sys", "auth", "identity", "cubbyhole"})
# Vault's own auth method paths: the Kubernetes method cannot live there.
RESERVED_AUTH_MOUNTS = frozenset({"token"})
MIN_REFRESH_SECONDS = 10
MAX_REFRESH_SECONDS = 720 * 3600  # 30 days; far inside Go's duration range, which ESO parses
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def duration_seconds(text: str) -> float:
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


class SuiteImage(StrictModel):
    """One image every suite of the stack runs instead of its catalog image, pinned by digest: for an
    environment that cannot pull the services' own images (the local node runs the project's suite
    image, which honours every runner's conventions)."""

    repository: ImageRepository
    digest: ImageDigest


class EgressRule(StrictModel):
    """One allowed egress destination for the suites (in addition to DNS)."""

    description: str = Field(min_length=1)
    cidr: str | None = None
    namespace: DnsLabel | None = None
    ports: list[Annotated[StrictInt, Field(ge=1, le=65535)]] = Field(min_length=1)
    # 0.0.0.0/0 and the cloud metadata range reach far more than a suite's dependencies.
    allow_any_address: bool = False

    @model_validator(mode="after")
    def _one_destination(self) -> EgressRule:
        if (self.cidr is None) == (self.namespace is None):
            raise ValueError("set exactly one of `cidr` or `namespace`")
        if self.namespace in SYSTEM_NAMESPACES:
            raise ValueError(f"namespace {self.namespace} is the cluster's own (the API server, its control-plane "
                             "pods): a suite's egress names its dependency's namespace; DNS is allowed already")
        internal = [f"{port} ({CONTROL_PLANE_PORTS[port]})" for port in self.ports if port in CONTROL_PLANE_PORTS]
        if internal:
            raise ValueError(f"ports {', '.join(internal)} reach the cluster's control plane, not a suite's dependency: "
                             "remove them")
        if self.cidr is not None:
            try:
                network = ipaddress.IPv4Network(self.cidr, strict=True)
            except ValueError as exc:
                raise ValueError(f"cidr is not an IPv4 network like 10.20.0.0/16 ({exc})") from None
            metadata = [str(m) for m in METADATA_NETWORKS if network.overlaps(m)]
            if not self.allow_any_address and (network.prefixlen < BROADEST_PREFIX or metadata):
                reach = (f"a /{network.prefixlen}, far more than one dependency" if network.prefixlen < BROADEST_PREFIX
                         else f"the cloud metadata address {metadata[0]}")
                raise ValueError(
                    f"cidr {network} reaches {reach}: name the dependency's own network, or set "
                    "allowAnyAddress: true on this rule if that is intended"
                )
        return self


class ResourceQuota(StrictModel):
    pods: int = Field(default=20, ge=1, le=1000)
    requests_cpu: CpuQuantity = "8"
    requests_memory: MemoryQuantity = "16Gi"
    limits_cpu: CpuQuantity = "16"
    limits_memory: MemoryQuantity = "32Gi"
    # The node disk the suites may use together (logs, emptyDirs): every suite pod states its own.
    requests_ephemeral_storage: MemoryQuantity = "32Gi"
    limits_ephemeral_storage: MemoryQuantity = "64Gi"


class StackConfig(StrictModel):
    """Every `testinfra:*` key of a stack. Scalars are declared (typed, with defaults) in
    Pulumi.yaml; objects are not declarable there, so their defaults live here."""

    kube_context: str = Field(min_length=1)
    kubeconfig: str
    kubernetes_version: KubeVersion
    namespace: DnsLabel
    manage_namespace: bool
    vault_address: str = Field(max_length=300)
    vault_cluster_address: str = Field(max_length=300)
    vault_mount: VaultSegment
    vault_create_mount: bool
    vault_path_prefix: VaultPath
    external_keys_from: ExternalKeysFrom
    vault_auth_mount: VaultPath
    vault_manage_auth_backend: bool
    vault_kubernetes_host: str = Field(max_length=300)
    vault_audience: str = Field(min_length=1)
    vault_token_ttl_seconds: int = Field(ge=60, le=86400)
    vault_ca_bundle: str
    eso_service_account: DnsLabel
    eso_namespace: DnsLabel
    secret_store_kind: StoreKind
    secret_refresh_interval: Duration
    wait_for_secrets: bool
    image_tag: ImageTag
    # Secrets in the integration namespace that hold registry credentials for the suite images.
    image_pull_secrets: list[DnsSubdomain] = Field(default_factory=list, max_length=16)
    suite_image: SuiteImage | None = None
    default_secret_source: SecretSource
    protect: bool
    run_on_install: bool
    wait_for_jobs: bool
    # None (0 in the stack file, the project's default): long enough for the stack's longest suite
    # (Settings.release_timeout_seconds).
    release_timeout_seconds: int | None = Field(default=None, ge=30, le=7200)

    @field_validator("release_timeout_seconds", mode="before")
    @classmethod
    def _zero_follows_the_suites(cls, value: object) -> object:
        return None if value in (0, "0") else value  # the CLI hands config values over as text
    proto_stack: StackName
    proto_stack_output: OutputName
    secret_sources: dict[VaultSegment, SecretSource] = Field(default_factory=dict)
    secret_values: dict[VaultSegment, dict[VaultSegment, SecretStr]] = Field(default_factory=dict)
    service_overrides: dict[ServiceName, ServiceOverride] = Field(default_factory=dict)
    egress: list[EgressRule] = Field(default_factory=list)
    resource_quota: ResourceQuota = Field(default_factory=ResourceQuota)
    runner_rbac: list[RbacRule] = Field(default_factory=list)
    review_access: ReviewAccess | None = None
    oidc: OidcAccess | None = None

    @field_validator("secret_refresh_interval")
    @classmethod
    def _not_zero(cls, v: str) -> str:
        if not re.search(r"[1-9]", v):
            raise ValueError("0 means 'never refresh'; use a positive duration such as 1h")
        if duration_seconds(v) < MIN_REFRESH_SECONDS:
            raise ValueError(f"ESO would poll Vault more than every {MIN_REFRESH_SECONDS} s; use 1m or more")
        if duration_seconds(v) > MAX_REFRESH_SECONDS:
            raise ValueError("ESO would re-read Vault less than once in 30 days; use at most 720h (e.g. 1h)")
        return v

    @field_validator("vault_address", "vault_cluster_address", "vault_kubernetes_host")
    @classmethod
    def _server_url(cls, v: str) -> str:
        if v:
            server_url_problem(v)
        return v

    @field_validator("kubeconfig")
    @classmethod
    def _a_path_not_a_kubeconfig(cls, value: str) -> str:
        # A kubeconfig's content carries the cluster credential (a token, a client key) and would sit in
        # plaintext in the stack file and the state; only a path to one belongs here.
        if "\n" in value or any(marker in value for marker in ("apiVersion", "clusters:", "users:", "token:")):
            raise ValueError("holds a kubeconfig's content, not a path to one: its credentials would sit in "
                             "plaintext in the stack file and the state. Put it in a file outside the repository "
                             "and give the file's path (or leave it empty and use kubeContext)")
        return value

    @field_validator("vault_auth_mount")
    @classmethod
    def _not_a_reserved_auth_mount(cls, v: str) -> str:
        if v in RESERVED_AUTH_MOUNTS:
            raise ValueError(f"auth/{v} is Vault's own token method: name the Kubernetes auth mount (e.g. kubernetes)")
        return v

    @field_validator("namespace")
    @classmethod
    def _not_a_system_namespace(cls, v: str) -> str:
        if v in SYSTEM_NAMESPACES or v.startswith("kube-"):
            raise ValueError(f"{v} is a namespace of the cluster itself: use a namespace of its own")
        return v

    @field_validator("vault_mount")
    @classmethod
    def _not_a_reserved_mount(cls, v: str) -> str:
        if v in RESERVED_VAULT_MOUNTS:
            raise ValueError(f"{v}/ is Vault's own: name the KV v2 mount (e.g. secret)")
        return v

    @field_validator("vault_ca_bundle")
    @classmethod
    def _base64_pem(cls, v: str) -> str:
        if not v:
            return v
        try:
            pem = base64.b64decode(v, validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("not base64: give the CA bundle as `base64 -w0 ca.pem`") from None
        if "-----BEGIN CERTIFICATE-----" not in pem:
            raise ValueError("decodes to no PEM certificate: give `base64 -w0 ca.pem` of a CA bundle") from None
        return v

    @model_validator(mode="after")
    def _backend_host(self) -> StackConfig:
        if self.vault_manage_auth_backend and not self.vault_kubernetes_host:
            raise ValueError(
                "vaultManageAuthBackend is true but vaultKubernetesHost is empty: set the API "
                "server URL Vault uses to review tokens"
            )
        return self

    @model_validator(mode="after")
    def _egress_rules_once(self) -> StackConfig:
        seen: dict[tuple[object, ...], int] = {}
        for position, rule in enumerate(self.egress):  # from 0, as `pulumi config set --path` counts
            key = (rule.cidr, rule.namespace, tuple(sorted(rule.ports)))
            if key in seen:
                raise ValueError(f"egress[{position}] repeats egress[{seen[key]}] (same destination and ports): "
                                 "remove one")
            seen[key] = position
        return self

    @model_validator(mode="after")
    def _namespace_of_its_own(self) -> StackConfig:
        if self.namespace == self.eso_namespace:
            raise ValueError(f"namespace {self.namespace} is ESO's own namespace (esoNamespace): the suites and "
                             "their Secrets need a namespace of their own")
        tested = sorted({rule.namespace for rule in self.egress if rule.namespace})
        if self.namespace in tested:
            raise ValueError(f"namespace {self.namespace} is where the services under test run (egress): use a "
                             "namespace of its own (default integration-tests)")
        return self
