"""The resolved model of one stack: catalog + stack config, with every name taken from naming.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from config import naming
from config.catalog import Catalog, CatalogService
from config.files import chart_default_values
from config.runners import RunnerIdentity
from config.stack import ServiceOverride, StackConfig
from config.types import PodResources, Runner, Toleration
from config.vault_keys import ExternalKeyCheck, GeneratedProperty, VaultKey, VaultKeyWrite, key_folders


@dataclass(frozen=True)
class SecretMapping:
    secret_key: str
    env: str
    vault_key: VaultKey
    vault_property: str


def chart_default_resources() -> PodResources:
    """What a suite pod requests and may use unless its service says otherwise (values.yaml)."""
    return PodResources.model_validate(chart_default_values()["resources"])


def with_storage_bounds(resources: PodResources) -> PodResources:
    """`resources` with the chart's ephemeral-storage request and limit where it states none: every
    suite pod bounds the node disk it may fill."""
    default = chart_default_resources()
    return resources.model_copy(update={
        bound: getattr(resources, bound).model_copy(update={"ephemeral_storage": getattr(default, bound).ephemeral_storage})
        for bound in ("requests", "limits") if getattr(resources, bound).ephemeral_storage is None
    })


@dataclass(frozen=True)
class ServiceSettings:
    name: str
    description: str
    runner: Runner
    image_repository: str
    # Exactly one of the two: a digest pins the image, a tag may move.
    image_tag: str | None
    image_digest: str | None
    timeout_seconds: int
    env: Mapping[str, str]
    secrets: tuple[SecretMapping, ...]
    required_env: tuple[str, ...]
    entrypoint: str
    resources: PodResources
    image_pull_secrets: tuple[str, ...]
    node_selector: Mapping[str, str]
    tolerations: tuple[Toleration, ...]
    runs_as: RunnerIdentity  # the service account its pods run as

    @property
    def image(self) -> str:
        """The image reference the suite's pod runs."""
        if self.image_digest:
            return f"{self.image_repository}@{self.image_digest}"
        return f"{self.image_repository}:{self.image_tag}"

    @property
    def image_pull_policy(self) -> str:
        """A pinned digest is pulled once per node; a tag may have moved, so it is pulled every time."""
        return "IfNotPresent" if self.image_digest else "Always"

    @property
    def release_name(self) -> str:
        return naming.release_name(self.name)

    @property
    def secret_name(self) -> str | None:
        return naming.secret_name(self.name) if self.secrets else None

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
        return self.timeout_seconds + naming.DEADLINE_MARGIN_SECONDS


@dataclass(frozen=True)
class Settings:
    project: str
    environment: str
    catalog: Catalog
    stack: StackConfig

    @property
    def stack_file(self) -> str:
        return naming.stack_file(self.environment)

    @property
    def release_timeout_seconds(self) -> int:
        """Helm's timeout per release: the stack's `releaseTimeoutSeconds`, or else long enough for the
        longest Job deadline of its enabled services (at least naming.DEFAULT_RELEASE_TIMEOUT_SECONDS),
        so raising a suite's timeout is one edit of the catalog or a serviceOverrides entry."""
        if self.stack.release_timeout_seconds is not None:
            return self.stack.release_timeout_seconds
        longest = max((s.active_deadline_seconds for s in self.services), default=0)
        return max(naming.DEFAULT_RELEASE_TIMEOUT_SECONDS, longest + naming.RELEASE_TIMEOUT_MARGIN_SECONDS)

    def external_key_fix(self, key: VaultKey) -> str:
        """What to do about an `external` key that is absent or incomplete (program and preflight)."""
        return (
            f"ask {key.owner} to populate it, or let this program write it: set "
            f"{naming.config_key('secretSources.' + key.name)} to `config` (with its secretValues) "
            f"in {self.stack_file}"
        )

    def external_key_check(self, key: VaultKey) -> ExternalKeyCheck:
        return ExternalKeyCheck(key, self.external_key_fix(key))

    def external_key_problem(self, key: VaultKey, present: Iterable[str] | None) -> str | None:
        """Why an `external` key cannot be used, with the fix; None if usable (ExternalKeyCheck.problem)."""
        return self.external_key_check(key).problem(present)

    @property
    def external_key_checks(self) -> tuple[ExternalKeyCheck, ...]:
        return tuple(self.external_key_check(k) for k in self.vault_keys if k.source == "external")

    @property
    def vault_key_writes(self) -> tuple[VaultKeyWrite, ...]:
        """The keys the program writes, each with its values decided here (none for `external` keys)."""
        return tuple(
            VaultKeyWrite(
                key=key,
                config_values={p: self.stack.secret_values[key.name][p] for p in key.properties}
                if key.source == "config" else {},
                generated={p: self.generated_property(key, p) for p in key.properties}
                if key.source == "generated" else {},
            )
            for key in self.vault_keys if key.source != "external"
        )

    @property
    def vault_policy_hcl(self) -> str:
        """Read on the KV v2 data under the folders this stack's keys live in (its prefix, and the one
        its external keys come from), nothing else: a key added to the catalog changes no text, so the
        deploy identity's pin on this policy holds across catalog changes."""
        blocks = [
            f"# Generated by the testinfra Pulumi program for stack {self.environment}.\n"
            f"# External Secrets Operator may read the keys under these folders and nothing else.\n"
        ]
        for mount, folder in key_folders(self.vault_keys):
            blocks.append(f'path "{naming.vault_read_path(mount, folder)}/*" {{\n  capabilities = ["read"]\n}}\n')
        # The role's tokens carry no `default` policy. ESO (without its experimental token cache) logs in
        # for every sync, checks the token with lookup-self and revokes it with revoke-self when done
        # (pkg/provider/vault client.Close): refused, each token would live out its TTL -- at a 1m refresh,
        # twelve new live tokens a minute per dozen ExternalSecrets, piling up in Vault's lease store.
        blocks.append('path "auth/token/lookup-self" {\n  capabilities = ["read"]\n}\n')
        blocks.append('path "auth/token/revoke-self" {\n  capabilities = ["update"]\n}\n')
        return "\n".join(blocks)

    @property
    def namespace(self) -> str:
        return self.stack.namespace

    @property
    def namespace_labels(self) -> dict[str, str]:
        """The integration namespace's labels: the stack's, and Pod Security Admission `restricted`
        pinned to the cluster's version (whoever creates the namespace: the program or the platform)."""
        psa = {
            f"{naming.PSA_LABEL_PREFIX}{mode}{suffix}": value
            for mode in ("enforce", "warn", "audit")
            for suffix, value in (("", naming.PSA_LEVEL), ("-version", f"v{self.stack.kubernetes_version}"))
        }
        return {**self.labels("namespace"), **psa}

    @property
    def vault_cluster_address(self) -> str:
        """Where ESO, inside the cluster, reaches Vault (may differ from where Pulumi does)."""
        return (self.stack.vault_cluster_address or self.stack.vault_address).rstrip("/")

    @property
    def vault_prefix(self) -> str:
        return naming.vault_prefix(self.stack.vault_path_prefix, self.environment)

    def _prefix_of(self, source: str) -> str:
        """Where a key lives: under this stack's prefix, or -- an `external` key of a stack that reads
        another's (externalKeysFrom) -- under that stack's, where its owner keeps it."""
        if source == "external" and self.stack.external_keys_from:
            return naming.vault_prefix(self.stack.vault_path_prefix, self.stack.external_keys_from)
        return self.vault_prefix

    @property
    def eso_access_by_platform(self) -> bool:
        """A review stack's ESO policy and role are the trusted provisioner's (config/review_access.py)."""
        return naming.is_review_stack(self.environment)

    @property
    def vault_policy_name(self) -> str:
        return naming.vault_policy_name(self.environment)

    @property
    def vault_role_name(self) -> str:
        return naming.vault_role_name(self.environment)

    @property
    def secret_store_name(self) -> str:
        return naming.secret_store_name(self.environment)

    @property
    def vault_auth_service_account(self) -> tuple[str, str]:
        """(name, namespace) of the service account ESO presents to Vault."""
        if self.stack.secret_store_kind == "ClusterSecretStore":
            return self.stack.eso_service_account, self.stack.eso_namespace
        return naming.NAMESPACED_VAULT_AUTH_SERVICE_ACCOUNT, self.namespace

    @property
    def vault_token_review_binding_name(self) -> str:
        """ClusterRoleBinding letting the service account ESO presents call TokenReview."""
        return naming.token_review_binding_name(self.environment)

    @property
    def runner_service_account(self) -> str:
        return self.shared_runner.service_account

    def labels(self, component: str) -> dict[str, str]:
        return naming.labels(self.environment, component)

    @cached_property
    def vault_keys(self) -> tuple[VaultKey, ...]:
        """Every key the enabled services read, each once, in a stable order."""
        used: dict[str, set[str]] = {}
        for name, svc in self._enabled_catalog_services():
            for ref in svc.secrets:
                used.setdefault(ref.key or name, set()).add(ref.vault_property)
        keys = []
        for key_name in sorted(used):
            shared = self.catalog.shared_keys.get(key_name)
            source = self.stack.secret_sources.get(key_name, self.stack.default_secret_source)
            props = tuple(shared.properties) if shared else tuple(sorted(used[key_name]))
            keys.append(
                VaultKey(
                    name=key_name,
                    mount=self.stack.vault_mount,
                    path=naming.vault_key_path(self._prefix_of(source), key_name),
                    properties=props,
                    source=source,
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
            # The most specific image setting wins: the override's, the stack's suiteImage, then the
            # catalog's digest.
            overridden = override.image or override.image_tag or override.image_digest
            suite = None if overridden else self.stack.suite_image
            digest = override.image_digest if overridden else suite.digest if suite else svc.image_digest
            out.append(
                ServiceSettings(
                    name=name,
                    description=svc.description,
                    runner=svc.runner,
                    image_repository=override.image or (suite.repository if suite else svc.image),
                    image_tag=None if digest else override.image_tag or self.stack.image_tag,
                    image_digest=digest,
                    timeout_seconds=override.timeout_seconds or svc.timeout_seconds,
                    env={**svc.env, **override.env},
                    secrets=tuple(
                        SecretMapping(
                            secret_key=r.secret_key,
                            env=r.env_name,
                            vault_key=keys[r.key or name],
                            vault_property=r.vault_property,
                        )
                        for r in svc.secrets
                    ),
                    required_env=tuple(svc.required_env),
                    entrypoint=self.catalog.entrypoint,
                    resources=with_storage_bounds(override.resources or svc.resources or chart_default_resources()),
                    image_pull_secrets=tuple(
                        self.stack.image_pull_secrets if override.image_pull_secrets is None
                        else override.image_pull_secrets),
                    node_selector=override.node_selector,
                    tolerations=tuple(override.tolerations),
                    runs_as=self._runner_of(name, override),
                )
            )
        return tuple(out)

    def generated_property(self, key: VaultKey, prop: str) -> GeneratedProperty:
        """How `prop` of `key` is made from a random string: its catalog format, or the string itself."""
        return GeneratedProperty(self.catalog.generated_formats.get(prop), key.name)

    @property
    def shared_runner(self) -> RunnerIdentity:
        """The account of every suite without RBAC of its own; the stack's runnerRbac, if any, is its Role."""
        return RunnerIdentity(naming.RUNNER_SERVICE_ACCOUNT, tuple(self.stack.runner_rbac))

    def _runner_of(self, name: str, override: ServiceOverride) -> RunnerIdentity:
        if not override.runner_rbac:
            return self.shared_runner
        return RunnerIdentity(naming.runner_service_account(name),
                              (*self.stack.runner_rbac, *override.runner_rbac), service=name)

    @property
    def runner_identities(self) -> tuple[RunnerIdentity, ...]:
        """The shared account first, then one per service that has RBAC of its own."""
        return (self.shared_runner, *(s.runs_as for s in self.services if s.runs_as.service))

    def _enabled_catalog_services(self) -> list[tuple[str, CatalogService]]:
        return [
            (name, svc)
            for name, svc in sorted(self.catalog.services.items())
            if self.stack.service_overrides.get(name, ServiceOverride()).enabled
        ]
