"""What `make drift` compares, as pure functions over what the state declares and what is there: each
returns Findings (a resource's URN, a property path, one line of what differs; never a value).

Owns the comparison rules:
- a Kubernetes object: every leaf the program declared must be there with its value (fields the API
  server or a controller added are not drift), and the labels are the program's own map (one added by
  hand is drift; the API server's `kubernetes.io/metadata.name` is not);
- a Helm release: the values Helm recorded for its newest revision equal the declared ones;
- a key Pulumi wrote (`generated`, `config`): Vault's current version is the one the state recorded;
  a newer one was written outside Pulumi. An `external` key's version written after the last deployment
  is its owner's change: reported as expected, never as drift;
- the ESO policy's text and the Kubernetes-auth role's parameters equal the declared ones;
- the engine's own refresh (preview only): each resource it would update or delete.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SYSTEM_LABELS = frozenset({"kubernetes.io/metadata.name"})  # set by the API server on every namespace
_CAMEL = re.compile(r"(?<!^)([A-Z])")


@dataclass(frozen=True)
class Finding:
    urn: str
    path: str  # the property path ("" for the resource as a whole)
    what: str  # one line, never a value
    expected: bool = False  # an owner's change (an external key's new version), not drift


def type_of(urn: str) -> str:
    """A URN's resource type; an external key (no resource of the stack: `vault:<path>`) is a `vault-key`."""
    parts = urn.split("::")
    return parts[-2].rsplit("$", 1)[-1] if len(parts) >= 3 else "vault-key"


def differing_paths(declared: Any, live: Any, path: str = "") -> list[str]:
    """The paths of the declared leaves the live value lacks or holds differently."""
    if isinstance(declared, Mapping):
        if not isinstance(live, Mapping):
            return [path or "."]
        paths: list[str] = []
        for key, value in declared.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in live:
                paths.append(child)
            else:
                paths += differing_paths(value, live[key], child)
        return paths
    if isinstance(declared, list):
        if not isinstance(live, list) or len(live) != len(declared):
            return [path]
        return [p for i, (d, v) in enumerate(zip(declared, live, strict=True)) for p in differing_paths(d, v, f"{path}[{i}]")]
    return [] if declared == live else [path]


def kubernetes_object(urn: str, declared: Mapping[str, Any], live: Mapping[str, Any] | None) -> list[Finding]:
    """A Kubernetes object the program declared against the live one."""
    if live is None:
        return [Finding(urn, "", "deleted: the object is not in the cluster")]
    body = {k: v for k, v in declared.items() if k not in ("apiVersion", "kind", "metadata")}
    meta = dict(declared.get("metadata") or {})
    live_meta = dict(live.get("metadata") or {})
    findings = [Finding(urn, p, "differs from what the stack declares") for p in differing_paths(body, live)]
    findings += [Finding(urn, f"metadata.annotations.{k}", "differs from what the stack declares")
                 for k in differing_paths(meta.get("annotations") or {}, live_meta.get("annotations") or {})]
    labels, live_labels = dict(meta.get("labels") or {}), dict(live_meta.get("labels") or {})
    for key in sorted(set(labels) | set(live_labels) - SYSTEM_LABELS):
        if key not in live_labels:
            findings.append(Finding(urn, f"metadata.labels.{key}", "removed from the object"))
        elif key not in labels:
            findings.append(Finding(urn, f"metadata.labels.{key}", "added by hand (the stack does not declare it)"))
        elif labels[key] != live_labels[key]:
            findings.append(Finding(urn, f"metadata.labels.{key}", "differs from what the stack declares"))
    return findings


def helm_values(urn: str, declared: Mapping[str, Any], recorded: Mapping[str, Any] | None,
                revision: int | None) -> list[Finding]:
    if recorded is None:
        return [Finding(urn, "", "deleted: Helm has no record of the release")]
    paths = sorted(set(differing_paths(declared, recorded)) | {p for p in differing_paths(recorded, declared)})
    return [Finding(urn, f"values.{p}", f"Helm's revision {revision} holds other values than the stack declares")
            for p in paths]


def key_version(urn: str, recorded: str | int | None, current: int | None) -> list[Finding]:
    """A key Pulumi wrote: the version the state recorded against Vault's current one."""
    if current is None:
        return [Finding(urn, "", "deleted: the key is not in Vault")]
    if recorded is not None and str(recorded).isdigit() and current != int(recorded):
        return [Finding(urn, "metadata.version", f"Vault's current version is {current}, the state recorded "
                        f"{int(recorded)}: written outside Pulumi")]
    return []


def external_key(urn: str, path: str, owner: str, current: int | None, written: datetime | None,
                 deployed: datetime | None) -> list[Finding]:
    """An `external` key: a version its owner wrote after the last deployment is expected."""
    if current is None:
        return [Finding(urn, "", f"the external key {path} is not in Vault: its owner ({owner}) must write it")]
    if written is not None and deployed is not None and written > deployed:
        return [Finding(urn, "metadata.version", f"version {current} written by its owner ({owner}) after the "
                        "last deployment", expected=True)]
    return []


def policy_text(urn: str, declared: str, live: str | None) -> list[Finding]:
    if live is None:
        return [Finding(urn, "", "deleted: the policy is not in Vault")]
    return [] if declared.strip() == live.strip() else [Finding(urn, "policy", "the policy's text was edited")]


def role_parameters(urn: str, declared: Mapping[str, Any], live: Mapping[str, Any] | None) -> list[Finding]:
    """The role's declared parameters (the provider's camelCase names, Vault's snake_case ones)."""
    if live is None:
        return [Finding(urn, "", "deleted: the role is not in Vault")]
    findings = []
    for field, value in sorted(declared.items()):
        if field in ("backend", "roleName"):
            continue  # where the role is: its ID
        api = _CAMEL.sub(r"_\1", field).lower()
        if api in live and live[api] != value and not (isinstance(value, list) and sorted(value) == sorted(live[api])):
            findings.append(Finding(urn, field, "the role's parameter was edited"))
    return findings


def engine_steps(steps: Iterable[tuple[str, str, list[str]]]) -> list[Finding]:
    """The engine's refresh steps (op, URN, changed property paths) that are drift."""
    findings = []
    for op, urn, paths in steps:
        if op == "delete":
            findings.append(Finding(urn, "", "deleted (the engine's refresh)"))
        elif op in ("update", "replace"):
            findings += [Finding(urn, p, "changed (the engine's refresh)") for p in paths or [""]]
    return findings


def merged(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per resource and path (the engine and a check of ours may both see it)."""
    seen: dict[tuple[str, str], Finding] = {}
    for f in findings:
        seen.setdefault((f.urn, normal_path(f.path)), f)
    return sorted(seen.values(), key=lambda f: (f.urn, f.path))


def normal_path(path: str) -> str:
    """The engine's `metadata.labels["a/b"]` and ours `metadata.labels.a/b` as one path."""
    return re.sub(r'\["([^"]+)"\]', r".\1", path)
