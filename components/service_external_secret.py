"""One service's ExternalSecret `<service>-int-tests-secrets`, filled from Vault by ESO.

Owns: the ExternalSecret mapping each Vault key property to the Secret key the runner reads.
Names and paths arrive in its args, from the same model the Vault policy is built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_kubernetes.apiextensions import CustomResource

from config.naming import ESO_API_VERSION


@dataclass(frozen=True)
class SecretItem:
    secret_key: str
    vault_path: str  # mount-relative: the store names the mount
    vault_property: str


@dataclass(frozen=True)
class ServiceExternalSecretArgs:
    name: str
    namespace: str
    labels: dict[str, str]
    store_kind: str
    store_name: str
    refresh_interval: str
    wait_for_ready: bool
    items: tuple[SecretItem, ...]


def external_secret_manifest(args: ServiceExternalSecretArgs) -> dict[str, Any]:
    # pulumi-kubernetes waits for this condition before dependants (the release) proceed.
    annotations = ({"pulumi.com/waitFor": "condition=Ready"} if args.wait_for_ready
                   else {"pulumi.com/skipAwait": "true"})
    return {
        "apiVersion": ESO_API_VERSION,
        "kind": "ExternalSecret",
        "metadata": {"name": args.name, "namespace": args.namespace, "labels": args.labels,
                     "annotations": annotations},
        "spec": {
            "refreshInterval": args.refresh_interval,
            "secretStoreRef": {"kind": args.store_kind, "name": args.store_name},
            "target": {"name": args.name, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
            "data": [
                {
                    "secretKey": item.secret_key,
                    "remoteRef": {
                        "key": item.vault_path,
                        "property": item.vault_property,
                        "conversionStrategy": "Default",
                        "decodingStrategy": "None",
                        "metadataPolicy": "None",
                    },
                }
                for item in args.items
            ],
        },
    }


def service_external_secret(name: str, args: ServiceExternalSecretArgs, opts: pulumi.ResourceOptions) -> CustomResource:
    """The ExternalSecret, registered straight under the environment: a component of its own per service
    would add three state writes per service and carry nothing a user reads (issue 34)."""
    manifest = external_secret_manifest(args)
    return CustomResource(
        name,
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        metadata=manifest["metadata"],
        spec=manifest["spec"],
        opts=opts,
    )
