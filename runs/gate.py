"""The readiness gate of `make run`: a suite starts only when its ExternalSecret is Ready at the
version of every key Vault holds now -- not merely Ready once.

Owns: the order of the checks and the reason codes they end in. Vault first (each key's metadata:
SECRET_MISSING names the key and its owner), then the ExternalSecret. Its last sync counts only when
it began more than MAX_CLOCK_SKEW_SECONDS after every key's current version was written (ESO's clock
against Vault's: the one assumption about clocks, docs/runs.md). Otherwise ESO is told to sync now
(its `force-sync` annotation) and the gate waits, at most `bound` seconds, for a sync that proves
itself without any clock: ESO's `syncedResourceVersion` changes only when it synced the object as
changed by the request, so that sync began after the request -- which the gate makes after it read
the versions from Vault. A refused ESO login (the role gone, or
Vault saying permission denied) is VAULT_AUTH_DENIED as soon as ESO reports it; no sync within the
bound is SECRET_NOT_SYNCED with ESO's last word. Nothing here reads a secret's value.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from config.outputs import ServiceOutputs, VaultOutputs
from config.vault_keys import version_state
from runs.classify import Verdict
from runs.provenance import KeyVersion, SyncState, sync_state

FORCE_SYNC_ANNOTATION = "force-sync"  # ESO re-syncs when an ExternalSecret's annotations change
DEFAULT_BOUND_SECONDS = 60.0
# How far ESO's clock (refreshTime) and Vault's (created_time) may differ before the gate would take a
# sync that began before a version was written for one that read it. Within it, a sync is forced and
# proven by its syncedResourceVersion instead, so a skew up to this costs a sync, never a wrong pass.
MAX_CLOCK_SKEW_SECONDS = 5.0
# ESO's words (its Warning events) for a login or a read Vault refused, and for a key that is not there.
AUTH_DENIED_WORDS = ("permission denied", "code: 403", "invalid role", "login", "unauthorized")
MISSING_WORDS = ("code: 404", "secret not found", "does not exist", "cannot find", "not found")


class VersionSource(Protocol):
    def metadata(self, mount: str, path: str) -> dict[str, Any] | None: ...
    def role_exists(self, auth_mount: str, role: str) -> bool | None: ...


class SyncTarget(Protocol):
    def get_external_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def annotate_external_secret(self, namespace: str, name: str, annotations: dict[str, str]) -> None: ...
    def warning_events(self, namespace: str, kind: str, name: str) -> dict[str, tuple[int, str]]: ...


@dataclass(frozen=True)
class GateResult:
    keys: tuple[KeyVersion, ...]
    sync: SyncState | None
    verdict: Verdict | None  # None: ready
    seconds: float
    forced: bool


def split(full_path: str) -> tuple[str, str]:
    mount, _, path = full_path.partition("/")
    return mount, path


@dataclass
class Gate:
    vault: VersionSource
    cluster: SyncTarget
    facts: VaultOutputs | None
    namespace: str
    bound: float = DEFAULT_BOUND_SECONDS
    poll_seconds: float = 0.5
    skew_margin: float = MAX_CLOCK_SKEW_SECONDS
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def owner(self, path: str) -> str:
        return self.facts.owner(path) if self.facts else "its owner"

    def fix(self, path: str) -> str:
        facts = self.facts.keys.get(path) if self.facts else None
        if facts is not None and facts.source != "external":
            return f"the stack writes it (source {facts.source}): `pulumi up --refresh` writes it again"
        return "its owner writes a new version"

    def current_versions(self, service: str, svc: ServiceOutputs) -> tuple[list[KeyVersion], Verdict | None]:
        keys: list[KeyVersion] = []
        for path in svc.vault_keys:
            meta = self.vault.metadata(*split(path))
            owner = self.owner(path)
            if meta is None:
                return keys, Verdict("secret", "SECRET_MISSING",
                                     f"{service}: Vault key {path} does not exist (owner: {owner}): {self.fix(path)}")
            state = version_state(meta)
            if not state.live:
                why = state.versions.get(state.current, "missing")
                return keys, Verdict("secret", "SECRET_MISSING",
                                     f"{service}: Vault key {path}: its current version {state.current} is {why} "
                                     f"(owner: {owner}): {self.fix(path)}")
            keys.append(KeyVersion(path, state.current, state.created_time, owner))
        return keys, None

    def check(self, service: str, svc: ServiceOutputs) -> GateResult:
        began = self.clock()
        keys, missing = self.current_versions(service, svc)
        if missing is not None or not svc.secret_name:
            return GateResult(tuple(keys), None, missing, self.clock() - began, False)
        name = svc.secret_name
        es = self.cluster.get_external_secret(self.namespace, name)
        if es is None:
            return GateResult(tuple(keys), None, Verdict(
                "secret", "SECRET_NOT_SYNCED", f"{service}: ExternalSecret {name} is not in {self.namespace}: "
                "deploy the stack (`make up`)"), self.clock() - began, False)
        sync = sync_state(es)
        if sync.synced_after(keys, margin=self.skew_margin):
            return GateResult(tuple(keys), sync, None, self.clock() - began, False)
        if self.facts is not None and self.vault.role_exists(self.facts.auth_mount, self.facts.role) is False:
            return GateResult(tuple(keys), sync, self._auth_denied(service, name, keys, f"Vault has no role {self.facts.role}"),
                              self.clock() - began, False)
        return self._force_sync(service, name, keys, sync, began)

    def _auth_denied(self, service: str, name: str, keys: list[KeyVersion], why: str) -> Verdict:
        role = self.facts.role if self.facts else "ESO's role"
        paths = ", ".join(k.path for k in keys)
        return Verdict("secret", "VAULT_AUTH_DENIED",
                       f"{service}: Vault refused ESO for ExternalSecret {name} -- {paths} cannot be synced ({why}; "
                       f"owner: the platform team): restore role {role} and its read policy (`make up`, or the "
                       "platform's setup)")

    def _force_sync(self, service: str, name: str, keys: list[KeyVersion], sync: SyncState,
                    began: float) -> GateResult:
        seen_events = self.cluster.warning_events(self.namespace, "ExternalSecret", name)
        last_word = sync.message
        before = sync.synced_resource_version
        self.cluster.annotate_external_secret(self.namespace, name, {FORCE_SYNC_ANNOTATION: uuid.uuid4().hex})
        while True:
            if self.clock() - began > self.bound:
                word = f" (ESO: {last_word})" if last_word else ""
                return GateResult(tuple(keys), sync, Verdict(
                    "secret", "SECRET_NOT_SYNCED",
                    f"{service}: ExternalSecret {name} did not sync the current versions within {self.bound:g} s{word}"),
                    self.clock() - began, True)
            self.sleep(self.poll_seconds)
            es = self.cluster.get_external_secret(self.namespace, name)
            sync = sync_state(es or {})
            # A sync of the object as the request changed it: it began after the request, so after the
            # versions were read. No clock is compared.
            if sync.ready and sync.synced_resource_version and sync.synced_resource_version != before:
                return GateResult(tuple(keys), sync, None, self.clock() - began, True)
            fresh = {n: e for n, e in self.cluster.warning_events(self.namespace, "ExternalSecret", name).items()
                     if seen_events.get(n, (0, ""))[0] < e[0]}
            for _, message in fresh.values():
                last_word = message[:200]
                lowered = message.lower()
                if any(w in lowered for w in AUTH_DENIED_WORDS):
                    return GateResult(tuple(keys), sync, self._auth_denied(service, name, keys, "ESO's login "
                                      "or read was refused"), self.clock() - began, True)
                if any(w in lowered for w in MISSING_WORDS):
                    paths = ", ".join(k.path for k in keys)
                    return GateResult(tuple(keys), sync, Verdict(
                        "secret", "SECRET_MISSING", f"{service}: ESO finds no value for ExternalSecret {name} "
                        f"in {paths} (a property is missing; owners: "
                        f"{', '.join(sorted({k.owner for k in keys}))})"), self.clock() - began, True)
