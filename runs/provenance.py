"""What a run ran with, never a value: per service the Vault KV v2 path and version of each key its
Secret came from, the ExternalSecret's sync state, the image the pod ran (its digest) and the chart
version, the attempts and their verdicts.

Owns: reading those facts from Vault's metadata and the API server's objects (pure functions over
the dicts they return), the JUnit `<properties>` names, and the run manifest (`run-manifest.json`
beside the JUnit files, a copy per run id under the runs folder for `make run RERUN=<run id>`).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from junitparser import JUnitXml

from config.times import timestamp
from config.vault_keys import version_state

MANIFEST_NAME = "run-manifest.json"
MANIFEST_SCHEMA = "1"
PROPERTY_PREFIX = "testinfra."


@dataclass(frozen=True)
class KeyVersion:
    """The version of one Vault key a run's Secret came from, and when Vault wrote it."""

    path: str  # full path: <mount>/<prefix>/<key>
    version: int
    created_time: str
    owner: str

    @property
    def created(self) -> datetime | None:
        return timestamp(self.created_time)


@dataclass(frozen=True)
class SyncState:
    """An ExternalSecret's sync as ESO recorded it."""

    name: str
    ready: bool
    synced_resource_version: str
    refresh_time: str
    message: str

    @property
    def refreshed(self) -> datetime | None:
        return timestamp(self.refresh_time)

    def synced_after(self, keys: Sequence[KeyVersion], *, margin: float = 0.0) -> bool:
        """Ready, and its last sync began more than `margin` seconds after every key's current version
        was written. ESO stamps refreshTime at the start of a sync (before it reads Vault), to the
        second, with its own clock; Vault stamps created_time with another. The margin is the skew
        between the two clocks the caller is prepared to assume (runs/gate.py: MAX_CLOCK_SKEW_SECONDS)."""
        refreshed = self.refreshed
        if not self.ready or refreshed is None:
            return False
        created = [k.created for k in keys]
        return all(c is not None and (refreshed - c).total_seconds() > margin for c in created)


def sync_state(es: Mapping[str, Any]) -> SyncState:
    status = es.get("status") or {}
    ready: Mapping[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return SyncState(
        name=str((es.get("metadata") or {}).get("name") or ""),
        ready=ready.get("status") == "True",
        synced_resource_version=str(status.get("syncedResourceVersion") or ""),
        refresh_time=str(status.get("refreshTime") or ""),
        message=str(ready.get("message") or "")[:300],
    )


def image_id(pods: Sequence[Mapping[str, Any]]) -> str:
    """The image the newest pod ran, as the kubelet resolved it (a digest), or '' when none started."""
    for pod in reversed(pods):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("imageID"):
                return str(status["imageID"])
    return ""


def chart_version(job: Mapping[str, Any] | None) -> str:
    label = str(((job or {}).get("metadata") or {}).get("labels", {}).get("helm.sh/chart") or "")
    return label.rpartition("-")[2] if "-" in label else label


@dataclass
class Attempt:
    job: str
    state: str
    cause: str
    reason: str
    detail: str
    seconds: float


@dataclass
class ServiceRecord:
    """One service's run: what it ran with and how it ended."""

    service: str
    image: str = ""
    image_id: str = ""
    chart_version: str = ""
    external_secret: dict[str, str] | None = None
    keys: list[dict[str, Any]] = field(default_factory=list)
    gate: dict[str, Any] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    cause: str = ""
    reason: str = ""
    flaky: bool = False
    notes: list[str] = field(default_factory=list)
    phases: dict[str, Any] | None = None  # runs/phases.py: {"startedAt", "seconds": {phase: s}, "missing"}
    seconds: float = 0.0  # the runner's own (monotonic) measure of the same span the phases cut

    def set_keys(self, keys: Sequence[KeyVersion]) -> None:
        self.keys = [{"path": k.path, "version": k.version, "createdTime": k.created_time, "owner": k.owner}
                     for k in keys]

    def set_sync(self, sync: SyncState | None) -> None:
        self.external_secret = None if sync is None else {
            "name": sync.name, "syncedResourceVersion": sync.synced_resource_version,
            "refreshTime": sync.refresh_time}

    def properties(self, run_id: str) -> list[tuple[str, str]]:
        """The JUnit `<property>` elements of this service's suites (names under `testinfra.`)."""
        props = [("run.id", run_id), ("outcome", self.cause), ("reason", self.reason),
                 ("attempts", str(len(self.attempts))), ("flaky", "true" if self.flaky else "false"),
                 ("job", self.attempts[-1].job if self.attempts else ""), ("image", self.image),
                 ("image.id", self.image_id), ("chart.version", self.chart_version)]
        if self.external_secret:
            props += [(f"externalSecret.{k}", v) for k, v in self.external_secret.items()]
        for key in self.keys:
            props += [(f"vault.{key['path']}.version", str(key["version"])),
                      (f"vault.{key['path']}.createdTime", key["createdTime"])]
        for phase, seconds in ((self.phases or {}).get("seconds") or {}).items():
            props.append((f"phase.{phase}.seconds", f"{seconds:.3f}"))
        return [(PROPERTY_PREFIX + name, value) for name, value in props]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["imageId"] = data.pop("image_id")
        data["chartVersion"] = data.pop("chart_version")
        data["externalSecret"] = data.pop("external_secret")
        return data


def stamp(xml: JUnitXml, record: ServiceRecord, run_id: str) -> None:
    """Adds the record's properties to every suite of a service's report."""
    for suite in xml:
        for name, value in record.properties(run_id):
            suite.add_property(name, value)


@dataclass
class RunManifest:
    run_id: str
    caller: str
    namespace: str
    started_at: str
    finished_at: str = ""
    exit_code: int | None = None
    services: dict[str, ServiceRecord] = field(default_factory=dict)
    stack: str = ""  # the stack whose outputs the run read (a replay is refused into another)
    commit: str = ""  # the repository's commit the run came from (`make report` groups equivalent runs by it)

    def as_json(self) -> dict[str, Any]:
        return {"schemaVersion": MANIFEST_SCHEMA, "runId": self.run_id, "caller": self.caller,
                "stack": self.stack, "namespace": self.namespace, "startedAt": self.started_at, "finishedAt": self.finished_at,
                "exitCode": self.exit_code, "commit": self.commit,
                "services": {name: rec.as_json() for name, rec in sorted(self.services.items())}}

    def write(self, junit_dir: Path, runs_dir: Path | None) -> list[Path]:
        text = json.dumps(self.as_json(), indent=2, sort_keys=True) + "\n"
        written = [junit_dir / MANIFEST_NAME]
        written[0].write_text(text)
        if runs_dir is not None:
            target = runs_dir / safe_run_id(self.run_id) / MANIFEST_NAME
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            written.append(target)
        return written


def source_commit(environ: Mapping[str, str], cwd: Path) -> str:
    """The commit a run came from: CI's GITHUB_SHA, else the checkout's HEAD, else '' (not a clone)."""
    if environ.get("GITHUB_SHA"):
        return environ["GITHUB_SHA"][:64]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = head.stdout.strip()
    return text if head.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", text) else ""


def safe_run_id(run_id: str) -> str:
    """A run id as one folder name (run ids come from CI or a user: never a path)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip(".-")[:100] or "run"


def now(*, precise: bool = False) -> str:
    """UTC now, RFC 3339; `precise`: to the millisecond (a propagation time is a difference of two)."""
    moment = datetime.now(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if precise else \
        moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def versions_at(paths: Iterable[str], metadata: Callable[[str], Mapping[str, Any] | None],
                owner: Callable[[str], str], moment: datetime) -> list[KeyVersion]:
    """Each key's version that was current at `moment` (what a Secret synced then could hold)."""
    keys = []
    for path in paths:
        meta = metadata(path)
        state = version_state(meta) if meta else None
        version = state.version_at(moment) if state else None
        if state is not None and version is not None:
            keys.append(KeyVersion(path, version, state.created.get(version, ""), owner(path)))
    return keys
