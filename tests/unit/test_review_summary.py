"""The pull request's comment on its review environment, rendered from JUnit and outputs files."""

from __future__ import annotations

import json
from pathlib import Path

from junitparser import Failure, JUnitXml, TestCase, TestSuite

from live import review_summary as summary


def junit(directory: Path, service: str, cases: int, failing: dict[str, str]) -> None:
    suite = TestSuite(service)
    for i in range(cases):
        case = TestCase(f"case_{i}")
        if case.name in failing:
            case.result = [Failure(failing[case.name])]
        suite.add_testcase(case)
    xml = JUnitXml()
    xml.add_testsuite(suite)
    directory.mkdir(parents=True, exist_ok=True)
    xml.write(str(directory / f"{service}.xml"))


def test_failures_come_first_each_failing_case_with_its_message(tmp_path: Path) -> None:
    junit(tmp_path, "agents", 3, {})
    junit(tmp_path, "threads", 4, {"case_2": "expected 200, got 503"})
    (tmp_path / "graph.xml").write_text("<not junit")
    results = summary.suite_results(tmp_path)
    assert [r.service for r in results] == ["graph", "threads", "agents"]
    text = summary.render("pr-7", results, [], "https://example.invalid/run/1")
    assert text.index("threads") < text.index("| agents |")
    assert "**threads** `case_2` (failure): expected 200, got 503" in text
    assert "**graph**: not readable as JUnit" in text and "1 of 3 passed" in text


def test_a_message_that_looks_like_a_credential_is_withheld(tmp_path: Path) -> None:
    leaked = "connect postgres://app:hunter2@db:5432/x refused"
    junit(tmp_path, "graph", 1, {"case_0": leaked})
    text = summary.render("pr-7", summary.suite_results(tmp_path), [], "")
    assert "hunter2" not in text and "withheld" in text


def test_the_comment_fits_githubs_limit_whatever_the_suites_print(tmp_path: Path) -> None:
    for n in range(12):  # 240 failing cases of long messages: ~160,000 characters before the cut
        junit(tmp_path, f"svc{n:02}", 20, {f"case_{i}": "x" * 1000 for i in range(20)})
    results = summary.suite_results(tmp_path)
    text = summary.render("pr-7", results, [], "https://example.invalid/run/1")
    assert len(text) <= summary.MAX_COMMENT
    assert text.startswith("### Review environment `pr-7`") and "0 of 12 passed" in text.split("\n")[2]
    assert text.endswith(summary.CUT)
    batches = summary.check_annotations(results)
    assert sum(len(b) for b in batches) == 12 * 20 and max(len(b) for b in batches) == summary.ANNOTATIONS_PER_REQUEST


def test_a_removed_or_retyped_output_is_flagged_breaking_and_values_are_not_compared() -> None:
    staging = {"schemaVersion": "1.0", "namespace": "integration-tests",
               "services": {"graph": {"job": "a", "timeoutSeconds": 600, "vaultKeys": ["x"]}}}
    review = {"schemaVersion": "1.0", "namespace": "integration-tests-pr-7", "extra": True,
              "services": {"graph": {"job": "b", "timeoutSeconds": "600", "vaultKeys": []}}}
    changes = {c.path: c for c in summary.outputs_changes(staging, review)}
    assert changes["services.graph.timeoutSeconds"].change == "retyped" and changes["services.graph.timeoutSeconds"].breaking
    assert changes["extra"].change == "added" and not changes["extra"].breaking
    assert "namespace" not in changes and "services.graph.job" not in changes
    del review["services"]["graph"]["job"]
    removed = [c for c in summary.outputs_changes(staging, review) if c.change == "removed"]
    assert [c.path for c in removed] == ["services.graph.job"]
    text = summary.render("pr-7", [], removed, "")
    assert "**BREAKING** `services.graph.job` removed" in text


def test_make_review_comment_writes_the_comment_and_the_annotation_batches(tmp_path: Path) -> None:
    junit(tmp_path / "junit", "graph", 2, {"case_1": "boom"})
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"schemaVersion": "1.0"}))
    out, notes = tmp_path / "comment.md", tmp_path / "annotations.json"
    code = summary.main(["--pr", "7", "--junit-dir", str(tmp_path / "junit"), "--outputs", str(outputs),
                         "--baseline", str(outputs), "--out", str(out), "--annotations-out", str(notes)])
    assert code == 0 and "boom" in out.read_text()
    assert json.loads(notes.read_text())[0][0]["title"] == "graph: case_1"
    assert summary.main(["--pr", "7", "--junit-dir", str(tmp_path), "--outputs", str(tmp_path / "none.json"),
                         "--baseline", str(outputs)]) == 2
    assert summary.main(["--pr", "../staging", "--outputs", str(outputs), "--baseline", str(outputs)]) == 2


def test_the_comment_says_what_each_suite_ran_with_from_the_run_manifest(tmp_path: Path) -> None:
    junit(tmp_path / "junit", "graph", 2, {})
    junit(tmp_path / "junit", "all", 2, {})  # the merged report is not a suite of its own
    manifest = {"runId": "4711", "services": {"graph": {
        "reason": "PASSED", "flaky": True, "chartVersion": "1.1.0",
        "imageId": "registry.test/suite@sha256:" + "e" * 64,
        "keys": [{"path": "secret/integration/pr-7/graph", "version": 4, "createdTime": "t", "owner": "o"}]}}}
    (tmp_path / "junit" / "run-manifest.json").write_text(json.dumps(manifest))
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"schemaVersion": "1.1"}))
    out = tmp_path / "comment.md"
    assert summary.main(["--pr", "7", "--junit-dir", str(tmp_path / "junit"), "--outputs", str(outputs),
                         "--baseline", str(outputs), "--out", str(out),
                         "--annotations-out", str(tmp_path / "a.json")]) == 0
    text = out.read_text()
    assert "| graph | flaky | `graph` v4 | `sha256:eeeeeeeeeeee` | 1.1.0 |" in text
    assert "run `4711`" in text and "1 of 1 passed" in text
