"""What a pull request sees of its review environment: one comment, rendered from files.

Owns: the suites' results from their JUnit files (failures first, each failing case with its
message), the stack outputs' structural diff against staging's contract (a removed or retyped field
flagged as breaking), the link to the full JUnit files kept as a workflow artifact, and GitHub's
limits whatever the suites printed: the body at most 65,535 characters (cut from the end, the
summary kept). Everything a pull request's code can write (file names, case names, messages, the
outputs' keys, the run manifest) goes in as an inline code span, so it cannot format, mention,
link, hide or fake a heading; a name or message that looks like a credential, or holds a string
shaped like a generated value, is withheld, never quoted. The failing cases also become annotations
(GitHub's workflow commands, when run in a workflow: at most ANNOTATIONS).

Usage: python -m ci.review_comment --pr 7 [--junit-dir DIR] [--outputs FILE] [--baseline FILE]
       [--artifacts-url URL] [--out build/pr-comment.md]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci.github import MAX_COMMENT, marker
from config import cli
from config.credentials import credential_in, generated_shaped
from config.errors import TestinfraError
from config.naming import review_stack

ANNOTATIONS = 10  # GitHub shows at most 10 error annotations of one step
MAX_MESSAGE = 600  # of one failing case's message in the comment
MAX_NAME = 200  # of a case's or suite's name
MAX_DEPTH = 40  # of the outputs compared: a deeper document is not the contract
CUT = "\n\n_(cut here: GitHub's comment limit; the full JUnit files are in the artifact)_\n"


@dataclass(frozen=True)
class CaseResult:
    suite: str  # the JUnit file's name: the service
    name: str
    outcome: str  # failure | error
    message: str


@dataclass(frozen=True)
class SuiteResult:
    service: str
    tests: int
    failed: tuple[CaseResult, ...]
    problem: str | None = None  # the file could not be read as JUnit


def _withheld(flat: str, what: str) -> str | None:
    why = credential_in(what, flat)
    if why and why != "its name":
        return f"({what} withheld: it looks like a credential -- {why})"
    if generated_shaped(flat):
        return f"({what} withheld: it holds a string shaped like a generated secret)"
    return None


def _safe(text: str, limit: int = MAX_MESSAGE, what: str = "message") -> str:
    # Only what is shown is scanned (and a margin past the cut, so a credential cut in half is still
    # caught): the scan is costly on long texts, and the rest never reaches the comment.
    flat = " ".join(text[: limit * 4].split())
    withheld = _withheld(flat[: limit + 200], what)
    if withheld:
        return withheld
    return flat[:limit] + ("..." if len(flat) > limit else "")


def code(text: str, *, in_table: bool = False) -> str:
    """`text` as an inline code span: nothing in it formats, mentions, links or opens HTML (a fence
    longer than any run of backticks inside; `|` escaped where a table would split on it)."""
    flat = " ".join(text.split())
    if in_table:
        flat = flat.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if not flat or flat[0] == "`" or flat[-1] == "`" else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def read_suite(path: Path) -> SuiteResult:
    from junitparser import Error, Failure, JUnitXml, JUnitXmlError, TestSuite

    service = _safe(path.stem, MAX_NAME, "name")
    try:
        xml = JUnitXml.fromfile(str(path))
    # A broken file is a result of its own, never a crash (both XML parsers' errors are SyntaxErrors).
    except (SyntaxError, OSError, ValueError, JUnitXmlError) as exc:
        return SuiteResult(service, 0, (), f"not readable as JUnit ({type(exc).__name__})")
    failed, tests = [], 0
    parsed: Any = xml  # a file whose root is <testsuite> parses to a TestSuite, not the annotated JUnitXml
    for suite in [parsed] if isinstance(parsed, TestSuite) else list(parsed):
        for case in suite:
            tests += 1
            for result in case.result:
                if isinstance(result, Failure | Error):
                    outcome = "failure" if isinstance(result, Failure) else "error"
                    failed.append(CaseResult(service, _safe(case.name or "?", MAX_NAME, "name"), outcome,
                                             _safe(result.message or result.text or "")))
    return SuiteResult(service, tests, tuple(failed))


def suite_results(junit_dir: Path) -> list[SuiteResult]:
    results = [read_suite(p) for p in sorted(junit_dir.glob("*.xml")) if p.name != "all.xml"]
    return sorted(results, key=lambda r: (not (r.failed or r.problem), r.service))  # failures first


@dataclass(frozen=True)
class OutputChange:
    path: str
    change: str  # removed | retyped | added
    detail: str

    @property
    def breaking(self) -> bool:
        return self.change in ("removed", "retyped")


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)


def outputs_changes(baseline: Any, review: Any, path: str = "", depth: int = 0) -> list[OutputChange]:
    """The contract's shape, compared: names and types, never values (they differ per stack)."""
    if depth > MAX_DEPTH:
        return [OutputChange(path, "retyped", f"nested deeper than {MAX_DEPTH} levels: not the contract")]
    if _kind(baseline) != _kind(review):
        return [OutputChange(path or "(root)", "retyped", f"{_kind(baseline)} -> {_kind(review)}")]
    if isinstance(baseline, dict):
        changes = []
        # Per-service maps are keyed by name: a service only staging has is a removal there too.
        for key in sorted(set(baseline) | set(review)):
            where = f"{path}.{key}" if path else key
            if key not in review:
                changes.append(OutputChange(where, "removed", f"was {_kind(baseline[key])}"))
            elif key not in baseline:
                changes.append(OutputChange(where, "added", _kind(review[key])))
            else:
                changes += outputs_changes(baseline[key], review[key], where, depth + 1)
        return changes
    if isinstance(baseline, list) and baseline and review:
        return outputs_changes(baseline[0], review[0], f"{path}[]", depth + 1)
    return []


def provenance_rows(manifest: dict[str, Any]) -> list[str]:
    """What each suite ran with (from the run manifest): result and reason, Vault key versions, the
    image digest the pod ran, the chart version. Never a value: the manifest holds none."""
    services = manifest.get("services") if isinstance(manifest, dict) else None
    if not isinstance(services, dict) or not services:
        return []
    rows = ["", f"#### What each suite ran with (run {code(_safe(str(manifest.get('runId', '')), 80, 'run id'))})",
            "", "| suite | result | Vault key versions | image | chart |", "| --- | --- | --- | --- | --- |"]
    for name, rec in sorted(services.items())[:500]:
        if not isinstance(rec, dict):
            continue
        result = "flaky" if rec.get("flaky") else str(rec.get("reason", ""))
        keys = ", ".join(f"{str(k.get('path', '')).rpartition('/')[2]} v{k.get('version')}"
                         for k in (rec.get("keys") or [])[:50] if isinstance(k, dict)) or "none"
        digest = str(rec.get("imageId") or "").rpartition("@")[2] or "not recorded"
        cells = [_safe(str(name), MAX_NAME, "name"), _safe(result, 40, "result"), _safe(keys, 400, "keys"),
                 _safe(digest[:19], 19, "digest"), _safe(str(rec.get("chartVersion", "")), 20, "chart")]
        rows.append("| " + " | ".join(code(c, in_table=True) for c in cells) + " |")
    return rows


def render(stack: str, results: list[SuiteResult], changes: list[OutputChange], artifacts_url: str,
           manifest: dict[str, Any] | None = None) -> str:
    failing = [r for r in results if r.failed or r.problem]
    cases = sum(r.tests for r in results)
    breaking = [c for c in changes if c.breaking]
    head = [marker(f"review-{stack}"), f"### Review environment `{stack}`", "",
            f"**Suites:** {len(results) - len(failing)} of {len(results)} passed ({cases} test cases); "
            f"**outputs:** {len(breaking)} breaking change(s) against staging's contract."]
    if artifacts_url:
        head.append(f"Full JUnit files and the run-history page (`index.html`, `make report`): "
                    f"[workflow artifacts]({artifacts_url}).")
    body = ["", "#### Failures" if failing else "#### All suites passed"]
    for r in failing:
        if r.problem:
            body.append(f"- {code(r.service)}: {r.problem}")
        for case in r.failed:
            body.append(f"- {code(r.service)} {code(case.name)} ({case.outcome}): {code(case.message)}")
    if changes:
        body += ["", "#### Outputs against staging's contract"]
        body += [f"- {'**BREAKING** ' if c.breaking else ''}{code(_safe(c.path, MAX_NAME, 'name'))} {c.change}: "
                 f"{c.detail}" for c in changes[:500]]
    body += ["", "| suite | tests | failed |", "| --- | --- | --- |"]
    body += [f"| {code(r.service, in_table=True)} | {r.tests} | {len(r.failed) + (1 if r.problem else 0)} |"
             for r in results]
    body += provenance_rows(manifest or {})
    summary = "\n".join(head)
    text = summary + "\n".join(["", *body]) + "\n"
    if len(text) <= MAX_COMMENT:
        return text
    return text[: MAX_COMMENT - len(CUT)] + CUT


def _command_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _command_property(text: str) -> str:
    return _command_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_annotations(results: list[SuiteResult]) -> list[str]:
    """GitHub's workflow commands for the first failing cases: each one line, every field escaped as
    the commands' rules say, so a case's text can neither end the line nor start another command."""
    failed = [c for r in results for c in r.failed]
    lines = [f"::error file={_command_property(f'build/junit/{c.suite}.xml')},"
             f"title={_command_property(f'{c.suite}: {c.name}'[:255])}::{_command_data(c.message or c.outcome)}"
             for c in failed[:ANNOTATIONS]]
    if len(failed) > ANNOTATIONS:
        lines.append(f"::notice::{len(failed) - ANNOTATIONS} more failing case(s): see the pull request's comment")
    return lines


class ReviewCommentError(TestinfraError):
    """The comment cannot be made from these files; the message says which and why."""


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("ci.review_comment", __doc__)
    ap.add_argument("--pr", required=True, help="the pull request number")
    ap.add_argument("--junit-dir", type=Path, default=Path("build/junit"))
    ap.add_argument("--outputs", type=Path, help="the review stack's outputs (default build/outputs-pr-<n>.json)")
    ap.add_argument("--baseline", type=Path, default=Path("build/outputs-staging.json"),
                    help="staging's outputs (the contract compared with)")
    ap.add_argument("--artifacts-url", default="")
    ap.add_argument("--out", type=Path, default=Path("build/pr-comment.md"))
    args = ap.parse_args(argv)
    return cli.run("review-comment", lambda: write_comment(args))


def write_comment(args: argparse.Namespace) -> int:
    try:
        stack = review_stack(args.pr)
    except ValueError as exc:
        raise ReviewCommentError(str(exc)) from None
    outputs = args.outputs or Path(f"build/outputs-{stack}.json")
    try:
        review, baseline = (json.loads(p.read_text()) for p in (outputs, args.baseline))
    except (OSError, ValueError, RecursionError) as exc:
        raise ReviewCommentError(f"cannot read the outputs ({type(exc).__name__}: {str(exc)[:200]})") from None
    results = suite_results(args.junit_dir)
    try:
        manifest = json.loads((args.junit_dir / "run-manifest.json").read_text())
    except (OSError, ValueError, RecursionError):
        manifest = None  # suites run by an older runner, or none: the comment goes without provenance
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(stack, results, outputs_changes(baseline, review), args.artifacts_url, manifest))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print("\n".join(workflow_annotations(results)))
    failed = any(r.failed or r.problem for r in results)
    print(f"review-comment: {args.out} ({len(results)} suites{', failures' if failed else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
