"""Times as Vault and Kubernetes write them (RFC 3339: Vault's to the nanosecond, the API server's to the
second), read as aware datetimes: one parser for the runs' provenance and the drift check."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_FRACTION = re.compile(r"\.(\d+)")


def timestamp(text: str | None) -> datetime | None:
    """Vault's nanosecond and Kubernetes' second RFC 3339 times as aware datetimes (None if absent)."""
    if not text:
        return None
    cleaned = _FRACTION.sub(lambda m: "." + m[1][:6].ljust(6, "0"), text.strip()).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
