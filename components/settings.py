"""Validated settings: `catalog.yaml` + the current stack's config, and every name derived from them.

This module is the one place that decides names and paths (release, Job, Secret, Vault path,
policy, role, labels). Components receive a `Settings` and never build a name themselves.
Loading fails with one `SettingsError` that names the file, the field path and the fix,
before any resource is declared.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import pulumi
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

PROJECT = "testinfra"
CATALOG_FILE = "catalog.yaml"
ENVIRONMENTS = ("local", "staging", "prod")

# Job name = "test-" + service + "-" + 10-char run id must stay a 63-char DNS label.
MAX_SERVICE_NAME = 47
RUN_ID_LENGTH = 10
JUNIT_DIR = "/results"
JUNIT_PATH = f"{JUNIT_DIR}/junit.xml"
SECRET_NAME_SUFFIX = "-int-tests-secrets"
RELEASE_PREFIX = "test-"

Runner = Literal["gotestsum", "jest", "pytest"]
SecretSource = Literal["config", "generated", "external"]
StoreKind = Literal["ClusterSecretStore", "SecretStore"]

DnsLabel = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
]
ServiceName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=MAX_SERVICE_NAME),
]
EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
SecretKeyName = Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)]
# Vault path segments: no slashes, no "data"/"metadata" tricks, no dot-only segments.
VaultSegment = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=128)
]
VaultPath = Annotated[
    str,
    StringConstraints(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*(/[A-Za-z0-9][A-Za-z0-9_-]*)*$", max_length=200
    ),
]
ImageRepository = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$",
        max_length=255,
    ),
]
ImageTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
Duration = Annotated[str, StringConstraints(pattern=r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")]
KubeVersion = Annotated[str, StringConstraints(pattern=r"^1\.[0-9]{2}$")]
Quantity = Annotated[
    str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
]
StackName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"),
]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SettingsError(pulumi.RunError):
    """Bad input. Pulumi prints a RunError's message without a stack trace."""


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


# --------------------------------------------------------------------------- catalog.yaml


class SecretRef(_Strict):
    secret_key: SecretKeyName
    env: EnvVarName | None = None
    key: VaultSegment | None = None
    property: VaultSegment

    @model_validator(mode="after")
    def _env_name_needed(self) -> SecretRef:
        if self.env is None and not _ENV_NAME.match(self.secret_key):
            raise ValueError(
                f"secretKey {self.secret_key!r} is not a valid env var name; "
                "add `env: <NAME>` for the variable the runner reads"
            )
        return self

    @property
    def env_name(self) -> str:
        return self.env or self.secret_key


class SharedKey(_Strict):
    owner: str = Field(min_length=1)
    description: str = Field(min_length=1)
    properties: list[VaultSegment] = Field(min_length=1)


class CatalogService(_Strict):
    description: str = Field(min_length=1)
    runner: Runner
    image: ImageRepository
    timeout_seconds: int = Field(ge=10, le=3600)
    env: dict[EnvVarName, str] = Field(default_factory=dict)
    secrets: list[SecretRef] = Field(default_factory=list)
    required_env: list[EnvVarName] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> CatalogService:
        secret_keys = [s.secret_key for s in self.secrets]
        dupes = sorted({k for k in secret_keys if secret_keys.count(k) > 1})
        if dupes:
            raise ValueError(f"secretKey listed twice: {', '.join(dupes)}")
        secret_envs = [s.env_name for s in self.secrets]
        both = sorted(set(secret_envs) & set(self.env) | {e for e in secret_envs if secret_envs.count(e) > 1})
        if both:
            raise ValueError(f"env var defined twice (env and/or secrets): {', '.join(both)}")
        provided = set(self.env) | set(secret_envs)
        missing = [e for e in self.required_env if e not in provided]
        if missing:
            raise ValueError(
                f"requiredEnv {', '.join(missing)} not provided: add it under `env` "
                "(non-secret) or `secrets` (from Vault)"
            )
        return self


GENERATED_FORMAT_FIELDS = ("password", "key", "user")


def _generated_format(template: str) -> str:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as e:
        raise ValueError(f"not a format template ({e})") from None
    unknown = sorted(fields - set(GENERATED_FORMAT_FIELDS))
    if unknown or "password" not in fields:
        raise ValueError(
            f"a template must contain {{password}} and may use only "
            f"{', '.join('{' + f + '}' for f in GENERATED_FORMAT_FIELDS)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    return template


GeneratedFormat = Annotated[str, AfterValidator(_generated_format)]


class Catalog(_Strict):
    schema_version: Literal[1]
    entrypoint: Annotated[str, StringConstraints(pattern=r"^/[^\s]+$")]
    shared_keys: dict[VaultSegment, SharedKey] = Field(default_factory=dict)
    generated_formats: dict[VaultSegment, GeneratedFormat] = Field(default_factory=dict)
    services: dict[ServiceName, CatalogService] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_resolve(self) -> Catalog:
        clash = sorted(set(self.services) & set(self.shared_keys))
        if clash:
            raise ValueError(
                f"{', '.join(clash)} is both a service and a shared key: their Vault keys would "
                "collide; rename the shared key"
            )
        for name, svc in self.services.items():
            for ref in svc.secrets:
                if ref.key is None or ref.key == name:
                    continue
                shared = self.shared_keys.get(ref.key)
                if shared is None:
                    raise ValueError(
                        f"services.{name}.secrets: key {ref.key!r} is neither the service's own "
                        f"key nor one of sharedKeys ({', '.join(sorted(self.shared_keys)) or 'none'})"
                    )
                if ref.property not in shared.properties:
                    raise ValueError(
                        f"services.{name}.secrets: property {ref.property!r} is not declared in "
                        f"sharedKeys.{ref.key}.properties"
                    )
        return self


# --------------------------------------------------------------------------- Pulumi.<stack>.yaml


class ServiceOverride(_Strict):
    enabled: bool = True
    image: ImageRepository | None = None
    image_tag: ImageTag | None = None
    timeout_seconds: int | None = Field(default=None, ge=10, le=3600)
    env: dict[EnvVarName, str] = Field(default_factory=dict)


class EgressRule(_Strict):
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


class ResourceQuota(_Strict):
    pods: int = Field(default=20, ge=1, le=1000)
    requests_cpu: Quantity = "8"
    requests_memory: Quantity = "16Gi"
    limits_cpu: Quantity = "16"
    limits_memory: Quantity = "32Gi"


class RbacRule(_Strict):
    api_groups: list[str]
    resources: list[str] = Field(min_length=1)
    verbs: list[Literal["get", "list", "watch", "create", "update", "patch", "delete"]] = Field(
        min_length=1
    )


class StackConfig(_Strict):
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


# --------------------------------------------------------------------------- resolved settings


@dataclass(frozen=True)
class VaultKey:
    """One KV v2 secret this stack declares, and where its value comes from."""

    name: str
    mount: str
    path: str  # mount-relative, e.g. integration/staging/graph
    properties: tuple[str, ...]
    source: SecretSource
    owner: str

    @property
    def api_read_path(self) -> str:
        # KV v2 serves reads under <mount>/data/<path>: the path a policy must grant.
        return f"{self.mount}/data/{self.path}"

    def missing_properties(self, present: Iterable[str] | None) -> list[str]:
        """The declared properties not among `present` (all of them when the key is absent)."""
        have = set(present or ())
        return [p for p in self.properties if p not in have]


@dataclass(frozen=True)
class SecretMapping:
    secret_key: str
    env: str
    vault_key: VaultKey
    property: str


@dataclass(frozen=True)
class ServiceSettings:
    name: str
    description: str
    runner: Runner
    image: str
    timeout_seconds: int
    env: Mapping[str, str]
    secrets: tuple[SecretMapping, ...]
    required_env: tuple[str, ...]
    entrypoint: str

    @property
    def release_name(self) -> str:
        return f"{RELEASE_PREFIX}{self.name}"

    @property
    def secret_name(self) -> str | None:
        return f"{self.name}{SECRET_NAME_SUFFIX}" if self.secrets else None

    @property
    def vault_key(self) -> VaultKey | None:
        own = [m.vault_key for m in self.secrets if m.vault_key.name == self.name]
        return own[0] if own else None

    @property
    def vault_keys(self) -> tuple[VaultKey, ...]:
        seen: dict[str, VaultKey] = {}
        for m in self.secrets:
            seen.setdefault(m.vault_key.name, m.vault_key)
        return tuple(seen.values())

    @property
    def active_deadline_seconds(self) -> int:
        # Room for image pull and JUnit export after the suite's own timeout fires.
        return self.timeout_seconds + 120


@dataclass(frozen=True)
class Settings:
    project: str
    environment: str
    catalog: Catalog
    stack: StackConfig

    @property
    def stack_file(self) -> str:
        return f"Pulumi.{self.environment}.yaml"

    def external_key_fix(self, key: VaultKey) -> str:
        """What to do about an `external` key that is absent or incomplete (program and preflight)."""
        return (
            f"ask {key.owner} to populate it, or let this program write it: set "
            f"config.{self.project}:secretSources.{key.name} to `config` (with its secretValues) "
            f"in {self.stack_file}"
        )

    @property
    def namespace(self) -> str:
        return self.stack.namespace

    @property
    def vault_cluster_address(self) -> str:
        """Where ESO, inside the cluster, reaches Vault (may differ from where Pulumi does)."""
        return (self.stack.vault_cluster_address or self.stack.vault_address).rstrip("/")

    @property
    def vault_prefix(self) -> str:
        return f"{self.stack.vault_path_prefix}/{self.environment}"

    @property
    def vault_policy_name(self) -> str:
        return f"integration-tests-{self.environment}-read"

    @property
    def vault_role_name(self) -> str:
        return f"integration-tests-{self.environment}-eso"

    @property
    def secret_store_name(self) -> str:
        return f"vault-integration-tests-{self.environment}"

    @property
    def vault_auth_service_account(self) -> tuple[str, str]:
        """(name, namespace) of the service account ESO presents to Vault."""
        if self.stack.secret_store_kind == "ClusterSecretStore":
            return self.stack.eso_service_account, self.stack.eso_namespace
        # A namespaced SecretStore may only reference service accounts in its own namespace.
        return "external-secrets-vault", self.namespace

    @property
    def vault_token_review_binding_name(self) -> str:
        """ClusterRoleBinding letting the service account ESO presents call TokenReview."""
        return f"testinfra-{self.environment}-vault-token-review"

    @property
    def runner_service_account(self) -> str:
        return "integration-test-runner"

    def labels(self, component: str) -> dict[str, str]:
        return {
            "app.kubernetes.io/part-of": "integration-tests",
            "app.kubernetes.io/managed-by": "pulumi",
            "app.kubernetes.io/component": component,
            "ameide.io/environment": self.environment,
        }

    @cached_property
    def vault_keys(self) -> tuple[VaultKey, ...]:
        """Every key the enabled services read, each once, in a stable order."""
        used: dict[str, set[str]] = {}
        for name, svc in self._enabled_catalog_services():
            for ref in svc.secrets:
                used.setdefault(ref.key or name, set()).add(ref.property)
        keys = []
        for key_name in sorted(used):
            shared = self.catalog.shared_keys.get(key_name)
            props = tuple(shared.properties) if shared else tuple(sorted(used[key_name]))
            keys.append(
                VaultKey(
                    name=key_name,
                    mount=self.stack.vault_mount,
                    path=f"{self.vault_prefix}/{key_name}",
                    properties=props,
                    source=self.stack.secret_sources.get(key_name, self.stack.default_secret_source),
                    owner=shared.owner if shared else key_name,
                )
            )
        return tuple(keys)

    @cached_property
    def services(self) -> tuple[ServiceSettings, ...]:
        keys = {k.name: k for k in self.vault_keys}
        out = []
        for name, svc in self._enabled_catalog_services():
            override = self.stack.service_overrides.get(name, ServiceOverride())
            image = override.image or svc.image
            tag = override.image_tag or self.stack.image_tag
            out.append(
                ServiceSettings(
                    name=name,
                    description=svc.description,
                    runner=svc.runner,
                    image=f"{image}:{tag}",
                    timeout_seconds=override.timeout_seconds or svc.timeout_seconds,
                    env={**svc.env, **override.env},
                    secrets=tuple(
                        SecretMapping(
                            secret_key=r.secret_key,
                            env=r.env_name,
                            vault_key=keys[r.key or name],
                            property=r.property,
                        )
                        for r in svc.secrets
                    ),
                    required_env=tuple(svc.required_env),
                    entrypoint=self.catalog.entrypoint,
                )
            )
        return tuple(out)

    def generated_value(self, key: VaultKey, prop: str, password: str) -> str:
        """The value a `generated` property gets: its catalog format, or the random string itself."""
        template = self.catalog.generated_formats.get(prop)
        if template is None:
            return password
        return template.format(password=password, key=key.name, user=key.name.replace("-", "_"))

    def secret_value(self, key: str, prop: str) -> str:
        return self.stack.secret_values[key][prop].get_secret_value()

    def _enabled_catalog_services(self) -> list[tuple[str, CatalogService]]:
        return [
            (name, svc)
            for name, svc in sorted(self.catalog.services.items())
            if self.stack.service_overrides.get(name, ServiceOverride()).enabled
        ]


def run_id(spec: Mapping[str, Any]) -> str:
    """A short, stable id of a Job's run spec: equal specs share a Job, changed specs get a new one
    (a Job's pod template is immutable, so an in-place update would fail)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:RUN_ID_LENGTH]


# --------------------------------------------------------------------------- loading


# libyaml's parser when PyYAML was built with it (the PyPI wheels are): several times faster.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """PyYAML keeps the last of two equal keys; a duplicate service must be an error instead."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file, rejecting duplicate keys, with errors that name the file."""
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except FileNotFoundError:
        raise SettingsError(f"{path.name}: file not found at {path}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path.name}: not valid YAML: {exc}") from None


def _format(file: str, exc: ValidationError, prefix: str = "") -> str:
    lines = [f"{file}: {len(exc.errors())} invalid field(s):"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        where = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        # Never echo what was given under secretValues: it may be the secret itself.
        secret = bool(err["loc"]) and err["loc"][0] == "secretValues"
        if not secret and err["type"] not in ("missing", "extra_forbidden") and "input" in err:
            shown = repr(err["input"])
            msg += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
        if err["type"] == "extra_forbidden":
            msg = "unknown field: remove it or check its spelling (see README, Configuration)"
        lines.append(f"  - {where}: {msg}")
    return "\n".join(lines)


def load_catalog(path: Path) -> Catalog:
    data = load_yaml(path)
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_format(path.name, exc)) from None


def parse_stack_config(
    raw: Mapping[str, Any], *, stack: str, secret_keys: Collection[str] = ()
) -> StackConfig:
    """`raw` is the flat Pulumi config map (`testinfra:key` -> string or JSON string)."""
    file = f"Pulumi.{stack}.yaml"
    data: dict[str, Any] = {}
    for full_key, value in raw.items():
        namespace, _, key = full_key.partition(":")
        if namespace != PROJECT:
            continue  # provider config (kubernetes:, vault:) is not ours to validate
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise SettingsError(f"{file}: config.{full_key}: not valid JSON: {exc}") from None
        data[key] = value
    try:
        cfg = StackConfig.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_format(file, exc, prefix=f"config.{PROJECT}:")) from None
    if cfg.secret_values and f"{PROJECT}:secretValues" not in secret_keys:
        raise SettingsError(
            f"{file}: config.{PROJECT}:secretValues is stored in plaintext: set each value with "
            f"`pulumi config set --secret --path 'secretValues.<key>.<property>' <value>`"
        )
    return cfg


def resolve(catalog: Catalog, cfg: StackConfig, *, environment: str) -> Settings:
    file = f"Pulumi.{environment}.yaml"
    if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", environment) or len(environment) > 20:
        raise SettingsError(
            f"stack name {environment!r}: must be a short DNS label (local, staging, prod)"
        )
    problems: list[str] = []
    unknown = sorted(set(cfg.service_overrides) - set(catalog.services))
    for name in unknown:
        problems.append(
            f"config.{PROJECT}:serviceOverrides.{name}: no such service in {CATALOG_FILE}"
        )
    settings = Settings(project=PROJECT, environment=environment, catalog=catalog, stack=cfg)
    declared = {k.name: k for k in settings.vault_keys}
    for name in sorted(set(cfg.secret_sources) - set(declared)):
        problems.append(
            f"config.{PROJECT}:secretSources.{name}: no enabled service reads Vault key {name!r}"
        )
    for key in settings.vault_keys:
        given = cfg.secret_values.get(key.name, {})
        if key.source == "config":
            for prop in key.properties:
                if prop not in given:
                    problems.append(
                        f"config.{PROJECT}:secretValues.{key.name}.{prop}: missing (source is "
                        f"`config`): run `pulumi config set --secret --path "
                        f"'secretValues.{key.name}.{prop}' <value> -s {environment}`"
                    )
        if given and key.source != "config":
            problems.append(
                f"config.{PROJECT}:secretValues.{key.name}: set, but the key's source is "
                f"`{key.source}`: remove the values or set secretSources.{key.name}: config"
            )
        for prop in sorted(set(given) - set(key.properties)):
            problems.append(
                f"config.{PROJECT}:secretValues.{key.name}.{prop}: not a property of this key "
                f"({', '.join(key.properties)})"
            )
    for name in sorted(set(cfg.secret_values) - set(declared)):
        problems.append(f"config.{PROJECT}:secretValues.{name}: no enabled service reads this key")
    if not settings.services:
        problems.append(f"config.{PROJECT}:serviceOverrides: every service is disabled")
    if problems:
        raise SettingsError(f"{file}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
    return settings


def load_settings(
    *,
    project_dir: Path,
    environment: str,
    config: Mapping[str, Any],
    secret_keys: Collection[str] = (),
) -> Settings:
    catalog = load_catalog(project_dir / CATALOG_FILE)
    cfg = parse_stack_config(config, stack=environment, secret_keys=secret_keys)
    return resolve(catalog, cfg, environment=environment)


def load_settings_from_pulumi(project_dir: Path) -> Settings:
    """Read the running program's config (as the engine or the offline harness set it)."""
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = [k for k in raw if runtime_config.is_config_secret(k)]
    secret_keys += runtime_config.get_config_secret_keys_env()
    return load_settings(
        project_dir=project_dir,
        environment=pulumi.get_stack(),
        config=raw,
        secret_keys=secret_keys,
    )
