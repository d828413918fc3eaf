"""A run's spans sent to an OTLP endpoint (runs/telemetry.py `send`): a real OTLP/gRPC receiver
(grpc with the OpenTelemetry proto package's TraceService) started on loopback by the test, and an
endpoint nobody serves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from runs import telemetry
from tests.unit.fakes import RUN_MANIFEST


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(self, request: Any, context: Any) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = Receiver()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(grace=None)


def test_the_runs_spans_reach_the_configured_endpoint(receiver: tuple[Receiver, int],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    servicer, port = receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    assert telemetry.send(RUN_MANIFEST, {}) == f"trace sent to http://127.0.0.1:{port}"
    spans = [s for r in servicer.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert sorted(s.name for s in spans if not s.parent_span_id) == ["integration tests staging"]
    assert len([s for s in spans if s.name in ("graph", "threads", "agents")]) == 3


def test_an_endpoint_nobody_serves_costs_a_line_and_a_bounded_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing answers there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    began = time.monotonic()
    line = telemetry.send(RUN_MANIFEST, {}, timeout_s=2.0)
    assert line.startswith(f"the trace could not be sent to http://127.0.0.1:{port}")
    assert time.monotonic() - began < 15
