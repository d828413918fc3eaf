"""Reading the project's files: YAML (duplicate keys refused, errors naming the file) and the
flat config map of a stack as the Pulumi CLI builds it from Pulumi.yaml + Pulumi.<stack>.yaml."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from config import naming
from config.errors import ConfigError
from config.naming import CHART_PATH, PROJECT

# The project root: Pulumi.yaml, Pulumi.<stack>.yaml and catalog.yaml live here.
PROJECT_DIR = Path(__file__).resolve().parent.parent

# libyaml's parser when PyYAML was built with it (the PyPI wheels are): several times faster.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# A config file is small: its nodes, counted with every alias expanded, stay far below this. A YAML
# "billion laughs" (anchors nested nine deep in 1 KB) expands to hundreds of millions.
MAX_EXPANDED_NODES = 100_000
MAX_FILE_BYTES = 1_000_000


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """Safe YAML with three refusals a config file needs: duplicate keys (PyYAML keeps the last),
    non-scalar keys, and alias expansion beyond MAX_EXPANDED_NODES."""


class _DuplicateKey(yaml.YAMLError):
    """A mapping names one key twice; load_yaml turns it into a message with the key's whole path."""

    def __init__(self, key: Any, key_node: yaml.Node) -> None:
        super().__init__(f"duplicate key {key!r}")
        self.key = key
        self.key_node = key_node


def _key_path(node: yaml.Node, target: yaml.Node, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The dotted path of the keys that lead from `node` to the key node `target`, if it is below."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            here = (*path, str(key_node.value))
            if key_node is target:
                return here
            found = _key_path(value, target, here)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found = _key_path(item, target, (*path, f"[{index}]"))
            if found:
                return found
    return None


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<:` brings keys an explicit one may override, as YAML says
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value, not a list or mapping", key_node.start_mark
            )
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise _DuplicateKey(key, key_node)
        seen.add(key)
    loader.flatten_mapping(node)  # resolves the merge keys, as SafeLoader itself does
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes `node` stands for once every alias is expanded (aliases share node objects)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = MAX_EXPANDED_NODES + 1  # a cycle (recursive alias) counts as too large
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[id(node)] = size = min(size, MAX_EXPANDED_NODES + 1)
    return size


def load_yaml(path: Path) -> Any:
    """Parse a small YAML config file safely, with errors that name the file and say what to do."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path.name}: file not found at {path}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{path.name}: {len(raw)} bytes; a config file this large is refused (limit "
                          f"{MAX_FILE_BYTES})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path.name}: not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_EXPANDED_NODES:
            raise ConfigError(f"{path.name}: its anchors and aliases expand to more than {MAX_EXPANDED_NODES} "
                              f"values: write the values out, or use fewer nested aliases")
        return loader.construct_document(node)
    except _DuplicateKey as dup:
        where = ".".join(_key_path(node, dup.key_node) or (str(dup.key),))
        raise ConfigError(
            f"{path.name}: line {dup.key_node.start_mark.line + 1}: {bounded(where, 120)} is given twice (YAML keeps "
            f"only one of them): keep one entry -- merge the two, or rename one"
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(yaml_problem(path.name, text, exc)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: not valid YAML: {bounded(str(exc))}") from None
    except RecursionError:
        raise ConfigError(f"{path.name}: nested too deeply to be a config file") from None
    finally:
        loader.dispose()


def yaml_problem(name: str, text: str, exc: yaml.MarkedYAMLError) -> str:
    """Where the parser stopped, the line itself and the key it belongs under, and the usual fix."""
    lines = text.splitlines()
    mark = exc.problem_mark or exc.context_mark
    if mark is None or mark.line >= len(lines):
        return f"{name}: not valid YAML: {bounded(str(exc))}"
    line = lines[mark.line]
    under = [candidate.strip().rstrip(":") for candidate in reversed(lines[:mark.line])
             if candidate.strip().endswith(":") and not candidate.lstrip().startswith("#")
             and len(candidate) - len(candidate.lstrip()) < len(line) - len(line.lstrip())][:1]
    where = f", under `{bounded(under[0], 60)}`" if under else ""
    fix = ("a tab is not indentation in YAML: use spaces" if "\t" in line[:len(line) - len(line.lstrip())] else
           "check this line's indentation: a key starts in the same column as the keys beside it, a value "
           "of a key two spaces further in")
    return (f"{name}: line {mark.line + 1}, column {mark.column + 1}{where}: not valid YAML "
            f"({bounded(str(exc.problem or exc.context), 80)}): `{bounded(line.strip(), 100)}`: {fix}")


@lru_cache(maxsize=1)
def chart_default_values() -> dict[str, Any]:
    """The in-repo chart's values.yaml (its defaults: e.g. a suite pod's resources)."""
    values: dict[str, Any] = yaml.safe_load((PROJECT_DIR / CHART_PATH / "values.yaml").read_text())
    return values


def bounded(text: str, limit: int = 400) -> str:
    """At most `limit` characters of an echo of the input: an error message never repeats a whole file."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def stack_config(
    stack: str,
    *,
    project_dir: Path = PROJECT_DIR,
) -> tuple[dict[str, str], list[str]]:
    """The flat config map the CLI would hand the program: project defaults, then the stack file.

    `secure:` values cannot be decrypted here; each is replaced by a placeholder and its key is
    reported as secret, as the CLI does.
    """
    if not naming.is_stack_name(stack):
        raise ConfigError(f"stack {bounded(repr(stack), 40)}: not a stack name: use local, staging, prod "
                          "(a short DNS label with its Pulumi.<stack>.yaml)")
    project = load_yaml(project_dir / "Pulumi.yaml") or {}
    config: dict[str, Any] = {}
    declared_types: dict[str, str] = {}
    for key, decl in (project.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(decl, dict) and "default" in decl:
            config[full] = decl["default"]
        elif not isinstance(decl, dict):
            config[full] = decl
        if isinstance(decl, dict) and isinstance(decl.get("type"), str):
            declared_types[full] = decl["type"]
    stack_file = project_dir / naming.stack_file(stack)
    if not stack_file.exists():
        raise ConfigError(
            f"{stack_file.name}: no such stack file; create it (see README, Configure) or "
            f"pick one of: {', '.join(sorted(p.name[7:-5] for p in project_dir.glob('Pulumi.*.yaml')))}"
        )
    data = load_yaml(stack_file) or {}
    if not isinstance(data, dict) or not isinstance(data.get("config", {}), dict):
        raise ConfigError(f"{stack_file.name}: expected a mapping with a `config:` mapping")
    secret_keys: list[str] = []
    problems: list[str] = []
    for key, value in (data.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        problems += _typed_scalar_problems(full, value, declared_types.get(full))
        if full == f"{PROJECT}:secretValues":
            problems += [f"config.{full}.{leaf}: plaintext: every value here must be a Pulumi secret "
                         f"(`pulumi config set --secret --path 'secretValues.{leaf}' <value>`)"
                         for leaf in _plaintext_leaves(value)]
        value, had_secret = _replace_secure(full, value)
        if had_secret:
            secret_keys.append(full)
        config[full] = value
    if problems:
        raise ConfigError(f"{stack_file.name}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
    return {k: _encode(v) for k, v in config.items()}, secret_keys


def _typed_scalar_problems(key: str, value: Any, declared: str | None) -> list[str]:
    """YAML turns `imageTag: 2026.10` into the number 2026.1 and `kubeContext:` into null; the CLI
    then passes "2026.1" or "null" on. A key declared `type: string` must be written as a string."""
    if declared != "string" or isinstance(value, str) or isinstance(value, dict) and set(value) == {"secure"}:
        return []
    if value is None:
        return [f"config.{key}: empty: give a value, or remove the line to take the default"]
    shown = bounded(repr(value), 40)
    return [f"config.{key}: {shown} is a {type(value).__name__} in YAML, not a string: quote it "
            f"(e.g. \"{value}\") so it is used exactly as written"]


def _plaintext_leaves(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return []
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _plaintext_leaves(v, f"{path}.{k}" if path else str(k))]
    return [path or "(value)"]


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


def write_private(path: Path, data: bytes | str) -> None:
    """Create `path` readable by its owner only from the first byte (never written world-readable first)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT


def env_file(env: Mapping[str, str]) -> str:
    """`export K=V` lines a shell sources safely, whatever the values (a checkout path with quotes)."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
