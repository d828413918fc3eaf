"""The pull request's comment on its review environment, rendered from JUnit and outputs files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, TestCase, TestSuite

from ci import review_comment as summary


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
    assert text.index("threads") < text.index("| `agents` |")
    assert "- `threads` `case_2` (failure): `expected 200, got 503`" in text
    assert "- `graph`: not readable as JUnit" in text and "1 of 3 passed" in text


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
    assert text.startswith("<!-- testinfra:review-pr-7 -->\n### Review environment `pr-7`")
    assert "0 of 12 passed" in text.split("\n")[3] and text.endswith(summary.CUT)
    commands = summary.workflow_annotations(results)
    assert len(commands) == summary.ANNOTATIONS + 1 and commands[-1] == "::notice::230 more failing case(s): see " \
        "the pull request's comment"


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


def test_make_review_comment_writes_the_comment_and_annotates_in_a_workflow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    junit(tmp_path / "junit", "graph", 2, {"case_1": "boom,\n::add-mask::x 100%"})
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"schemaVersion": "1.0"}))
    out = tmp_path / "comment.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code = summary.main(["--pr", "7", "--junit-dir", str(tmp_path / "junit"), "--outputs", str(outputs),
                         "--baseline", str(outputs), "--out", str(out)])
    assert code == 0 and "boom" in out.read_text()
    printed = capsys.readouterr().out.splitlines()
    # One workflow command, every field escaped: the message cannot end the line or start another.
    assert "::error file=build/junit/graph.xml,title=graph%3A case_1::boom, ::add-mask::x 100%25" in printed
    assert not [line for line in printed if line.startswith("::add-mask::")]
    assert summary.main(["--pr", "7", "--junit-dir", str(tmp_path), "--outputs", str(tmp_path / "none.json"),
                         "--baseline", str(outputs)]) == 2
    assert summary.main(["--pr", "../staging", "--outputs", str(outputs), "--baseline", str(outputs)]) == 2


FORGERIES = {
    "heading": "x\n\n#### All suites passed\n",
    "mention": "ping @org/platform-team and @octocat",
    "link": "[click me](https://evil.example/) ![img](https://evil.example/p.png)",
    "html-comment": "<!-- everything after this is hidden",
    "html": "<img src=x onerror=alert(1)> <details><summary>ok</summary>",
    "table": "a | b | c",
    "backticks": "``` fenced ` `` ",
}


@pytest.mark.parametrize("field", ["name", "message", "suite"])
@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_nothing_a_pull_requests_code_writes_can_format_mention_link_or_hide(tmp_path: Path, field: str,
                                                                            forgery: str) -> None:
    """Case names, messages and suite (file) names go in as inline code spans: GitHub renders them as
    text. Checked with a CommonMark parser (markdown-it, GFM tables): no heading, link, image, HTML,
    mention-bearing text node or table cell comes from the suite's text."""
    from markdown_it import MarkdownIt

    text = FORGERIES[forgery]
    suite = "graph" if field != "suite" else "x" + "".join(c if c.isalnum() or c in "-_ " else "_" for c in text)
    case = TestSuite(suite)
    tc = TestCase(text if field == "name" else "case_0")
    tc.result = [Failure(text if field == "message" else "boom")]
    case.add_testcase(tc)
    xml = JUnitXml()
    xml.add_testsuite(case)
    xml.write(str(tmp_path / f"{suite}.xml"))
    rendered = summary.render("pr-7", summary.suite_results(tmp_path), [], "")
    tokens = MarkdownIt("commonmark").enable("table").parse(rendered)
    headings = [t for t in tokens if t.type == "heading_open"]
    assert [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"] == [
        "Review environment `pr-7`", "Failures"], rendered
    assert len(headings) == 2
    inline = [c for t in tokens if t.type == "inline" for c in (t.children or [])]
    assert not [c for c in inline if c.type in ("link_open", "image", "html_inline")], rendered
    assert not [t for t in tokens if t.type == "html_block" and "testinfra:" not in t.content], rendered
    # Free text (outside code spans) never carries what the suite wrote.
    free = " ".join(c.content for c in inline if c.type == "text")
    assert "@org" not in free and "@octocat" not in free and "evil" not in free, free
    rows = [t for t in tokens if t.type == "tr_open"]
    cells = [len([1 for t in tokens[i:] if t.type in ("td_open", "th_open")][:3]) for i, _ in enumerate(rows)]
    assert all(n == 3 for n in cells)


@pytest.mark.parametrize("where", ["name", "mid-message"])
def test_a_string_shaped_like_a_generated_secret_is_withheld_anywhere(tmp_path: Path, where: str) -> None:
    token = "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY"  # 32 letters and digits, as pulumi-random makes them
    text = f"expected the bearer token {token} to be accepted, got 401"
    junit(tmp_path, "graph", 1, {} if where == "name" else {"case_0": text})
    if where == "name":
        (tmp_path / "graph.xml").write_text(f'<testsuite name="graph"><testcase name="{text}">'
                                            '<failure message="x"/></testcase></testsuite>')
    rendered = summary.render("pr-7", summary.suite_results(tmp_path), [], "")
    assert token not in rendered and "withheld" in rendered
    assert token not in "\n".join(summary.workflow_annotations(summary.suite_results(tmp_path)))


def test_outputs_nested_5000_deep_are_one_message_not_a_traceback(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    junit(tmp_path / "junit", "graph", 1, {})
    code = summary.main(["--pr", "7", "--junit-dir", str(tmp_path / "junit"), "--outputs", str(deep),
                         "--baseline", str(deep), "--out", str(tmp_path / "c.md")])
    assert code == 2 and "cannot read the outputs (RecursionError" in capsys.readouterr().err
    nested: dict[str, object] = {}
    cursor = nested
    for _ in range(200):  # parsable, but deeper than any contract
        cursor["a"] = {}
        cursor = cursor["a"]  # type: ignore[assignment]
    changes = summary.outputs_changes(nested, json.loads(json.dumps(nested)))
    assert changes and "deeper than" in changes[0].detail


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
                         "--baseline", str(outputs), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| `graph` | `flaky` | `graph v4` | `sha256:eeeeeeeeeeee` | `1.1.0` |" in text
    assert "run `4711`" in text and "1 of 1 passed" in text
