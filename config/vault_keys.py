"""The Vault keys a stack declares and what the program does with each: what a written key's
properties are made of, the one wording of what is wrong with an `external` key, and what Vault's KV v2
metadata says of a key (its versions and when each was written; never a value)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from config import naming
from config.times import timestamp
from config.types import SecretSource


@dataclass(frozen=True)
class VaultKey:
    """One KV v2 secret this stack declares, and where its value comes from."""

    name: str
    mount: str
    path: str  # mount-relative, e.g. integration/staging/graph
    properties: tuple[str, ...]
    source: SecretSource
    owner: str

    @property
    def api_read_path(self) -> str:
        return naming.vault_read_path(self.mount, self.path)

    @property
    def full_path(self) -> str:
        return naming.vault_full_path(self.mount, self.path)

    def missing_properties(self, present: Iterable[str] | None) -> list[str]:
        """The declared properties not among `present` (all of them when the key is absent)."""
        have = set(present or ())
        return [p for p in self.properties if p not in have]


@dataclass(frozen=True)
class GeneratedProperty:
    """How one property of a `generated` key is made from the key's random string (catalog
    generatedFormats), so a key's URL, username and password agree with each other."""

    template: str | None  # None: the random string itself
    key: str

    def value(self, password: str) -> str:
        if self.template is None:
            return password
        return self.template.format(password=password, key=self.key, user=self.key.replace("-", "_"))


@dataclass(frozen=True)
class VaultKeyWrite:
    """A key the program writes (source `config` or `generated`) and what each property is made of."""

    key: VaultKey
    # `config`: property -> the stack's Pulumi secret (kept a SecretStr: no repr shows it).
    config_values: Mapping[str, SecretStr]
    # `generated`: property -> how it is made from the key's one random string.
    generated: Mapping[str, GeneratedProperty]


@dataclass(frozen=True)
class ExternalKeyCheck:
    """An `external` key the program only checks, with the one wording of what is wrong with it."""

    key: VaultKey
    fix: str

    def problem(self, present: Iterable[str] | None) -> str | None:
        """Why the key cannot be used (absent: `present` is None, or lacking properties); None if usable.
        The one wording of the program's check, `make verify` and the preflight."""
        missing = self.key.missing_properties(present)
        if not missing:
            return None
        state = ("does not exist" if present is None else
                 f"lacks propert{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}")
        return f"Vault key {self.key.full_path} (source `external`, owned by {self.key.owner}) {state}: {self.fix}"


def key_folders(keys: Iterable[VaultKey]) -> list[tuple[str, str]]:
    """(mount, folder) of these keys, once each: read grants go by folder -- the stack's prefix, the one
    its external keys come from -- so a service or an external key added to the catalog needs no new one."""
    return sorted({(k.mount, k.path.rpartition("/")[0]) for k in keys})


@dataclass(frozen=True)
class VersionState:
    """What Vault's metadata says of one key now."""

    current: int
    created_time: str
    live: bool  # the current version neither deleted nor destroyed
    versions: Mapping[int, str]  # version -> "live" | "deleted" | "destroyed"
    created: Mapping[int, str] = field(default_factory=dict)  # version -> created_time

    def version_at(self, moment: datetime) -> int | None:
        """The newest version written before `moment` (what a Secret synced then could hold)."""
        before = [v for v, t in self.created.items() if (c := timestamp(t)) is not None and c < moment]
        return max(before, default=None)


def version_state(metadata: Mapping[str, Any]) -> VersionState:
    """Vault KV v2 metadata (`<mount>/metadata/<path>`: versions and times, no values) read plainly."""
    versions: dict[int, str] = {}
    created: dict[int, str] = {}
    for number, facts in (metadata.get("versions") or {}).items():
        facts = facts or {}
        state = "destroyed" if facts.get("destroyed") else "deleted" if facts.get("deletion_time") else "live"
        if str(number).isdigit():
            versions[int(number)] = state
            created[int(number)] = str(facts.get("created_time") or "")
    current = int(metadata.get("current_version") or 0)
    return VersionState(current, str(created.get(current, "")), versions.get(current) == "live", versions, created)
