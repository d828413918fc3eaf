"""Loading a stack's settings: catalog + stack config -> the resolved model, every problem of
both files reported at once, each with file, field path and fix."""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import typing
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError

from config import naming
from config.catalog import Catalog
from config.credentials import credential_in
from config.errors import ConfigError
from config.files import PROJECT_DIR, bounded, load_yaml, stack_config
from config.model import ServiceSettings, Settings
from config.naming import CATALOG_FILE, PROJECT, PROVIDER_NAMESPACES, config_key, env_name_problem
from config.stack import StackConfig
from config.types import PATTERN_MEANINGS, quantity_value

# Fields whose value is never echoed in a message: an address may carry a password or token.
NEVER_ECHOED = frozenset({"secretValues", "vaultAddress", "vaultClusterAddress", "vaultKubernetesHost", "env",
                          "kubeconfig"})
_TYPE_WORDS = {
    "missing": "missing: add it (see README, Configuration)",
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "string_type": "must be text", "dict_type": "must be a mapping (key: value)", "list_type": "must be a list",
    "model_type": "must be a mapping (key: value)",
}


def _location(loc: tuple[int | str, ...]) -> str:
    """A field path as a user reads it: `egress[1].ports[2]`, list positions counted from 1."""
    out = ""
    for part in loc:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else str(part))
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
        return "unknown field: remove it or check its spelling (see README, Configuration)"
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
    file = naming.stack_file(environment)
    if not naming.is_stack_name(environment):
        raise ConfigError(
            f"stack name {environment!r}: must be a short DNS label (local, staging, prod)"
        )
    problems: list[str] = []
    unknown = sorted(set(cfg.service_overrides) - set(catalog.services))
    for name in unknown:
        hint = difflib.get_close_matches(name, list(catalog.services), n=1)
        problems.append(
            f"{config_key(f'serviceOverrides.{name}')}: no such service in {CATALOG_FILE}"
            + (f"; did you mean {hint[0]}?" if hint else "")
        )
    if environment != "local":
        for field, address in (("vaultAddress", cfg.vault_address), ("vaultClusterAddress", cfg.vault_cluster_address)):
            if address.startswith("http://"):
                problems.append(f"{config_key(field)}: plain http outside `local` sends the Vault token "
                                "unencrypted: use https://")
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
            if refused := env_name_problem(env_name):
                problems.append(f"{config_key(f'serviceOverrides.{name}.env.{env_name}')}: {refused}")
            elif env_name in secret_envs:
                problems.append(f"{config_key(f'serviceOverrides.{name}.env.{env_name}')}: already read from Vault "
                                "(the service's secrets): an inline value would shadow it; drop it")
            elif why := credential_in(env_name, override.env[env_name]):
                problems.append(f"{config_key(f'serviceOverrides.{name}.env.{env_name}')}: looks like a credential "
                                f"({why}): an inline value lands in the Helm values and release history in "
                                f"plaintext; keep it in Vault and list it under the service's `secrets` in "
                                f"{CATALOG_FILE}")
    settings = Settings(project=PROJECT, environment=environment, catalog=catalog, stack=cfg)
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
            for prop in key.properties:
                if prop not in given:
                    problems.append(
                        f"{config_key(f'secretValues.{key.name}.{prop}')}: missing (source is "
                        f"`config`): run `pulumi config set --secret --path "
                        f"'secretValues.{key.name}.{prop}' <value> -s {environment}`"
                    )
        if given and key.source != "config":
            problems.append(
                f"{config_key(f'secretValues.{key.name}')}: set, but the key's source is "
                f"`{key.source}`: remove the values or set secretSources.{key.name}: config"
            )
        for prop in sorted(set(given) - set(key.properties)):
            problems.append(
                f"{config_key(f'secretValues.{key.name}.{prop}')}: not a property of this key "
                f"({', '.join(key.properties)})"
            )
    for name in sorted(set(cfg.secret_values) - set(declared)):
        hint = difflib.get_close_matches(name, sorted(declared), n=1)
        problems.append(f"{config_key(f'secretValues.{name}')}: no enabled service reads this key"
                        + (f"; did you mean {hint[0]}?" if hint else ""))
    if not settings.services:
        problems.append(f"{config_key('serviceOverrides')}: every service is disabled")
    problems += quota_problems(cfg, settings.services)
    if cfg.wait_for_jobs and cfg.run_on_install:
        for service in settings.services:
            if service.active_deadline_seconds > cfg.release_timeout_seconds:
                problems.append(
                    f"{config_key('releaseTimeoutSeconds')}: {cfg.release_timeout_seconds} s is shorter than "
                    f"{service.name}'s Job deadline ({service.active_deadline_seconds} s) while waitForJobs is on: raise "
                    "it, or lower the suite's timeoutSeconds"
                )
    if problems:
        raise ConfigError(f"{file}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
    return settings


def quota_problems(cfg: StackConfig, services: Sequence[ServiceSettings]) -> list[str]:
    """On install every enabled service starts one suite pod at once: the quota must admit them all,
    with the requests and limits each one's pod gets, and requests within limits."""
    q = cfg.resource_quota
    field = config_key("resourceQuota")
    problems = []
    for kind in QUOTA_KINDS:
        requests, limits = getattr(q, f"requests_{kind}"), getattr(q, f"limits_{kind}")
        if quantity_value(requests) == 0 or quantity_value(limits) == 0:
            problems.append(f"{field}: {kind.replace('_', '-')} of 0 admits no suite at all")
        elif quantity_value(requests) > quantity_value(limits):
            problems.append(f"{field}.requests{_camel(kind)} {requests} exceeds limits{_camel(kind)} {limits}")
    if not cfg.run_on_install:
        return problems
    if q.pods < len(services):
        problems.append(f"{field}.pods: {q.pods} cannot hold the {len(services)} suites that start on install "
                        f"(their deadlines tick while they wait): set it to at least {len(services)}")
    for bound in ("requests", "limits"):
        for kind in QUOTA_KINDS:
            need = sum((quantity_value(getattr(getattr(svc.resources, bound), kind) or "0") for svc in services),
                       Decimal(0))
            have = getattr(q, f"{bound}_{kind}")
            if quantity_value(have) < need:
                problems.append(f"{field}.{bound}{_camel(kind)}: {have} cannot hold the {bound} of the "
                                f"{len(services)} suites that start on install: set it to at least "
                                f"{_format_quantity(need, kind)}")
    return problems


QUOTA_KINDS = ("cpu", "memory", "ephemeral_storage")


def _camel(kind: str) -> str:
    return "".join(part.title() for part in kind.split("_"))


def _format_quantity(value: Decimal, kind: str) -> str:
    if kind != "cpu":
        return f"{int(-(-value // 2**30))}Gi"
    return str(int(-(-value // 1)))


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
