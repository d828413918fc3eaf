"""`ServiceExternalSecret`: one service's `<service>-int-tests-secrets`, filled from Vault by ESO.

Owns: the ExternalSecret mapping each Vault key property to the Secret key the runner reads.
Paths and names come from `Settings`, the same place the Vault policy takes them from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_kubernetes.apiextensions import CustomResource

from components.settings import ServiceSettings, Settings
from components.vault_secret_store import ESO_API_VERSION


def external_secret_manifest(settings: Settings, service: ServiceSettings) -> dict[str, Any]:
    assert service.secret_name is not None, f"{service.name} has no secrets"
    annotations = {}
    if settings.stack.wait_for_secrets:
        # pulumi-kubernetes waits for this condition before dependants (the release) proceed.
        annotations["pulumi.com/waitFor"] = "condition=Ready"
    else:
        annotations["pulumi.com/skipAwait"] = "true"
    return {
        "apiVersion": ESO_API_VERSION,
        "kind": "ExternalSecret",
        "metadata": {
            "name": service.secret_name,
            "namespace": settings.namespace,
            "labels": {**settings.labels("secrets"), "ameide.io/service": service.name},
            "annotations": annotations,
        },
        "spec": {
            "refreshInterval": settings.stack.secret_refresh_interval,
            "secretStoreRef": {
                "kind": settings.stack.secret_store_kind,
                "name": settings.secret_store_name,
            },
            "target": {
                "name": service.secret_name,
                "creationPolicy": "Owner",
                "deletionPolicy": "Retain",
            },
            "data": [
                {
                    "secretKey": m.secret_key,
                    "remoteRef": {
                        "key": m.vault_key.path,
                        "property": m.property,
                        "conversionStrategy": "Default",
                        "decodingStrategy": "None",
                        "metadataPolicy": "None",
                    },
                }
                for m in service.secrets
            ],
        },
    }


@dataclass(frozen=True)
class ServiceExternalSecretArgs:
    settings: Settings
    service: ServiceSettings


class ServiceExternalSecret(pulumi.ComponentResource):
    secret_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ServiceExternalSecretArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ameide:testinfra:ServiceExternalSecret", name, None, opts)
        manifest = external_secret_manifest(args.settings, args.service)
        secret = CustomResource(
            name,
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Known before apply; tied to the resource so dependants also wait for it.
        self.secret_name = secret.urn.apply(lambda _: manifest["metadata"]["name"])
        self.register_outputs({"secretName": self.secret_name})
