"""Every run as an OpenTelemetry trace (runs/telemetry.py): the OTLP/JSON file parsed with the
OpenTelemetry proto package as a collector would read it, its spans checked against the CI/CD and
test semantic conventions."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from runs import telemetry
from runs.junit import extract
from tests.unit.fakes import FAILING, PASSING, PHASE_SECONDS, RUN_MANIFEST


def parsed(path: Path) -> list[Span]:
    """The file as an OTLP receiver reads it: OTLP/JSON's hex ids back to protobuf's bytes."""
    document = json.loads(path.read_text())
    for resource in document["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        assert len(span[key]) in (16, 32) and int(span[key], 16) >= 0  # hex, as OTLP/JSON says
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    request = ParseDict(document, ExportTraceServiceRequest())
    return [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]


def attributes(span: Span) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        values[kv.key] = getattr(kv.value, kind)
    return values


def written(tmp_path: Path) -> list[Span]:
    reports = {"graph": extract("graph", PASSING).xml, "threads": extract("threads", FAILING).xml}
    [path] = telemetry.write(RUN_MANIFEST, reports, [tmp_path])
    assert path.name == "run-trace.otlp.json"
    return parsed(path)


def test_one_pipeline_span_holds_a_task_span_per_service_with_the_cicd_result(tmp_path: Path) -> None:
    spans = written(tmp_path)
    assert len({s.trace_id for s in spans}) == 1
    [root] = [s for s in spans if not s.parent_span_id]
    assert attributes(root)["cicd.pipeline.run.id"] == "ci-4711"
    assert attributes(root)["cicd.pipeline.result"] == "error"  # a secret's failure outranks a suite's
    assert root.status.code == Status.STATUS_CODE_ERROR
    tasks = {attributes(s)["cicd.pipeline.task.name"]: s for s in spans if s.parent_span_id == root.span_id}
    assert set(tasks) == {"graph", "threads", "agents"}
    results = {name: attributes(s)["cicd.pipeline.task.run.result"] for name, s in tasks.items()}
    assert results == {"graph": "success", "threads": "failure", "agents": "error"}
    assert attributes(tasks["agents"])["error.type"] == "SECRET_MISSING"
    assert "error.type" not in attributes(tasks["threads"])  # a suite's own failure is no error
    assert tasks["graph"].status.code == Status.STATUS_CODE_UNSET
    assert attributes(tasks["graph"])["cicd.pipeline.task.run.id"] == "test-graph-1"
    assert attributes(tasks["graph"])["testinfra.vault.secret/integration/graph/token.version"] == 3
    assert root.start_time_unix_nano <= min(s.start_time_unix_nano for s in spans)
    assert root.end_time_unix_nano >= max(s.end_time_unix_nano for s in spans)


def test_phases_and_test_cases_are_children_of_their_task(tmp_path: Path) -> None:
    spans = written(tmp_path)
    graph = next(s for s in spans if attributes(s).get("cicd.pipeline.task.name") == "graph")
    children = [s for s in spans if s.parent_span_id == graph.span_id]
    phases = [s for s in children if "testinfra.phase" in attributes(s)]
    assert [attributes(s)["testinfra.phase"] for s in phases] == list(PHASE_SECONDS)
    assert sum(s.end_time_unix_nano - s.start_time_unix_nano for s in phases) == \
        graph.end_time_unix_nano - graph.start_time_unix_nano == 12_000_000_000
    cases = [s for s in children if "test.case.name" in attributes(s)]
    assert sorted(attributes(s)["test.case.name"] for s in cases) == ["a", "b"]
    assert {attributes(s)["test.case.result.status"] for s in cases} == {"pass"}
    first_case = min(s.start_time_unix_nano for s in cases)
    assert first_case == graph.start_time_unix_nano + 4_000_000_000  # the end of the suiteStarted phase
    threads = next(s for s in spans if attributes(s).get("cicd.pipeline.task.name") == "threads")
    failed = [s for s in spans if s.parent_span_id == threads.span_id and
              attributes(s).get("test.case.result.status") == "fail"]
    assert [attributes(s)["test.case.name"] for s in failed] == ["b"]
    assert failed[0].status.code == Status.STATUS_CODE_ERROR


def test_a_run_that_never_started_a_suite_still_has_its_task(tmp_path: Path) -> None:
    spans = written(tmp_path)
    agents = next(s for s in spans if attributes(s).get("cicd.pipeline.task.name") == "agents")
    assert not [s for s in spans if s.parent_span_id == agents.span_id]


def test_without_an_endpoint_nothing_is_sent(monkeypatch: Any) -> None:
    for name in telemetry.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert telemetry.configured_endpoint() is None
    assert telemetry.send(RUN_MANIFEST, {}) == "no OTLP endpoint configured"
