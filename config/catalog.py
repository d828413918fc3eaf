"""The schema of catalog.yaml: shared Vault keys, generated-value formats and the services."""

from __future__ import annotations

import difflib
import re
from typing import Annotated

from pydantic import Field, StrictInt, StringConstraints, model_validator

from config.credentials import credential_in
from config.naming import env_name_problem
from config.types import (
    EnvValue,
    EnvVarName,
    GeneratedFormat,
    ImageDigest,
    ImageRepository,
    PodResources,
    Runner,
    SecretKeyName,
    ServiceName,
    StrictModel,
    VaultSegment,
)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SecretRef(StrictModel):
    secret_key: SecretKeyName
    env: EnvVarName | None = None
    key: VaultSegment | None = None
    # `property` in YAML; a field of that name would shadow the decorator below.
    vault_property: VaultSegment = Field(alias="property")

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


class SharedKey(StrictModel):
    owner: str = Field(min_length=1)
    description: str = Field(min_length=1)
    properties: list[VaultSegment] = Field(min_length=1)


class CatalogService(StrictModel):
    description: str = Field(min_length=1)
    runner: Runner
    image: ImageRepository
    # Pins the suite image (pulled once per node, IfNotPresent); without it the stack's imageTag
    # is used and pulled every time (Always), since a tag can move.
    image_digest: ImageDigest | None = None
    timeout_seconds: int = Field(ge=10, le=3600)
    # The organisation's cap on this suite's timeout: no stack may override timeoutSeconds above it.
    max_timeout_seconds: int = Field(default=3600, ge=10, le=3600)
    env: dict[EnvVarName, EnvValue] = Field(default_factory=dict)
    secrets: list[SecretRef] = Field(default_factory=list)
    required_env: list[EnvVarName] = Field(default_factory=list)
    # The suite pod's requests and limits; default: the chart's (values.yaml).
    resources: PodResources | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CatalogService:
        if self.timeout_seconds > self.max_timeout_seconds:
            raise ValueError(f"timeoutSeconds {self.timeout_seconds} is above maxTimeoutSeconds "
                             f"{self.max_timeout_seconds}: lower it, or raise the cap if the owners agree")
        for name in sorted(set(self.env) | {s.env_name for s in self.secrets}):
            if problem := env_name_problem(name):
                raise ValueError(f"{name} is {problem}")
        secret_keys = [s.secret_key for s in self.secrets]
        dupes = sorted({k for k in secret_keys if secret_keys.count(k) > 1})
        if dupes:
            raise ValueError(f"secretKey listed twice: {', '.join(dupes)}")
        secret_envs = [s.env_name for s in self.secrets]
        both = sorted(set(secret_envs) & set(self.env) | {e for e in secret_envs if secret_envs.count(e) > 1})
        if both:
            raise ValueError(f"env var defined twice (env and/or secrets): {', '.join(both)}")
        credentials = [f"env.{name} looks like a credential ({why})" for name, value in sorted(self.env.items())
                       if (why := credential_in(name, value))]
        if credentials:
            raise ValueError("; ".join(credentials) + ": an inline value lands in the Helm values and release "
                             "history in plaintext; keep it in Vault and list it under `secrets`")
        provided = set(self.env) | set(secret_envs)
        missing = [e for e in self.required_env if e not in provided]
        if missing:
            raise ValueError(
                f"requiredEnv {', '.join(missing)} not provided: add it under `env` "
                "(non-secret) or `secrets` (from Vault)"
            )
        return self


class Catalog(StrictModel):
    schema_version: Annotated[StrictInt, Field(ge=1, le=1)]  # 1; `true` is not 1
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
                    hint = difflib.get_close_matches(ref.key, sorted(self.shared_keys), n=1)
                    raise ValueError(
                        f"services.{name}.secrets: key {ref.key!r} is neither the service's own "
                        f"key nor one of sharedKeys ({', '.join(sorted(self.shared_keys)) or 'none'})"
                        + (f"; did you mean {hint[0]}?" if hint else "")
                    )
                if ref.vault_property not in shared.properties:
                    raise ValueError(
                        f"services.{name}.secrets: property {ref.vault_property!r} is not declared in "
                        f"sharedKeys.{ref.key}.properties"
                    )
        return self
