"""`VaultSecretStore`: the External Secrets Operator store that reads this stack's Vault keys.

Owns: a `ClusterSecretStore` or namespaced `SecretStore` (stack config) with the Vault provider
and Kubernetes auth, and, for a namespaced store, the service account it presents to Vault
(a namespaced store may only use service accounts in its own namespace).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.core.v1 import ServiceAccount

from components.settings import Settings

ESO_API_VERSION = "external-secrets.io/v1"


def secret_store_manifest(settings: Settings) -> dict[str, Any]:
    cfg = settings.stack
    sa_name, sa_namespace = settings.vault_auth_service_account
    sa_ref: dict[str, Any] = {"name": sa_name, "audiences": [cfg.vault_audience]}
    metadata: dict[str, Any] = {
        "name": settings.secret_store_name,
        "labels": settings.labels("secret-store"),
    }
    if cfg.secret_store_kind == "ClusterSecretStore":
        sa_ref["namespace"] = sa_namespace
    else:
        metadata["namespace"] = settings.namespace
    vault: dict[str, Any] = {
        "server": settings.vault_cluster_address,
        "path": cfg.vault_mount,
        "version": "v2",
        "auth": {
            "kubernetes": {
                # Required by the CRD even though the API server defaults it: set explicitly.
                "mountPath": cfg.vault_auth_mount,
                "role": settings.vault_role_name,
                "serviceAccountRef": sa_ref,
            }
        },
    }
    if cfg.vault_ca_bundle:
        vault["caBundle"] = cfg.vault_ca_bundle
    spec: dict[str, Any] = {"provider": {"vault": vault}}
    if cfg.secret_store_kind == "ClusterSecretStore":
        # Only the integration namespace may use this store.
        spec["conditions"] = [{"namespaces": [settings.namespace]}]
    return {
        "apiVersion": ESO_API_VERSION,
        "kind": cfg.secret_store_kind,
        "metadata": metadata,
        "spec": spec,
    }


@dataclass(frozen=True)
class VaultSecretStoreArgs:
    settings: Settings


class VaultSecretStore(pulumi.ComponentResource):
    kind: str
    store_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: VaultSecretStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ameide:testinfra:VaultSecretStore", name, None, opts)
        s = args.settings
        deps: list[pulumi.Resource] = []
        if s.stack.secret_store_kind == "SecretStore":
            sa_name, sa_namespace = s.vault_auth_service_account
            deps.append(
                ServiceAccount(
                    "vault-auth",
                    metadata={
                        "name": sa_name,
                        "namespace": sa_namespace,
                        "labels": s.labels("secret-store"),
                    },
                    # ESO requests short-lived tokens for it; nothing mounts one.
                    automount_service_account_token=False,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        manifest = secret_store_manifest(s)
        store = CustomResource(
            "store",
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps, protect=s.stack.protect),
        )
        self.kind = manifest["kind"]
        self.store_name = store.urn.apply(lambda _: manifest["metadata"]["name"])
        self.register_outputs({"kind": self.kind, "name": self.store_name})
