"""Reading the project's files: YAML (duplicate keys refused, errors naming the file) and the
flat config map of a stack as the Pulumi CLI builds it from Pulumi.yaml + Pulumi.<stack>.yaml."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from config.errors import ConfigError
from config.naming import PROJECT

# The project root: Pulumi.yaml, Pulumi.<stack>.yaml and catalog.yaml live here.
PROJECT_DIR = Path(__file__).resolve().parent.parent

# libyaml's parser when PyYAML was built with it (the PyPI wheels are): several times faster.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """PyYAML keeps the last of two equal keys; a duplicate service must be an error instead."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file, rejecting duplicate keys, with errors that name the file."""
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_UniqueKeyLoader)
    except FileNotFoundError:
        raise ConfigError(f"{path.name}: file not found at {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: not valid YAML: {exc}") from None


def stack_config(
    stack: str,
    *,
    project_dir: Path = PROJECT_DIR,
) -> tuple[dict[str, str], list[str]]:
    """The flat config map the CLI would hand the program: project defaults, then the stack file.

    `secure:` values cannot be decrypted here; each is replaced by a placeholder and its key is
    reported as secret, as the CLI does.
    """
    project = load_yaml(project_dir / "Pulumi.yaml") or {}
    config: dict[str, Any] = {}
    for key, decl in (project.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(decl, dict) and "default" in decl:
            config[full] = decl["default"]
        elif not isinstance(decl, dict):
            config[full] = decl
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise ConfigError(
            f"{stack_file.name}: no such stack file; create it (see README, Configuration) or "
            f"pick one of: {', '.join(sorted(p.name[7:-5] for p in project_dir.glob('Pulumi.*.yaml')))}"
        )
    data = load_yaml(stack_file) or {}
    if not isinstance(data, dict) or not isinstance(data.get("config", {}), dict):
        raise ConfigError(f"{stack_file.name}: expected a mapping with a `config:` mapping")
    secret_keys: list[str] = []
    for key, value in (data.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        value, had_secret = _replace_secure(full, value)
        if had_secret:
            secret_keys.append(full)
        config[full] = value
    return {k: _encode(v) for k, v in config.items()}, secret_keys


def _replace_secure(path: str, value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return f"offline-placeholder-{hashlib.sha256(path.encode()).hexdigest()[:8]}", True
    if isinstance(value, dict):
        out, any_secret = {}, False
        for k, v in value.items():
            out[k], s = _replace_secure(f"{path}.{k}", v)
            any_secret |= s
        return out, any_secret
    return value, False


def _encode(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)
