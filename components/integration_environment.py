"""`IntegrationEnvironment`: one environment's whole integration-test infrastructure.

Owns: the explicit Kubernetes and Vault providers (from stack config, never the ambient kubeconfig
context), the prerequisite StackReference, and the composition of namespace, Vault, store,
ExternalSecrets and releases in dependency order. It is the one place that reads the resolved
settings: each component gets a narrow args object built here. Its `outputs` are the stack
outputs contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as kubernetes
import pulumi_vault as vault
from pulumi_kubernetes.helm.v3 import Release

from components.integration_namespace import (
    IntegrationNamespace,
    IntegrationNamespaceArgs,
)
from components.service_external_secret import (
    SecretItem,
    ServiceExternalSecretArgs,
    service_external_secret,
)
from components.suite_release import (
    SuiteReleaseArgs,
    suite_release,
)
from components.vault_integration_secrets import (
    KubernetesAuthArgs,
    VaultIntegrationSecrets,
    VaultIntegrationSecretsArgs,
)
from components.vault_secret_store import VaultSecretStore, VaultSecretStoreArgs
from config.chart_values import install_job_name, release_values
from config.contract import stack_outputs
from config.model import ServiceSettings, Settings
from config.naming import COMPONENT_TYPE_PREFIX, LABEL_SERVICE, stack_reference


@dataclass(frozen=True)
class IntegrationEnvironmentArgs:
    settings: Settings


def namespace_args(s: Settings) -> IntegrationNamespaceArgs:
    return IntegrationNamespaceArgs(
        name=s.namespace,
        labels=s.labels("namespace"),
        namespace_labels=s.namespace_labels,
        create=s.stack.manage_namespace,
        protect=s.stack.protect,
        quota=s.stack.resource_quota,
        egress=tuple(s.stack.egress),
        runners=s.runner_identities,
    )


def vault_args(s: Settings) -> VaultIntegrationSecretsArgs:
    cfg = s.stack
    sa_name, sa_namespace = s.vault_auth_service_account
    return VaultIntegrationSecretsArgs(
        keys=s.vault_keys,
        writes=s.vault_key_writes,
        external_checks=s.external_key_checks,
        policy_name=s.vault_policy_name,
        policy=s.vault_policy_hcl,
        role_name=s.vault_role_name,
        auth_mount=cfg.vault_auth_mount,
        service_account=sa_name,
        service_account_namespace=sa_namespace,
        audience=cfg.vault_audience,
        token_ttl_seconds=cfg.vault_token_ttl_seconds,
        protect=cfg.protect,
        create_mount=cfg.vault_mount if cfg.vault_create_mount else None,
        manage_auth=KubernetesAuthArgs(
            kubernetes_host=cfg.vault_kubernetes_host,
            token_review_binding=s.vault_token_review_binding_name,
            labels=s.labels("secret-store"),
        ) if cfg.vault_manage_auth_backend else None,
        manage_eso_access=not s.eso_access_by_platform,
    )


def store_args(s: Settings) -> VaultSecretStoreArgs:
    cfg = s.stack
    sa_name, sa_namespace = s.vault_auth_service_account
    return VaultSecretStoreArgs(
        kind=cfg.secret_store_kind,
        name=s.secret_store_name,
        namespace=s.namespace,
        labels=s.labels("secret-store"),
        vault_server=s.vault_cluster_address,
        vault_mount=cfg.vault_mount,
        auth_mount=cfg.vault_auth_mount,
        role_name=s.vault_role_name,
        service_account=sa_name,
        service_account_namespace=sa_namespace,
        audience=cfg.vault_audience,
        ca_bundle=cfg.vault_ca_bundle,
        protect=cfg.protect,
    )


def external_secret_args(s: Settings, svc: ServiceSettings, secret_name: str) -> ServiceExternalSecretArgs:
    return ServiceExternalSecretArgs(
        name=secret_name,
        namespace=s.namespace,
        labels={**s.labels("secrets"), LABEL_SERVICE: svc.name},
        store_kind=s.stack.secret_store_kind,
        store_name=s.secret_store_name,
        refresh_interval=s.stack.secret_refresh_interval,
        wait_for_ready=s.stack.wait_for_secrets,
        items=tuple(SecretItem(m.secret_key, m.vault_key.path, m.vault_property) for m in svc.secrets),
    )


class IntegrationEnvironment(pulumi.ComponentResource):
    outputs: dict[str, Any]

    def __init__(
        self, name: str, args: IntegrationEnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{COMPONENT_TYPE_PREFIX}IntegrationEnvironment", name, None, opts)
        s = args.settings
        cfg = s.stack
        within = pulumi.ResourceOptions(parent=self, providers=self._explicit_providers(s))

        namespace = IntegrationNamespace("integration", namespace_args(s), within)
        secrets = VaultIntegrationSecrets("vault", vault_args(s), within)
        store = VaultSecretStore(
            "store",
            store_args(s),
            pulumi.ResourceOptions.merge(within, pulumi.ResourceOptions(depends_on=[namespace, secrets])),
        )
        # The seed's rule: integration resources apply only after ameide_core_proto is built and
        # pushed. Reading the proto stack's output makes that an edge of the graph.
        proto = pulumi.StackReference(
            "ameide-core-proto", stack_name=stack_reference(cfg.proto_stack, pulumi.get_organization()),
            opts=pulumi.ResourceOptions(parent=self)
        )
        proto_version = proto.require_output(cfg.proto_stack_output)

        releases: dict[str, pulumi.Output[str]] = {}
        jobs: dict[str, str | None] = {}
        for svc in s.services:
            release, job = self._service(s, svc, within, depends_on=[namespace, proto], store=store,
                                         proto_version=proto_version)
            # Optional in the schema; always the name given once the release exists.
            releases[svc.name] = cast(pulumi.Output[str], release.name)
            jobs[svc.name] = job

        self.outputs = stack_outputs(
            s,
            namespace=namespace.name,
            store_name=store.store_name,
            policy_name=secrets.policy_name,
            role_name=secrets.role_name,
            releases=releases,
            jobs=jobs,
        )
        self.register_outputs(self.outputs)

    def _explicit_providers(self, s: Settings) -> list[pulumi.ProviderResource]:
        """The explicit providers: from stack config, never the ambient kubeconfig context; the Vault
        token comes from VAULT_TOKEN in the environment, never from config or state."""
        cfg = s.stack
        k8s = kubernetes.Provider(
            "kubernetes",
            context=cfg.kube_context,
            kubeconfig=cfg.kubeconfig or None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        vp = vault.Provider("vault", address=cfg.vault_address, skip_child_token=True,
                            opts=pulumi.ResourceOptions(parent=self))
        return [k8s, vp]

    def _moved(self, name: str, component: str) -> pulumi.Alias:
        """Where a service's resource was before 1.x's per-service components went (issue 34): the same
        object, so an existing stack updates it in place instead of replacing it."""
        return pulumi.Alias(parent=pulumi.create_urn(name, f"{COMPONENT_TYPE_PREFIX}{component}", parent=self))

    def _service(
        self, s: Settings, svc: ServiceSettings, within: pulumi.ResourceOptions, *,
        depends_on: list[pulumi.Resource], store: VaultSecretStore, proto_version: pulumi.Output[Any],
    ) -> tuple[Release, str | None]:
        """One service: its ExternalSecret (when it reads secrets), then its release after it -- both
        straight under the environment: each component would cost three state writes per service."""
        deps = list(depends_on)
        if svc.secret_name:
            deps.append(service_external_secret(
                svc.name,
                external_secret_args(s, svc, svc.secret_name),
                pulumi.ResourceOptions.merge(within, pulumi.ResourceOptions(
                    depends_on=[depends_on[0], store], aliases=[self._moved(svc.name, "ServiceExternalSecret")])),
            ))
        values = release_values(s, svc)
        job = install_job_name(s, svc, values)
        release = suite_release(
            svc.name,
            SuiteReleaseArgs(
                service=svc.name,
                release_name=svc.release_name,
                namespace=s.namespace,
                values=values,
                job_name=job,
                timeout_seconds=s.release_timeout_seconds,
                wait_for_jobs=s.stack.wait_for_jobs and s.stack.run_on_install,
                prerequisite=proto_version,
                depends_on=deps,
            ),
            pulumi.ResourceOptions.merge(within, pulumi.ResourceOptions(
                aliases=[self._moved(svc.name, "TestJobRunnerRelease")])),
        )
        return release, job
