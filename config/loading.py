"""Loading a stack's settings: catalog + stack config -> the resolved model, every problem of
both files reported at once, each with file, field path and fix."""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import typing
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError

from config import naming
from config.catalog import Catalog
from config.credentials import credential_in
from config.errors import ConfigError
from config.files import PROJECT_DIR, bounded, load_yaml, stack_config
from config.model import Settings
from config.naming import CATALOG_FILE, PROJECT, PROVIDER_NAMESPACES, config_key, env_name_problem
from config.quota import quota_problems
from config.stack import StackConfig
from config.types import PATTERN_MEANINGS

# Fields whose value is never echoed in a message: an address may carry a password or token.
NEVER_ECHOED = frozenset({"secretValues", "vaultAddress", "vaultClusterAddress", "vaultKubernetesHost", "env",
                          "kubeconfig"})
_TYPE_WORDS = {
    "missing": "missing: add it (see README, Configure)",
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "string_type": "must be text", "dict_type": "must be a mapping (key: value)", "list_type": "must be a list",
    "model_type": "must be a mapping (key: value)",
}


def _location(loc: tuple[int | str, ...]) -> str:
    """A field path as `pulumi config set --path` takes it: `egress[0].ports[1]`, list positions from 0."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(err: Any) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return "must be " + PATTERN_MEANINGS.get(str(ctx.get("pattern")), "in the documented form (see README)")
    if kind == "string_too_long":
        return f"at most {ctx.get('max_length')} characters"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind == "extra_forbidden":
        return "unknown field: remove it or check its spelling (see README, Configure)"
    if kind in _TYPE_WORDS:
        return _TYPE_WORDS[kind]
    return str(err["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")


@functools.cache
def field_names(model: type[BaseModel]) -> frozenset[str]:
    """Every field name (as written in YAML) of `model` and the models inside it: what a misspelt
    field is compared with for a "did you mean"."""
    names: set[str] = set()
    pending: list[Any] = [model]
    seen: set[Any] = set()
    while pending:
        tp = pending.pop()
        if tp in seen:
            continue
        seen.add(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            for name, info in tp.model_fields.items():
                names.add(info.alias or name)
                pending.append(info.annotation)
        else:
            pending.extend(typing.get_args(tp))
    return frozenset(names)


def _format(file: str, exc: ValidationError, prefix: str = "", model: type[BaseModel] | None = None) -> str:
    lines = [f"{file}: {len(exc.errors())} invalid field(s):"]
    for err in exc.errors():
        loc = _location(tuple(err["loc"]))
        where = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "(top level)"
        msg = _message(err)
        # Echo only a short scalar, and never a field that may hold a credential, nor a model-level
        # error's input (the whole file, which may hold secretValues too).
        hidden = bool(set(map(str, err["loc"])) & NEVER_ECHOED)
        value = err.get("input")
        if (not hidden and err["type"] not in ("missing", "extra_forbidden") and loc
                and isinstance(value, str | int | float | bool)):
            msg += f" (got {bounded(repr(value), 60)})"
        if err["type"] == "extra_forbidden" and err["loc"] and model is not None:
            hint = difflib.get_close_matches(str(err["loc"][-1]), sorted(field_names(model)), n=1)
            if hint:
                msg = f"unknown field: did you mean {hint[0]}?"
        lines.append(f"  - {where}: {msg}")
    return "\n".join(lines)


def load_catalog(path: Path) -> Catalog:
    data = load_yaml(path)
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format(path.name, exc, model=Catalog)) from None


def parse_stack_config(
    raw: Mapping[str, Any], *, stack: str, secret_keys: Collection[str] = ()
) -> StackConfig:
    """`raw` is the flat Pulumi config map (`testinfra:key` -> string or JSON string)."""
    file = naming.stack_file(stack)
    misplaced = sorted(k for k in secret_keys if k.startswith(f"{PROJECT}:") and k != f"{PROJECT}:secretValues")
    if misplaced:
        raise ConfigError(
            f"{file}: config.{misplaced[0]} holds a `secure:` value, but only secretValues stay secret (anything "
            "else is written into Helm values and manifests in plaintext): keep the credential in Vault "
            "(secretSources/secretValues) and list it under the service's `secrets`"
        )
    data: dict[str, Any] = {}
    for full_key, value in raw.items():
        namespace, _, key = full_key.partition(":")
        if namespace in PROVIDER_NAMESPACES:
            continue  # provider config (kubernetes:, vault:) is not ours to validate
        if namespace != PROJECT:
            hint = difflib.get_close_matches(namespace, [PROJECT, *PROVIDER_NAMESPACES], n=1)
            raise ConfigError(f"{file}: config.{full_key}: unknown namespace `{namespace}:` -- it would be ignored; "
                              + (f"did you mean `{hint[0]}:{key}`?" if hint else f"use `{PROJECT}:{key}`"))
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{file}: config.{full_key}: not valid JSON: {exc}") from None
        data[key] = value
    try:
        cfg = StackConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format(file, exc, prefix=config_key(""), model=StackConfig)) from None
    if cfg.secret_values and f"{PROJECT}:secretValues" not in secret_keys:
        raise ConfigError(
            f"{file}: {config_key('secretValues')} is stored in plaintext: set each value with "
            f"`pulumi config set --secret --path 'secretValues.<key>.<property>' <value>`"
        )
    return cfg


def resolve(catalog: Catalog, cfg: StackConfig, *, environment: str) -> Settings:
    """The settings of one stack, or one ConfigError listing every problem the two files have together."""
    if not naming.is_stack_name(environment):
        raise ConfigError(
            f"stack name {environment!r}: must be a short DNS label (local, staging, prod)"
        )
    settings = Settings(project=PROJECT, environment=environment, catalog=catalog, stack=cfg)
    problems = [
        *_override_problems(catalog, cfg),
        *_transport_problems(cfg, environment),
        *_key_problems(settings),
        *quota_problems(cfg, settings.services),
        *_deadline_problems(settings),
        *_review_problems(cfg, environment),
    ]
    if not settings.services:
        problems.append(f"{config_key('serviceOverrides')}: every service is disabled")
    if problems:
        raise ConfigError(f"{settings.stack_file}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
    return settings


def _review_problems(cfg: StackConfig, environment: str) -> list[str]:
    """A review stack's code is the pull request's: it holds nothing cluster-wide and writes no Vault
    policy, role, mount or auth method (docs/review-environments.md)."""
    if environment != naming.REVIEW_TEMPLATE and not naming.is_review_stack(environment):
        return []
    musts = (("secretStoreKind", cfg.secret_store_kind == "SecretStore", "SecretStore (a ClusterSecretStore is "
              "cluster-wide and could point at any Vault role bound to ESO)"),
             ("manageNamespace", not cfg.manage_namespace, "false (the provisioner creates the namespace)"),
             ("vaultManageAuthBackend", not cfg.vault_manage_auth_backend, "false (the auth methods are the "
              "platform's)"),
             ("vaultCreateMount", not cfg.vault_create_mount, "false (the KV mount is the platform's)"),
             ("reviewAccess", cfg.review_access is not None, "set: the repository whose pull requests get review "
              "environments"))
    return [f"{config_key(key)}: a review stack needs {what}" for key, ok, what in musts if not ok]


def _override_problems(catalog: Catalog, cfg: StackConfig) -> list[str]:
    """serviceOverrides: known services, timeouts within the catalog's caps, env names and values."""
    problems = []
    for name in sorted(set(cfg.service_overrides) - set(catalog.services)):
        hint = difflib.get_close_matches(name, list(catalog.services), n=1)
        problems.append(
            f"{config_key(f'serviceOverrides.{name}')}: no such service in {CATALOG_FILE}"
            + (f"; did you mean {hint[0]}?" if hint else "")
        )
    for name, override in sorted(cfg.service_overrides.items()):
        svc = catalog.services.get(name)
        if svc is None:
            continue
        if override.timeout_seconds is not None and override.timeout_seconds > svc.max_timeout_seconds:
            problems.append(f"{config_key(f'serviceOverrides.{name}.timeoutSeconds')}: {override.timeout_seconds} is "
                            f"above the suite's cap of {svc.max_timeout_seconds} s (services.{name}.maxTimeoutSeconds "
                            f"in {CATALOG_FILE}): use at most {svc.max_timeout_seconds}")
        secret_envs = {ref.env_name for ref in svc.secrets}
        for env_name in sorted(override.env):
            field = config_key(f"serviceOverrides.{name}.env.{env_name}")
            if refused := env_name_problem(env_name):
                problems.append(f"{field}: {refused}")
            elif env_name in secret_envs:
                problems.append(f"{field}: already read from Vault (the service's secrets): an inline value would "
                                "shadow it; drop it")
            elif why := credential_in(env_name, override.env[env_name]):
                problems.append(f"{field}: looks like a credential ({why}): an inline value lands in the Helm values "
                                "and release history in plaintext; keep it in Vault and list it under the service's "
                                f"`secrets` in {CATALOG_FILE}")
    return problems


def _transport_problems(cfg: StackConfig, environment: str) -> list[str]:
    if naming.is_local_stack(environment):
        return []
    return [f"{config_key(field)}: plain http outside `local` sends the Vault token unencrypted: use https://"
            for field, address in (("vaultAddress", cfg.vault_address), ("vaultClusterAddress", cfg.vault_cluster_address))
            if address.startswith("http://")]


def _key_problems(settings: Settings) -> list[str]:
    """secretSources and secretValues against the keys the enabled services read."""
    cfg, environment = settings.stack, settings.environment
    problems = []
    declared = {k.name: k for k in settings.vault_keys}
    for name in sorted(set(cfg.secret_sources) - set(declared)):
        hint = difflib.get_close_matches(name, sorted(declared), n=1)
        problems.append(
            f"{config_key(f'secretSources.{name}')}: no enabled service reads Vault key {name!r}"
            + (f"; did you mean {hint[0]}?" if hint else f" (keys: {', '.join(sorted(declared))})")
        )
    for key in settings.vault_keys:
        given = cfg.secret_values.get(key.name, {})
        if key.source == "config":
            problems += [
                f"{config_key(f'secretValues.{key.name}.{prop}')}: missing (source is `config`): run `pulumi config set "
                f"--secret --path 'secretValues.{key.name}.{prop}' <value> -s {environment}`"
                for prop in key.properties if prop not in given
            ]
        if given and key.source != "config":
            problems.append(
                f"{config_key(f'secretValues.{key.name}')}: set, but the key's source is "
                f"`{key.source}`: remove the values or set secretSources.{key.name}: config"
            )
        problems += [f"{config_key(f'secretValues.{key.name}.{prop}')}: not a property of this key "
                     f"({', '.join(key.properties)})" for prop in sorted(set(given) - set(key.properties))]
    for name in sorted(set(cfg.secret_values) - set(declared)):
        hint = difflib.get_close_matches(name, sorted(declared), n=1)
        problems.append(f"{config_key(f'secretValues.{name}')}: no enabled service reads this key"
                        + (f"; did you mean {hint[0]}?" if hint else ""))
    return problems


def _deadline_problems(settings: Settings) -> list[str]:
    cfg = settings.stack
    if not (cfg.wait_for_jobs and cfg.run_on_install) or cfg.release_timeout_seconds is None:
        return []
    return [
        f"{config_key('releaseTimeoutSeconds')}: {cfg.release_timeout_seconds} s is shorter than {service.name}'s Job "
        f"deadline ({service.active_deadline_seconds} s) while waitForJobs is on: raise it, remove it (the "
        "default follows the longest suite), or lower the suite's timeoutSeconds"
        for service in settings.services if service.active_deadline_seconds > cfg.release_timeout_seconds
    ]


def load_settings(
    *,
    project_dir: Path,
    environment: str,
    config: Mapping[str, Any],
    secret_keys: Collection[str] = (),
) -> Settings:
    """The validated settings of one stack. The same project, catalog text and config give the same
    (immutable) Settings object: the offline render, its harness and the program it runs validate
    once, not once each."""
    catalog_path = project_dir / CATALOG_FILE
    try:
        catalog_text = catalog_path.read_bytes()
    except OSError:
        catalog_text = b""  # load_catalog reports the missing file with its own message
    return _load_settings(
        project_dir.resolve(), environment, json.dumps(dict(config), sort_keys=True, default=str),
        tuple(sorted(secret_keys)), hashlib.sha256(catalog_text).hexdigest(),
    )


@functools.lru_cache(maxsize=8)
def _load_settings(
    project_dir: Path, environment: str, config_json: str, secret_keys: tuple[str, ...], catalog_digest: str
) -> Settings:
    config: dict[str, Any] = json.loads(config_json)
    # Both files are checked before either error is reported: one round of fixes, not two.
    errors: list[str] = []
    catalog = cfg = None
    try:
        catalog = load_catalog(project_dir / CATALOG_FILE)
    except ConfigError as exc:
        errors.append(str(exc))
    try:
        cfg = parse_stack_config(config, stack=environment, secret_keys=secret_keys)
    except ConfigError as exc:
        errors.append(str(exc))
    if catalog is None or cfg is None:
        raise ConfigError("\n".join(errors))
    return resolve(catalog, cfg, environment=environment)


def load_settings_from_pulumi(project_dir: Path) -> Settings:
    """Read the running program's config (as the engine or the offline harness set it)."""
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = [k for k in raw if runtime_config.is_config_secret(k)]
    secret_keys += runtime_config.get_config_secret_keys_env()
    return load_settings(
        project_dir=project_dir,
        environment=pulumi.get_stack(),
        config=raw,
        secret_keys=secret_keys,
    )


def stack_settings(stack: str, *, project_dir: Path = PROJECT_DIR) -> Settings:
    """The validated settings of a checked-in stack, as the program will load them."""
    config, secret_keys = stack_config(stack, project_dir=project_dir)
    return load_settings(project_dir=project_dir, environment=stack, config=config, secret_keys=secret_keys)
