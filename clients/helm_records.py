"""What Helm itself recorded of a release: read from its storage Secrets, never from their labels.

Helm v3/v4 keep each revision of a release in a Secret of type `helm.sh/release.v1` whose
`data.release` is the release as JSON, gzipped and base64-encoded (and base64 again by the API).
Labels (`owner=helm`, `status`, `version`) are conveniences anyone who may write a Secret can set;
`make recover` adopting a release and `make verify` calling it deployed read the decoded record.
Decoding is bounded: a record is at most MAX_RECORD_BYTES once decompressed.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from config.errors import EnvironmentProblem

SECRET_TYPE = "helm.sh/release.v1"
MAX_RECORD_BYTES = 32 * 2**20  # Helm refuses a release over 1 MiB of manifests; its JSON stays well below this
GZIP_MAGIC = b"\x1f\x8b"


class HelmRecordError(EnvironmentProblem):
    """A Secret that claims to be Helm's record of a release is not one."""


@dataclass(frozen=True)
class ReleaseRecord:
    name: str
    revision: int
    status: str  # deployed | failed | superseded | pending-install | pending-upgrade | ...
    config: Mapping[str, Any] = field(default_factory=dict)  # the values the installer gave (Helm's `config`)


def decode(secret_name: str, release_field: str) -> ReleaseRecord:
    """The release of one storage Secret's `data.release` (as the API returns it: base64)."""
    def bad(why: str) -> HelmRecordError:
        return HelmRecordError(f"Secret {secret_name[:253]} (type {SECRET_TYPE}) is not a Helm release record: "
                               f"{why}; remove it or restore it from Helm's history")

    try:
        encoded = base64.b64decode(release_field, validate=True)
        packed = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise bad("data.release is not base64") from None
    if packed[:2] == GZIP_MAGIC:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(packed, MAX_RECORD_BYTES + 1)
        except zlib.error:
            raise bad("data.release is not gzip") from None
        if len(raw) > MAX_RECORD_BYTES or inflater.unconsumed_tail:
            raise bad(f"larger than {MAX_RECORD_BYTES // 2**20} MiB once decompressed")
    else:
        raw = packed
    try:
        release: Any = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad("data.release is not JSON") from None
    info = release.get("info") if isinstance(release, dict) else None
    name, revision = (release.get("name"), release.get("version")) if isinstance(release, dict) else (None, None)
    status = info.get("status") if isinstance(info, dict) else None
    if not isinstance(name, str) or not name or type(revision) is not int or not isinstance(status, str):
        raise bad("no name, version and info.status")
    config = release.get("config")
    return ReleaseRecord(name[:253], revision, status[:40], config if isinstance(config, dict) else {})


def latest(secrets: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Release name -> the status Helm recorded for its newest revision, from the namespace's Secrets
    (as dicts, the API's form). Secrets of another type are not Helm's and are passed over."""
    return {name: record.status for name, record in newest_records(secrets).items()}


def newest_records(secrets: Iterable[Mapping[str, Any]]) -> dict[str, ReleaseRecord]:
    """Release name -> Helm's record of its newest revision."""
    newest: dict[str, ReleaseRecord] = {}
    for secret in secrets:
        if secret.get("type") != SECRET_TYPE:
            continue
        name = str((secret.get("metadata") or {}).get("name") or "")
        encoded = (secret.get("data") or {}).get("release")
        if not isinstance(encoded, str):
            raise HelmRecordError(f"Secret {name[:253]} (type {SECRET_TYPE}) has no data.release")
        record = decode(name, encoded)
        if record.name not in newest or record.revision >= newest[record.name].revision:
            newest[record.name] = record
    return newest
