"""`VaultSecretStore`: the External Secrets Operator store that reads this stack's Vault keys.

Owns: a `ClusterSecretStore` or namespaced `SecretStore` with the Vault provider and Kubernetes
auth, and, for a namespaced store, the service account it presents to Vault (a namespaced store
may only use service accounts in its own namespace).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.core.v1 import ServiceAccount
from pulumi_kubernetes.meta.v1 import ObjectMetaArgs

from config.naming import COMPONENT_TYPE_PREFIX, ESO_API_VERSION


@dataclass(frozen=True)
class VaultSecretStoreArgs:
    kind: str  # ClusterSecretStore | SecretStore
    name: str
    namespace: str  # the integration namespace: a SecretStore's home, a ClusterSecretStore's only user
    labels: dict[str, str]
    vault_server: str
    vault_mount: str
    auth_mount: str
    role_name: str
    service_account: str
    service_account_namespace: str
    audience: str
    ca_bundle: str
    protect: bool

    @property
    def cluster_wide(self) -> bool:
        return self.kind == "ClusterSecretStore"


def secret_store_manifest(args: VaultSecretStoreArgs) -> dict[str, Any]:
    sa_ref: dict[str, Any] = {"name": args.service_account, "audiences": [args.audience]}
    metadata: dict[str, Any] = {"name": args.name, "labels": args.labels}
    if args.cluster_wide:
        sa_ref["namespace"] = args.service_account_namespace
    else:
        metadata["namespace"] = args.namespace
    vault: dict[str, Any] = {
        "server": args.vault_server,
        "path": args.vault_mount,
        "version": "v2",
        "auth": {
            "kubernetes": {
                # Required by the CRD even though the API server defaults it: set explicitly.
                "mountPath": args.auth_mount,
                "role": args.role_name,
                "serviceAccountRef": sa_ref,
            }
        },
    }
    if args.ca_bundle:
        vault["caBundle"] = args.ca_bundle
    spec: dict[str, Any] = {"provider": {"vault": vault}}
    if args.cluster_wide:
        # Only the integration namespace may use this store.
        spec["conditions"] = [{"namespaces": [args.namespace]}]
    return {"apiVersion": ESO_API_VERSION, "kind": args.kind, "metadata": metadata, "spec": spec}


class VaultSecretStore(pulumi.ComponentResource):
    kind: str
    store_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: VaultSecretStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{COMPONENT_TYPE_PREFIX}VaultSecretStore", name, None, opts)
        deps: list[pulumi.Resource] = []
        if not args.cluster_wide:
            deps.append(
                ServiceAccount(
                    "vault-auth",
                    metadata=ObjectMetaArgs(name=args.service_account, namespace=args.service_account_namespace,
                                            labels=args.labels),
                    # ESO requests short-lived tokens for it; nothing mounts one.
                    automount_service_account_token=False,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        manifest = secret_store_manifest(args)
        store = CustomResource(
            "store",
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps, protect=args.protect),
        )
        self.kind = args.kind
        self.store_name = store.urn.apply(lambda _: args.name)
        self.register_outputs({"kind": self.kind, "name": self.store_name})
