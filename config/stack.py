"""The schema of the `testinfra:*` keys of Pulumi.<stack>.yaml (scalars typed in Pulumi.yaml too)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

from config.types import (
    DnsLabel,
    Duration,
    EnvVarName,
    ImageRepository,
    ImageTag,
    KubeVersion,
    Quantity,
    SecretSource,
    ServiceName,
    StackName,
    StoreKind,
    StrictModel,
    VaultPath,
    VaultSegment,
)


class ServiceOverride(StrictModel):
    enabled: bool = True
    image: ImageRepository | None = None
    image_tag: ImageTag | None = None
    timeout_seconds: int | None = Field(default=None, ge=10, le=3600)
    env: dict[EnvVarName, str] = Field(default_factory=dict)


class EgressRule(StrictModel):
    """One allowed egress destination for the suites (in addition to DNS)."""

    description: str = Field(min_length=1)
    cidr: str | None = None
    namespace: DnsLabel | None = None
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_destination(self) -> EgressRule:
        if (self.cidr is None) == (self.namespace is None):
            raise ValueError("set exactly one of `cidr` or `namespace`")
        if self.cidr is not None and not re.match(
            r"^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$", self.cidr
        ):
            raise ValueError(f"cidr {self.cidr!r} is not an IPv4 CIDR like 10.0.0.0/8")
        return self


class ResourceQuota(StrictModel):
    pods: int = Field(default=20, ge=1, le=1000)
    requests_cpu: Quantity = "8"
    requests_memory: Quantity = "16Gi"
    limits_cpu: Quantity = "16"
    limits_memory: Quantity = "32Gi"


class RbacRule(StrictModel):
    api_groups: list[str]
    resources: list[str] = Field(min_length=1)
    verbs: list[Literal["get", "list", "watch", "create", "update", "patch", "delete"]] = Field(
        min_length=1
    )


class StackConfig(StrictModel):
    """Every `testinfra:*` key of a stack. Scalars are declared (typed, with defaults) in
    Pulumi.yaml; objects are not declarable there, so their defaults live here."""

    kube_context: str = Field(min_length=1)
    kubeconfig: str
    kubernetes_version: KubeVersion
    namespace: DnsLabel
    vault_address: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(:[0-9]+)?/?$")]
    vault_cluster_address: Annotated[str, StringConstraints(pattern=r"^(https?://[^\s/]+(:[0-9]+)?/?)?$")]
    vault_mount: VaultSegment
    vault_create_mount: bool
    vault_path_prefix: VaultPath
    vault_auth_mount: VaultPath
    vault_manage_auth_backend: bool
    vault_kubernetes_host: str
    vault_audience: str = Field(min_length=1)
    vault_token_ttl_seconds: int = Field(ge=60, le=86400)
    vault_ca_bundle: str
    eso_service_account: DnsLabel
    eso_namespace: DnsLabel
    secret_store_kind: StoreKind
    secret_refresh_interval: Duration
    wait_for_secrets: bool
    image_tag: ImageTag
    default_secret_source: SecretSource
    protect: bool
    run_on_install: bool
    wait_for_jobs: bool
    release_timeout_seconds: int = Field(ge=30, le=7200)
    proto_stack: StackName
    proto_stack_output: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    secret_sources: dict[VaultSegment, SecretSource] = Field(default_factory=dict)
    secret_values: dict[VaultSegment, dict[VaultSegment, SecretStr]] = Field(default_factory=dict)
    service_overrides: dict[ServiceName, ServiceOverride] = Field(default_factory=dict)
    egress: list[EgressRule] = Field(default_factory=list)
    resource_quota: ResourceQuota = Field(default_factory=ResourceQuota)
    runner_rbac: list[RbacRule] = Field(default_factory=list)

    @field_validator("secret_refresh_interval")
    @classmethod
    def _not_zero(cls, v: str) -> str:
        if not re.search(r"[1-9]", v):
            raise ValueError("0 means 'never refresh'; use a positive duration such as 1h")
        return v

    @model_validator(mode="after")
    def _backend_host(self) -> StackConfig:
        if self.vault_manage_auth_backend and not self.vault_kubernetes_host:
            raise ValueError(
                "vaultManageAuthBackend is true but vaultKubernetesHost is empty: set the API "
                "server URL Vault uses to review tokens"
            )
        return self
