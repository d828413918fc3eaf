"""The Vault keys a stack declares and what the program does with each: what a written key's
properties are made of, and the one wording of what is wrong with an `external` key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from config import naming
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
