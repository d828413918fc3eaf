"""The stack outputs contract other pipelines consume: versioned, documented, never secret.

`schemas/stack-outputs.schema.json` is its JSON Schema; bump CONTRACT_VERSION's major on any
breaking change and its minor when adding fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from config.model import Settings
from config.naming import JUNIT_PATH

CONTRACT_VERSION = "1.1"  # 1.1: vault.keys (each key's owner and source)
SCHEMA_FILE = "schemas/stack-outputs.schema.json"


def stack_outputs(
    settings: Settings,
    *,
    namespace: pulumi.Input[str],
    store_name: pulumi.Input[str],
    policy_name: pulumi.Input[str],
    role_name: pulumi.Input[str],
    releases: Mapping[str, pulumi.Input[str]],
    jobs: Mapping[str, str | None],
) -> dict[str, Any]:
    cfg = settings.stack
    services: dict[str, Any] = {}
    for svc in settings.services:
        own = svc.vault_key
        services[svc.name] = {
            "release": releases[svc.name],
            "job": jobs[svc.name],
            "cronJob": svc.release_name,
            "secretName": svc.secret_name,
            "vaultPath": own.full_path if own else None,
            "vaultKeys": [k.full_path for k in svc.vault_keys],
            "entrypoint": svc.entrypoint,
            "junitPath": JUNIT_PATH,
            "timeoutSeconds": svc.timeout_seconds,
            "activeDeadlineSeconds": svc.active_deadline_seconds,
            "runner": svc.runner,
            "image": svc.image,
        }
    return {
        "schemaVersion": CONTRACT_VERSION,
        "environment": settings.environment,
        "kubeContext": cfg.kube_context,
        "namespace": namespace,
        "runnerServiceAccount": settings.runner_service_account,
        "secretStore": {"kind": cfg.secret_store_kind, "name": store_name},
        "vault": {
            "address": cfg.vault_address,
            "mount": cfg.vault_mount,
            "prefix": settings.vault_prefix,
            "policy": policy_name,
            "role": role_name,
            "authMount": cfg.vault_auth_mount,
            # Whom a run's reason code names when a key is missing (`make run`'s readiness gate).
            "keys": {k.full_path: {"owner": k.owner, "source": k.source} for k in settings.vault_keys},
        },
        "prerequisites": {"protoStack": cfg.proto_stack, "protoStackOutput": cfg.proto_stack_output},
        "services": services,
    }
