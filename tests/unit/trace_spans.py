"""OTLP/JSON spans shaped like the Pulumi CLI's trace export, for the tests of bench/trace.py."""

from __future__ import annotations

import json

SECOND = 1_000_000_000


RELEASE_URN = "urn:pulumi:local::testinfra::testinfra:index:TestJobRunnerRelease$kubernetes:helm.sh/v3:Release::{}"


def span(name: str, start: float, end: float, msg: str | None = None) -> dict:
    attributes = [{"key": "Msg", "value": {"stringValue": msg}}] if msg else []
    return {"name": name, "startTimeUnixNano": str(int(start * SECOND)), "endTimeUnixNano": str(int(end * SECOND)),
            "attributes": attributes}


def export(service: str, *spans: dict) -> str:
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {}, "spans": list(spans)}]}]})
