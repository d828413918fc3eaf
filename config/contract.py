"""The stack outputs contract other pipelines consume: versioned, documented, never secret -- one typed
model. The program fills it strictly (`stack_outputs`: every field typed and checked when the values
are known); `config/outputs.py` reads it leniently (unknown fields ignored, the major checked);
`schemas/stack-outputs.schema.json` is generated from it (`make schema`, checked for drift by
`make test`). Bump CONTRACT_VERSION's major on any breaking change and its minor when adding fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import pulumi
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from config.model import Settings
from config.naming import DNS_LABEL, JUNIT_PATH
from config.types import Runner, SecretSource, StoreKind

CONTRACT_VERSION = "1.1"  # 1.1: vault.keys (each key's owner and source)
CONTRACT_MAJOR = CONTRACT_VERSION.split(".", 1)[0]
SCHEMA_FILE = "schemas/stack-outputs.schema.json"
SCHEMA_ID = "https://ameide.io/schemas/testinfra/stack-outputs-1.json"

# The contract's value types: one spelling each, shared with the readers (config/outputs.py).
ContractDnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=63)]
ContractVaultPath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)+$")]
SchemaVersion = Annotated[str, StringConstraints(pattern=r"^1\.[0-9]+$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class _Contract(BaseModel):
    """Strict when the program fills it: no field it does not name, no value of another type."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, alias_generator=to_camel,
                              populate_by_name=True)


class ServiceContract(_Contract):
    release: ContractDnsLabel = Field(description="Helm release name (test-<service>).")
    job: ContractDnsLabel | None = Field(
        description="Job of the current run spec, or null when the stack does not run on install.")
    cron_job: ContractDnsLabel = Field(description="Suspended CronJob for on-demand runs: kubectl create job "
                                                   "--from=cronjob/<cronJob> <name>.")
    secret_name: ContractDnsLabel | None = Field(
        description="Secret the ExternalSecret fills (<service>-int-tests-secrets), or null.")
    vault_path: ContractVaultPath | None = Field(
        description="The service's own Vault key (<mount>/<prefix>/<service>), or null.")
    vault_keys: list[ContractVaultPath] = Field(description="Every Vault key the service reads, shared keys included.")
    entrypoint: Annotated[str, StringConstraints(pattern=r"^/")]
    junit_path: Annotated[str, StringConstraints(pattern=r"^/.+\.xml$")]
    timeout_seconds: int = Field(ge=10, le=3600)
    active_deadline_seconds: int = Field(ge=10)
    runner: Runner
    image: Annotated[str, StringConstraints(min_length=3)]


class SecretStoreContract(_Contract):
    kind: StoreKind
    name: ContractDnsLabel


class KeyContract(_Contract):
    owner: NonEmpty
    source: SecretSource


class VaultContract(_Contract):
    address: Annotated[str, StringConstraints(pattern=r"^https?://")]
    mount: NonEmpty
    prefix: NonEmpty
    policy: NonEmpty
    role: NonEmpty
    auth_mount: NonEmpty
    keys: dict[ContractVaultPath, KeyContract] = Field(
        default_factory=dict,
        description="Since 1.1: every Vault key the stack declares (full path) with who owns it and where its "
                    "value comes from.")


class PrerequisitesContract(_Contract):
    proto_stack: str
    proto_stack_output: str


class StackOutputsContract(_Contract):
    """Contract for pipelines that run or inspect integration tests. Never holds a secret. The major of
    schemaVersion changes on breaking changes; a minor may add fields, so objects admit properties this
    schema does not name (consumers ignore them). Disabled services are absent from services."""

    schema_version: SchemaVersion
    environment: ContractDnsLabel
    kube_context: NonEmpty
    namespace: ContractDnsLabel
    runner_service_account: ContractDnsLabel
    secret_store: SecretStoreContract
    vault: VaultContract
    prerequisites: PrerequisitesContract
    services: dict[ContractDnsLabel, ServiceContract] = Field(min_length=1)


def published_schema() -> dict[str, Any]:
    """The JSON Schema of the contract, as published: open objects (a later minor may add fields;
    the program itself adds none -- the model forbids it), the $id and title consumers cite."""
    def opened(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: opened(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)}
        if isinstance(node, list):
            return [opened(v) for v in node]
        return node

    schema = opened(StackOutputsContract.model_json_schema(by_alias=True, mode="serialization"))
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **schema, "title": "testinfra stack outputs (`pulumi stack output --json`)"}


def stack_outputs(
    settings: Settings,
    *,
    namespace: pulumi.Input[str],
    store_name: pulumi.Input[str],
    policy_name: pulumi.Input[str],
    role_name: pulumi.Input[str],
    releases: Mapping[str, pulumi.Input[str]],
    jobs: Mapping[str, str | None],
) -> dict[str, pulumi.Output[Any]]:
    """Each top-level field of the contract, filled once the resources' names are known."""
    cfg = settings.stack
    names = sorted(releases)

    def fill(resolved: list[Any]) -> dict[str, Any]:
        ns, store, policy, role, *release_names = resolved
        release_of = dict(zip(names, release_names, strict=True))
        contract = StackOutputsContract(
            schema_version=CONTRACT_VERSION,
            environment=settings.environment,
            kube_context=cfg.kube_context,
            namespace=ns,
            runner_service_account=settings.runner_service_account,
            secret_store=SecretStoreContract(kind=cfg.secret_store_kind, name=store),
            vault=VaultContract(
                address=cfg.vault_address, mount=cfg.vault_mount, prefix=settings.vault_prefix, policy=policy,
                role=role, auth_mount=cfg.vault_auth_mount,
                # Whom a run's reason code names when a key is missing (`make run`'s readiness gate).
                keys={k.full_path: KeyContract(owner=k.owner, source=k.source) for k in settings.vault_keys}),
            prerequisites=PrerequisitesContract(proto_stack=cfg.proto_stack, proto_stack_output=cfg.proto_stack_output),
            services={svc.name: ServiceContract(
                release=release_of[svc.name], job=jobs[svc.name], cron_job=svc.release_name,
                secret_name=svc.secret_name, vault_path=svc.vault_key.full_path if svc.vault_key else None,
                vault_keys=[k.full_path for k in svc.vault_keys], entrypoint=svc.entrypoint, junit_path=JUNIT_PATH,
                timeout_seconds=svc.timeout_seconds, active_deadline_seconds=svc.active_deadline_seconds,
                runner=svc.runner, image=svc.image) for svc in settings.services})
        return contract.model_dump(by_alias=True, mode="json")

    filled = pulumi.Output.all(namespace, store_name, policy_name, role_name, *(releases[n] for n in names)).apply(fill)

    def field(key: str) -> pulumi.Output[Any]:
        return filled.apply(lambda contract: contract[key])

    return {info.alias or name: field(info.alias or name) for name, info in StackOutputsContract.model_fields.items()}
