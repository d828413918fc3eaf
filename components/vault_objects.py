"""Vault resources, the Vault provider, the KV reads and the random passwords, registered by type
token through the SDK's untyped `pulumi.CustomResource` / `pulumi.ProviderResource` /
`pulumi.runtime.invoke_output` rather than pulumi_vault's and pulumi_random's generated classes.

Why: `import pulumi_vault` loads every module of the package (~0.15 s) before the program can
register anything, on the path every `pulumi preview` and `up` waits on (docs/benchmarks.md); the
same reason as components/kube_objects.py. The engine and the providers see what the generated
classes send: type token, name, camelCase properties (the provider's non-string settings JSON-encoded,
its defaults from the environment), the package version, secret inputs and additional secret
outputs. tests/program/test_vault_objects.py registers each kind both ways under mocks and compares the
requests whole. Properties and results are camelCase: `role.output("roleName")`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.provider_sdks import plugin_version, with_plugin_version


@dataclass(frozen=True)
class BridgedKind:
    """One resource type of a bridged provider as its generated Python class registers it."""

    package: str
    token: str
    # Output-only properties the generated class exposes.
    outputs: tuple[str, ...] = ()
    # Inputs the generated class wraps in `pulumi.Output.secret`.
    secret_inputs: tuple[str, ...] = ()
    # The generated class's `additional_secret_outputs`.
    secret_outputs: tuple[str, ...] = ()


MOUNT = BridgedKind("vault", "vault:index/mount:Mount", outputs=("accessor",))
AUTH_BACKEND = BridgedKind("vault", "vault:index/authBackend:AuthBackend", outputs=("accessor",))
POLICY = BridgedKind("vault", "vault:index/policy:Policy")
AUTH_BACKEND_ROLE = BridgedKind("vault", "vault:kubernetes/authBackendRole:AuthBackendRole")
AUTH_BACKEND_CONFIG = BridgedKind(
    "vault", "vault:kubernetes/authBackendConfig:AuthBackendConfig",
    secret_inputs=("tokenReviewerJwt", "tokenReviewerJwtWo"),
    secret_outputs=("tokenReviewerJwt", "tokenReviewerJwtWo"),
)
SECRET_V2 = BridgedKind(
    "vault", "vault:kv/secretV2:SecretV2", outputs=("data", "metadata", "path"),
    secret_inputs=("dataJson", "dataJsonWo"), secret_outputs=("data", "dataJson", "dataJsonWo"),
)
RANDOM_PASSWORD = BridgedKind(
    "random", "random:index/randomPassword:RandomPassword", outputs=("bcryptHash", "result"),
    secret_outputs=("bcryptHash", "result"),
)
KV_SUBKEYS_V2 = "vault:kv/getSecretSubkeysV2:getSecretSubkeysV2"
KV_LIST_V2 = "vault:kv/getSecretsListV2:getSecretsListV2"


class BridgedResource(pulumi.CustomResource):
    """A resource of `kind` with the given inputs (camelCase, as the provider's schema names them)."""

    def __init__(
        self, kind: BridgedKind, name: str, inputs: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {key: pulumi.Output.secret(value) if key in kind.secret_inputs and value is not None else value
                 for key, value in inputs.items()}
        # As every generated class: the package's version, the caller's options, then its secrets.
        merged = with_plugin_version(kind.package, opts)
        if kind.secret_outputs:
            merged = pulumi.ResourceOptions.merge(
                merged, pulumi.ResourceOptions(additional_secret_outputs=list(kind.secret_outputs))
            )
        super().__init__(kind.token, name, {**props, **dict.fromkeys(kind.outputs)}, merged)

    def output(self, prop: str) -> pulumi.Output[Any]:
        """An input or output property by its camelCase name, as the provider answered it."""
        value: pulumi.Output[Any] = getattr(self, prop)
        return value


def _env_int(name: str) -> int | None:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return None


def _env_bool(name: str) -> bool | None:
    # The spellings Go's strconv.ParseBool accepts, as pulumi_vault's `_utilities.get_env_bool`.
    value = os.environ.get(name)
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    return None


class VaultProvider(pulumi.ProviderResource):
    """The explicit Vault provider. Settings left unset take the generated class's defaults from the
    environment (TERRAFORM_VAULT_MAX_TTL, VAULT_MAX_RETRIES, VAULT_SKIP_VERIFY); non-string settings
    travel JSON-encoded, as a bridged provider's config does."""

    def __init__(self, name: str, address: str, skip_child_token: bool, opts: pulumi.ResourceOptions | None = None) -> None:
        settings: dict[str, Any] = {
            "address": address,
            "maxLeaseTtlSeconds": _env_int("TERRAFORM_VAULT_MAX_TTL") or 1200,
            "maxRetries": _env_int("VAULT_MAX_RETRIES") or 2,
            "skipChildToken": skip_child_token,
            "skipTlsVerify": _env_bool("VAULT_SKIP_VERIFY"),
        }
        props = {key: value if value is None or isinstance(value, str) else pulumi.runtime.to_json(value)
                 for key, value in settings.items()}
        super().__init__("vault", name, props, with_plugin_version("vault", opts))


def invoke(token: str, args: Mapping[str, Any], opts: pulumi.InvokeOutputOptions) -> pulumi.Output[dict[str, Any]]:
    """A provider function of the Vault package; its result keyed by camelCase names (`dataJson`, `names`)."""
    merged = pulumi.InvokeOutputOptions.merge(pulumi.InvokeOptions(version=plugin_version("vault")), opts)
    return pulumi.runtime.invoke_output(token, dict(args), opts=merged)
