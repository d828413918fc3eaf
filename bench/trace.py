"""Where a `pulumi up`/`preview` spends its time, from the CLI's OpenTelemetry trace
(`pulumi up --otel-traces file://<path>`): one JSON object of seconds per part.

- wall: the whole command; program: the Python program running (it overlaps everything: it
  registers resources while the engine works on earlier ones);
- create/update/diff per kubernetes resource type (the kubernetes provider's own spans carry the
  URN): summed over resources, and the wall-clock time during which any was in progress;
- vault_random: creates/updates by the other providers (the CLI's spans minus the kubernetes ones);
- policy: the policy pack's Analyze/Remediate calls; state: writing the state (the blob calls);
- checkpoints / checkpoint_loop_busy: how many state writes, and the time during which they ran back
  to back (less than 0.5 s apart). The engine persists one mutation at a time and a step waits for
  its own, so when the loop is busy for most of the wall, checkpoints bound the command, whatever the
  program and the providers do.

    python -m bench.trace build/bench/up-100.otel
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_URN_TYPE = re.compile(r'urn:pulumi:[^:]+::[^:]+::(?:[^"\\]*\$)?([^"\\$:]+:[^"\\]*?)::')
_OPERATIONS = {"Create": "create", "Update": "update", "Diff": "diff", "Delete": "delete"}


def spans(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(service name, span) of every span in an OTLP/JSON file (one export request per line)."""
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        for resource_spans in json.loads(line).get("resourceSpans", []):
            attributes = resource_spans.get("resource", {}).get("attributes", [])
            service = next((a["value"].get("stringValue", "") for a in attributes if a["key"] == "service.name"), "")
            for scope in resource_spans.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    yield service, span


def _interval(span: dict[str, Any]) -> tuple[float, float]:
    return int(span["startTimeUnixNano"]) / 1e9, int(span["endTimeUnixNano"]) / 1e9


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def breakdown(path: Path, *, min_seconds: float = 0.0) -> dict[str, Any]:
    """The parts of one traced command; kubernetes types whose summed time is below `min_seconds`
    are left out."""
    busy: dict[str, float] = defaultdict(float)
    windows: dict[str, list[tuple[float, float]]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    cli_provider_ops = 0.0
    writes: list[tuple[float, float]] = []
    out: dict[str, Any] = {}
    for service, span in spans(path):
        name = span["name"]
        start, stop = _interval(span)
        if service == "pulumi-cli":
            if name == "pulumi":
                out["wall"] = stop - start
            elif name == "run-program":
                out["program"] = stop - start
            elif name.startswith("pulumirpc.Analyzer/") and name.rsplit("/", 1)[1] in ("Analyze", "Remediate",
                                                                                      "AnalyzeStack"):
                busy["policy"] += stop - start
            elif name.startswith("gocloud.dev/blob."):
                busy["state"] += stop - start
                if name == "gocloud.dev/blob.NewWriter":
                    writes.append((start, stop))
            elif name.rsplit("/", 1)[-1] in ("Create", "Update", "Delete") and "ResourceProvider" in name:
                cli_provider_ops += stop - start
        elif name.startswith("/pulumirpc.ResourceProvider/") and name.rsplit("/", 1)[1] in _OPERATIONS:
            text = " ".join(str(a.get("value", "")) for a in span.get("attributes", []))
            match = _URN_TYPE.search(text)
            kind = f"{_OPERATIONS[name.rsplit('/', 1)[1]]} {match.group(1) if match else 'unknown'}"
            busy[kind] += stop - start
            windows[kind].append((start, stop))
            counts[kind] += 1
    kubernetes_ops = sum(v for k, v in busy.items() if k.split(" ", 1)[0] in ("create", "update", "delete"))
    out["vault_random"] = max(cli_provider_ops - kubernetes_ops, 0.0)
    out["kubernetes"] = {k: {"n": counts[k], "sum": round(busy[k], 2), "wall": round(_union(windows[k]), 2)}
                         for k in sorted(windows) if busy[k] >= min_seconds}
    out["policy"], out["state"] = busy["policy"], busy["state"]
    writes.sort()
    out["checkpoints"] = len(writes)
    out["checkpoint_loop_busy"] = sum(b[1] - a[1] for a, b in zip(writes, writes[1:], strict=False) if b[0] - a[1] < 0.5)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


if __name__ == "__main__":
    print(json.dumps(breakdown(Path(sys.argv[1])), indent=2))
