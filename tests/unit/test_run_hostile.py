"""`python -m runs.run` on hostile input: malformed or oversized outputs files, service names that
would be paths, pod logs of arbitrary bytes. Each is one message and exit 2 (or a failed case and
exit 1), never a traceback, never a file outside --junit-dir."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from clients import kubernetes
from runs import run as live_run
from runs.junit import extract

GOOD_SERVICE = {"cronJob": "test-graph", "job": "test-graph-abc", "timeoutSeconds": 100,
                "activeDeadlineSeconds": 220}


def outputs(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"schemaVersion": "1.0", "namespace": "integration-tests", "kubeContext": "ctx",
                            "services": {"graph": dict(GOOD_SERVICE)}}
    base.update(changes)
    return base


HOSTILE_OUTPUTS: list[tuple[str, bytes]] = [
    ("traversal-name", json.dumps(outputs(services={"../../x": GOOD_SERVICE})).encode()),
    ("absolute-name", json.dumps(outputs(services={"/tmp/owned": GOOD_SERVICE})).encode()),
    ("dot-name", json.dumps(outputs(services={"..": GOOD_SERVICE})).encode()),
    ("upper-name", json.dumps(outputs(services={"Graph": GOOD_SERVICE})).encode()),
    ("long-name", json.dumps(outputs(services={"a" * 64: GOOD_SERVICE})).encode()),
    ("empty-services", json.dumps(outputs(services={})).encode()),
    ("services-list", json.dumps(outputs(services=[GOOD_SERVICE])).encode()),
    ("service-null", json.dumps(outputs(services={"graph": None})).encode()),
    ("service-string", json.dumps(outputs(services={"graph": "x"})).encode()),
    ("cron-traversal", json.dumps(outputs(services={"graph": {**GOOD_SERVICE, "cronJob": "../x"}})).encode()),
    ("cron-missing", json.dumps(outputs(services={"graph": {"timeoutSeconds": 100}})).encode()),
    ("timeout-string", json.dumps(outputs(services={"graph": {**GOOD_SERVICE, "timeoutSeconds": "100"}})).encode()),
    ("timeout-huge", json.dumps(outputs(services={"graph": {**GOOD_SERVICE, "timeoutSeconds": 10**30}})).encode()),
    ("timeout-negative", json.dumps(outputs(services={"graph": {**GOOD_SERVICE, "timeoutSeconds": -1}})).encode()),
    ("deadline-float", json.dumps(outputs(services={"graph": {**GOOD_SERVICE, "activeDeadlineSeconds": 1.5}})).encode()),
    ("namespace-missing", json.dumps({k: v for k, v in outputs().items() if k != "namespace"}).encode()),
    ("namespace-bad", json.dumps(outputs(namespace="a/b")).encode()),
    ("context-number", json.dumps(outputs(kubeContext=7)).encode()),
    ("major-2", json.dumps(outputs(schemaVersion="2.0")).encode()),
    ("top-list", b"[1, 2]"),
    ("top-string", b'"services"'),
    ("not-json", b"{not json"),
    ("empty", b""),
    ("non-utf8", b'{"services": "\xff\xfe"}'),
    ("deep-json", b"[" * 100_000 + b"]" * 100_000),
    ("nan", b'{"services": NaN}'),
]


@pytest.mark.parametrize(("case", "text"), HOSTILE_OUTPUTS, ids=[c for c, _ in HOSTILE_OUTPUTS])
def test_a_malformed_outputs_file_is_one_message_and_exit_2(case: str, text: bytes, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "outputs.json"
    saved.write_bytes(text)
    junit = tmp_path / "junit"
    assert live_run.main(["--all", "--outputs", str(saved), "--junit-dir", str(junit)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("run: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["outputs.json"]  # nothing written anywhere


@pytest.mark.parametrize("version", ["2.0", "2.3", "10.1"])
def test_an_unsupported_major_says_so_not_a_field_error(version: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps(outputs(schemaVersion=version, futureField={"x": 1})))
    assert live_run.main(["--all", "--outputs", str(saved)]) == 2
    err = capsys.readouterr().err
    major = version.split(".")[0]
    assert f"major {major} is not supported by this reader; it reads 1.x" in err and "DNS label" not in err


def test_a_later_minor_with_fields_the_reader_does_not_know_is_read(tmp_path: Path) -> None:
    from config.outputs import read_file

    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps(outputs(schemaVersion="1.7", futureField={"x": 1})))
    assert read_file(saved).schema_version == "1.7"


def test_an_endless_outputs_file_is_refused_without_reading_it_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert live_run.main(["--all", "--outputs", "/dev/zero"]) == 2
    assert "larger than" in capsys.readouterr().err


def test_a_directory_as_outputs_is_one_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert live_run.main(["--all", "--outputs", str(tmp_path)]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_without_a_pulumi_cli_reading_a_stack_is_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert live_run.main(["graph", "--stack", "local"]) == 2
    err = capsys.readouterr().err
    assert "Pulumi CLI is not installed" in err and "Traceback" not in err


def test_pod_log_bytes_that_are_not_utf8_are_kept_not_fatal() -> None:
    cluster = object.__new__(kubernetes.ClientCluster)
    pod = SimpleNamespace(metadata=SimpleNamespace(name="p", creation_timestamp=1))
    asked: dict[str, Any] = {}

    def read_log(name: str, namespace: str, **kwargs: Any) -> Any:
        asked.update(kwargs)
        # What the client returns with _preload_content=False: a response read as a stream.
        return SimpleNamespace(stream=lambda size: iter([b"ok \xff\xfe\n--- BEGIN JUNIT x ---\n"]))

    cluster.core = SimpleNamespace(list_namespaced_pod=lambda *a, **k: SimpleNamespace(items=[pod]),
                                   read_namespaced_pod_log=read_log)
    log = cluster.pod_log("ns", "job")
    assert log is not None and log.startswith("ok \ufffd\ufffd")
    assert asked["_preload_content"] is False and "limit_bytes" not in asked  # the tail is kept, not the head


def test_the_logs_tail_is_kept_so_a_forged_pair_at_the_limit_cannot_hide_the_report(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A suite could once end its own BEGIN/END pair exactly at a head limit, and an honest suite that
    logged more than the limit lost its report. The last MAX_LOG_BYTES are kept instead."""
    monkeypatch.setattr(kubernetes, "MAX_LOG_BYTES", 4096)
    nonce = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    forged = f"--- BEGIN JUNIT {nonce} ---\n<testsuite name='g' tests='1'><testcase name='a'/></testsuite>\n" \
             f"--- END JUNIT {nonce} ---\n"
    real = "<testsuite name='g' tests='1'><testcase name='a'><failure message='x'/></testcase></testsuite>"
    padding = "x" * (4096 - len(forged)) + "\n"
    log = (padding + forged + "y" * 10_000 + "\n" + f"--- BEGIN JUNIT {nonce} ---\n{real}\n--- END JUNIT {nonce} ---\n")
    stream = SimpleNamespace(stream=lambda size: (log.encode()[i:i + size] for i in range(0, len(log), size)))
    pod = SimpleNamespace(metadata=SimpleNamespace(name="p", creation_timestamp=1))
    cluster = object.__new__(kubernetes.ClientCluster)
    cluster.core = SimpleNamespace(list_namespaced_pod=lambda *a, **k: SimpleNamespace(items=[pod]),
                                   read_namespaced_pod_log=lambda *a, **k: stream)
    kept = cluster.pod_log("ns", "job")
    assert kept is not None and len(kept) == 4096
    report = extract("graph", kept)
    assert (report.tests, report.failures, report.passed) == (1, 1, False)


def test_help_lists_exit_codes_and_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        live_run.main(["--help"])
    out = capsys.readouterr().out
    assert "exit status" in out and "KUBECONFIG" in out and "GITHUB_RUN_ID" in out


def test_verify_help_lists_exit_codes_and_environment(capsys: pytest.CaptureFixture[str]) -> None:
    from deploy import verify

    with pytest.raises(SystemExit):
        verify.main(["--help"])
    out = capsys.readouterr().out
    assert "exit status" in out and "VAULT_TOKEN" in out and "KUBECONFIG" in out
