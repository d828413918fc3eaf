"""`IntegrationEnvironment`: one environment's whole integration-test infrastructure.

Owns: the explicit Kubernetes and Vault providers (from stack config, never the ambient
kubeconfig context), the prerequisite StackReference, and the composition of namespace,
Vault, store, ExternalSecrets and releases in dependency order; its `outputs` are the
stack outputs contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes
import pulumi_vault as vault

from components.contract import stack_outputs
from components.integration_namespace import IntegrationNamespace, IntegrationNamespaceArgs
from components.service_external_secret import ServiceExternalSecret, ServiceExternalSecretArgs
from components.settings import Settings
from components.test_job_runner_release import TestJobRunnerRelease, TestJobRunnerReleaseArgs
from components.vault_integration_secrets import (
    VaultIntegrationSecrets,
    VaultIntegrationSecretsArgs,
)
from components.vault_secret_store import VaultSecretStore, VaultSecretStoreArgs


@dataclass(frozen=True)
class IntegrationEnvironmentArgs:
    settings: Settings


class IntegrationEnvironment(pulumi.ComponentResource):
    outputs: dict[str, Any]

    def __init__(
        self, name: str, args: IntegrationEnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ameide:testinfra:IntegrationEnvironment", name, None, opts)
        s = args.settings
        cfg = s.stack

        k8s = kubernetes.Provider(
            "kubernetes",
            context=cfg.kube_context,
            kubeconfig=cfg.kubeconfig or None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The token comes from VAULT_TOKEN in the environment, never from config or state.
        vp = vault.Provider(
            "vault",
            address=cfg.vault_address,
            skip_child_token=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        within = pulumi.ResourceOptions(parent=self, providers=[k8s, vp])

        namespace = IntegrationNamespace("integration", IntegrationNamespaceArgs(s), within)
        secrets = VaultIntegrationSecrets("vault", VaultIntegrationSecretsArgs(s), within)
        store = VaultSecretStore(
            "store",
            VaultSecretStoreArgs(s),
            pulumi.ResourceOptions.merge(within, pulumi.ResourceOptions(depends_on=[namespace, secrets])),
        )
        # The seed's rule: integration resources apply only after ameide_core_proto is built and
        # pushed. Reading the proto stack's output makes that an edge of the graph.
        proto = pulumi.StackReference(
            "ameide-core-proto", stack_name=cfg.proto_stack, opts=pulumi.ResourceOptions(parent=self)
        )
        proto_version = proto.require_output(cfg.proto_stack_output)

        releases: dict[str, pulumi.Output[str]] = {}
        jobs: dict[str, str | None] = {}
        for svc in s.services:
            deps: list[pulumi.Resource] = [namespace, proto]
            if svc.secrets:
                deps.append(
                    ServiceExternalSecret(
                        svc.name,
                        ServiceExternalSecretArgs(s, svc),
                        pulumi.ResourceOptions.merge(
                            within, pulumi.ResourceOptions(depends_on=[namespace, store])
                        ),
                    )
                )
            release = TestJobRunnerRelease(
                svc.name,
                TestJobRunnerReleaseArgs(s, svc, prerequisite=proto_version, depends_on=deps),
                within,
            )
            releases[svc.name] = release.release_name
            jobs[svc.name] = release.job_name

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
