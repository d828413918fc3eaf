"""Replays (`make run RERUN=<run id | manifest>`): the manifest of a recorded run, checked against the
run (namespace, stack, image repository: a manifest chooses only a digest), the image reference pinned
by that digest, and what differs in the secrets' versions, said plainly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

from config.outputs import ServiceOutputs
from config.vault_keys import version_state
from runs.errors import RunInputError
from runs.gate import Gate, split
from runs.provenance import MANIFEST_NAME, safe_run_id

MAX_MANIFEST_BYTES = 5 * 1024 * 1024


DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def image_repository(image: str) -> str:
    """`registry:port/path/name` of an image reference: its digest and tag taken off."""
    repository = image.split("@", 1)[0]
    last = repository.rpartition("/")[2]
    if ":" in last:  # a tag, not a registry port
        repository = repository[: len(repository) - len(last)] + last.split(":", 1)[0]
    return repository


def pinned_reference(image: str, recorded_id: str) -> str | None:
    """`repository@sha256:...`: the repository of the image the stack names, the digest a pod resolved.
    Only a digest is taken from a record: a replay never runs a repository the stack does not name."""
    digest = recorded_id.rpartition("@")[2] if "@" in recorded_id else recorded_id
    if not DIGEST.fullmatch(digest):
        return image if "@sha256:" in image else None
    return f"{image_repository(image)}@{digest}"


def check_replayed(replayed: dict[str, Any], source: str, *, stack: str, namespace: str,
                   services: dict[str, ServiceOutputs]) -> None:
    """A manifest is replayed only into the stack and namespace it records, with the images the stack
    names: a manifest from a pull request's artifact (which that pull request's code wrote) must not
    choose what runs beside another stack's secrets."""
    recorded_namespace = str(replayed.get("namespace") or "")
    if recorded_namespace != namespace:
        raise RunInputError(f"{source}: the replayed run was in namespace {recorded_namespace[:63]!r}, this run is in "
                            f"{namespace!r}: replay a run of this stack")
    recorded_stack = str(replayed.get("stack") or "")
    if recorded_stack and recorded_stack != stack:
        raise RunInputError(f"{source}: the replayed run was of stack {recorded_stack[:63]!r}, this run is of "
                            f"{stack!r}: replay a run of this stack")
    for name, record in sorted(replayed["services"].items()):
        svc = services.get(name)
        if svc is None:
            continue
        recorded = str(record.get("image") or "")
        if recorded and image_repository(recorded) != image_repository(svc.image):
            raise RunInputError(f"{source}: services.{name[:63]}.image names repository "
                                f"{image_repository(recorded)[:200]!r}, the stack runs {image_repository(svc.image)!r}: "
                                "a replay takes only the digest from a record, never the repository")
        image_id = str(record.get("imageId") or "")
        digest = image_id.rpartition("@")[2]
        if image_id and not DIGEST.fullmatch(digest):
            raise RunInputError(f"{source}: services.{name[:63]}.imageId is not a sha256 digest")


def replay_notes(service: str, recorded: dict[str, Any], now: tuple[Any, ...], gate: Gate) -> list[str]:
    """What differs from the replayed run's secrets, said plainly: values are never stored, so a
    version that no longer exists cannot be had again."""
    notes = []
    current = {k.path: k.version for k in now}
    for key in recorded.get("keys") or []:
        path, version = str(key.get("path")), key.get("version")
        if current.get(path) == version:
            continue
        meta = gate.vault.metadata(*split(path))
        state = version_state(meta).versions.get(int(version or 0), "gone") if meta else "gone"
        if state == "live":
            notes.append(f"{path}: the replayed run read version {version}; this run reads version "
                         f"{current.get(path)} (ESO syncs a key's current version)")
        else:
            notes.append(f"{path}: version {version}, which the replayed run read, no longer exists ({state}); "
                         f"this run reads version {current.get(path)} -- the value is stored nowhere by this project")
    return notes


def read_manifest(replay: str, runs_dir: Path) -> dict[str, Any]:
    """The manifest of the run to replay: a file, or the run id of one kept under --runs-dir."""
    path = Path(replay)
    if not path.is_file():
        path = runs_dir / safe_run_id(replay) / MANIFEST_NAME
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ValueError("too large")
        data: Any = json.loads(raw)
    except FileNotFoundError:
        raise RunInputError(f"RERUN={replay[:100]}: no run manifest there nor at {path}: pass a run id kept in "
                            f"{runs_dir}/, or the path of a run-manifest.json (a CI artifact)") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise RunInputError(f"{path}: not a run manifest ({type(exc).__name__})") from None
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict) or not all(isinstance(v, dict) for v in services.values()):
        raise RunInputError(f"{path}: not a run manifest (no `services` object)")
    return cast(dict[str, Any], data)
