"""bench/trace.py: the parts of a traced `pulumi up`, from an OTLP/JSON file shaped like the CLI's."""

from __future__ import annotations

from pathlib import Path

from bench.trace import breakdown
from tests.unit.trace_spans import RELEASE_URN, export, span


def test_overlapping_creates_are_summed_and_their_wall_clock_is_the_union(tmp_path: Path) -> None:
    create = "/pulumirpc.ResourceProvider/Create"

    def request(release: str) -> str:
        return '{"gRPC request":"urn:\\"' + RELEASE_URN.format(release) + '\\""}'

    path = tmp_path / "up.otel"
    path.write_text("\n".join([
        export("pulumi-cli", span("pulumi", 0, 10), span("run-program", 0.5, 9.5),
               span("pulumirpc.ResourceProvider/Create", 1, 4), span("pulumirpc.ResourceProvider/Create", 2, 5),
               span("pulumirpc.ResourceProvider/Create", 6, 7),  # the Vault key: no kubernetes span
               span("pulumirpc.Analyzer/Analyze", 1, 1.5), span("gocloud.dev/blob.Copy", 8, 9)),
        export("pulumi-resource-provider", span(create, 1, 4, request("graph")),
               span(create, 2, 5, request("threads"))),
    ]) + "\n")
    parts = breakdown(path)
    assert parts["wall"] == 10 and parts["program"] == 9
    assert parts["kubernetes"] == {"create kubernetes:helm.sh/v3:Release": {"n": 2, "sum": 6.0, "wall": 4.0}}
    assert parts["vault_random"] == 1.0 and parts["policy"] == 0.5 and parts["state"] == 1.0
    assert breakdown(path, min_seconds=7)["kubernetes"] == {}


def test_back_to_back_checkpoints_count_as_a_busy_loop_and_a_pause_does_not(tmp_path: Path) -> None:
    write = "gocloud.dev/blob.NewWriter"
    path = tmp_path / "up.otel"
    # Three writes 0.1 s apart (busy 1.0 -> 1.4 -> 1.8), a 3 s pause, then two more 0.2 s apart.
    path.write_text(export("pulumi-cli", span("pulumi", 0, 10), span(write, 1.0, 1.2), span(write, 1.3, 1.4),
                           span(write, 1.5, 1.8), span(write, 4.8, 5.0), span(write, 5.2, 5.5)) + "\n")
    parts = breakdown(path)
    assert parts["checkpoints"] == 5
    assert parts["checkpoint_loop_busy"] == 0.6 + 0.5
