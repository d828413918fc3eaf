"""Every run as an OpenTelemetry trace: an OTLP/JSON file beside the run manifest, and, when an OTLP
endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or `..._TRACES_ENDPOINT`, the SDK's own
variables), the same spans sent there over OTLP/gRPC.

Owns the trace's shape. One pipeline-run span; under it a task span per service whose result follows
the CI/CD semantic conventions (`success`; a suite's failure is `failure`; a secret's or the
infrastructure's is `error`, its reason code as `error.type`); under each task its phases
(runs/phases.py) and its test cases (`test.case.name`, `test.case.result.status`), laid end to end
from the suite's start. Attribute names are the semantic-conventions package's constants; spans are
made by the OpenTelemetry SDK and encoded by its OTLP encoder, so the file is what an exporter sends.
The file follows OTLP/JSON: protobuf's JSON mapping with trace and span ids as hex, enums as numbers.
No value of a secret is in it: names, versions, reasons and times only.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from junitparser import Error, Failure, JUnitXml, Skipped
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import cicd_attributes as cicd
from opentelemetry.semconv._incubating.attributes import test_attributes as test
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import Status, StatusCode

from config.times import timestamp
from runs.phases import PHASES

TRACE_NAME = "run-trace.otlp.json"
INSTRUMENTATION = "testinfra.runs"
SERVICE = "testinfra-integration-runs"
TASK_RESULT = {  # the run's cause (runs/classify.py) -> cicd.pipeline.task.run.result
    "passed": cicd.CicdPipelineTaskRunResultValues.SUCCESS.value,
    "suite": cicd.CicdPipelineTaskRunResultValues.FAILURE.value,
    "secret": cicd.CicdPipelineTaskRunResultValues.ERROR.value,
    "infrastructure": cicd.CicdPipelineTaskRunResultValues.ERROR.value,
}
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def _case_status(case: Any) -> str:
    results = case.result
    if any(isinstance(r, Failure | Error) for r in results):
        return test.TestCaseResultStatusValues.FAIL.value
    if any(isinstance(r, Skipped) for r in results):
        return "skipped"  # the conventions name only pass and fail
    return test.TestCaseResultStatusValues.PASS.value


def pipeline_result(causes: list[str]) -> str:
    """The run's result: error when the secret or the infrastructure failed any suite, else failure
    when a suite failed, else success (the order runs/classify.py gives exit codes)."""
    if any(TASK_RESULT.get(c) == cicd.CicdPipelineResultValues.ERROR.value for c in causes):
        return cicd.CicdPipelineResultValues.ERROR.value
    if any(c == "suite" for c in causes):
        return cicd.CicdPipelineResultValues.FAILURE.value
    return cicd.CicdPipelineResultValues.SUCCESS.value


class _Trace:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({SERVICE_NAME: SERVICE}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer(INSTRUMENTATION)

    def span(self, name: str, parent: trace.Span | None, start: datetime, end: datetime,
             attributes: Mapping[str, Any], status: Status | None = None) -> trace.Span:
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(name, context=context, start_time=_ns(start), attributes=dict(attributes))
        if status is not None:
            span.set_status(status)
        span.end(end_time=_ns(max(end, start)))
        return span


def run_spans(manifest: Mapping[str, Any], reports: Mapping[str, JUnitXml]) -> list[ReadableSpan]:
    """The spans of one run from its manifest (run-manifest.json) and its services' JUnit reports."""
    out = _Trace()
    services: Mapping[str, Any] = manifest.get("services") or {}
    run_start = timestamp(str(manifest.get("startedAt") or ""))
    run_end = timestamp(str(manifest.get("finishedAt") or "")) or run_start
    if run_start is None or run_end is None:
        raise ValueError("a run manifest without startedAt")
    windows = {name: _window(record) for name, record in services.items()}
    start = min([run_start, *(w[0] for w in windows.values() if w)])
    end = max([run_end, *(w[1] for w in windows.values() if w)])
    causes = [str(r.get("cause") or "") for r in services.values()]
    result = pipeline_result(causes)
    stack = str(manifest.get("stack") or manifest.get("namespace") or "")
    # A span is ended once: the root is started first and ended last, so children can name it.
    root = out.tracer.start_span(f"integration tests {stack}".strip(), start_time=_ns(start), attributes={
        cicd.CICD_PIPELINE_NAME: f"integration-tests/{stack}", cicd.CICD_PIPELINE_RUN_ID: str(manifest.get("runId")),
        cicd.CICD_PIPELINE_RESULT: result, "testinfra.caller": str(manifest.get("caller") or ""),
        "testinfra.exit_code": int(manifest.get("exitCode") or 0)})
    if result != cicd.CicdPipelineResultValues.SUCCESS.value:
        root.set_status(Status(StatusCode.ERROR, f"exit {manifest.get('exitCode')}"))
    for name, record in sorted(services.items()):
        window = windows[name] or (start, start)
        _task(out, root, name, record, window, reports.get(name))
    root.end(end_time=_ns(end))
    out.provider.shutdown()
    return list(out.exporter.get_finished_spans())


def _phase_times(record: Mapping[str, Any]) -> list[tuple[str, datetime, datetime]]:
    """The record's phases laid end to end from its start: (phase, began, ended), in order."""
    phases = record.get("phases") or {}
    moment = timestamp(str(phases.get("startedAt") or ""))
    if moment is None:
        return []
    laid = []
    for phase in PHASES:
        if phase in (phases.get("seconds") or {}):
            ended = moment + timedelta(seconds=float(phases["seconds"][phase]))
            laid.append((phase, moment, ended))
            moment = ended
    return laid


def _window(record: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    laid = _phase_times(record)
    return (laid[0][1], laid[-1][2]) if laid else None


def _task(out: _Trace, root: trace.Span, service: str, record: Mapping[str, Any],
          window: tuple[datetime, datetime], report: JUnitXml | None) -> None:
    cause, reason = str(record.get("cause") or ""), str(record.get("reason") or "")
    attempts = record.get("attempts") or []
    attributes: dict[str, Any] = {
        cicd.CICD_PIPELINE_TASK_NAME: service, cicd.CICD_PIPELINE_TASK_TYPE: cicd.CicdPipelineTaskTypeValues.TEST.value,
        cicd.CICD_PIPELINE_TASK_RUN_ID: str(attempts[-1]["job"]) if attempts else "",
        cicd.CICD_PIPELINE_TASK_RUN_RESULT: TASK_RESULT.get(cause, cicd.CicdPipelineTaskRunResultValues.ERROR.value),
        "testinfra.reason": reason, "testinfra.flaky": bool(record.get("flaky")), "testinfra.attempts": len(attempts),
        "testinfra.image.id": str(record.get("imageId") or ""), "testinfra.chart.version": str(record.get("chartVersion") or "")}
    status = None
    if cause != "passed":
        status = Status(StatusCode.ERROR, reason)
        if TASK_RESULT.get(cause) == cicd.CicdPipelineTaskRunResultValues.ERROR.value:
            attributes[error_attributes.ERROR_TYPE] = reason
    for key in record.get("keys") or []:
        attributes[f"testinfra.vault.{key['path']}.version"] = int(key["version"])
    task = out.tracer.start_span(service, context=trace.set_span_in_context(root), start_time=_ns(window[0]),
                                 attributes=attributes)
    if status is not None:
        task.set_status(status)
    laid = _phase_times(record)
    for phase, began, ended in laid:
        out.span(f"phase {phase}", task, began, ended, {"testinfra.phase": phase})
    if report is not None:
        # The cases run from the suite's own start (the end of the phase its report's timestamp closes).
        suite_start = next((ended for phase, _, ended in laid if phase == "suiteStarted"), window[0])
        for suite in report:
            for case in suite:
                ends = suite_start + timedelta(seconds=float(case.time or 0))
                case_status = _case_status(case)
                out.span(f"{case.classname}.{case.name}" if case.classname else str(case.name), task, suite_start,
                         ends, {test.TEST_SUITE_NAME: str(suite.name or service),
                                test.TEST_CASE_NAME: f"{case.classname}.{case.name}" if case.classname else str(case.name),
                                test.TEST_CASE_RESULT_STATUS: case_status},
                         Status(StatusCode.ERROR, case_status) if case_status == "fail" else None)
                suite_start = ends
    task.end(end_time=_ns(max(window[1], window[0])))


def otlp_json(spans: list[ReadableSpan]) -> dict[str, Any]:
    """The spans as an OTLP/JSON ExportTraceServiceRequest (ids hex, as OTLP/JSON requires)."""
    document: dict[str, Any] = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource in document.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return document


def write(manifest: Mapping[str, Any], reports: Mapping[str, JUnitXml], folders: list[Path]) -> list[Path]:
    """The run's trace as `run-trace.otlp.json` in each folder given (the JUnit folder, the run's own)."""
    spans = run_spans(manifest, reports)
    text = json.dumps(otlp_json(spans), indent=1, sort_keys=True) + "\n"
    written = []
    for folder in folders:
        path = folder / TRACE_NAME
        path.write_text(text)
        written.append(path)
    return written


def configured_endpoint(environ: Mapping[str, str] = os.environ) -> str | None:
    return next((environ[v] for v in ENDPOINT_VARIABLES if environ.get(v)), None)


def send(manifest: Mapping[str, Any], reports: Mapping[str, JUnitXml], *, timeout_s: float = 10.0) -> str:
    """Sends the run's spans to the configured OTLP endpoint; one line saying how it went (a failed
    export never changes the run's result)."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    endpoint = configured_endpoint()
    if endpoint is None:
        return "no OTLP endpoint configured"
    exporter = OTLPSpanExporter(timeout=timeout_s)
    try:
        result = exporter.export(run_spans(manifest, reports))
    finally:
        exporter.shutdown()
    if result is SpanExportResult.SUCCESS:
        return f"trace sent to {endpoint[:200]}"
    return f"the trace could not be sent to {endpoint[:200]} (the OTLP/JSON file has it)"
