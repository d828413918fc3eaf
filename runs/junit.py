"""JUnit reports of suite runs: taken from a suite's log, and merged for `runs.run --all`.

Owns: finding the report the chart's wrapper prints after the suite has exited, parsing it with
junitparser, and turning a missing, truncated, forged or broken report into a failed test case of its
own (a run is never silently dropped from the merged report).

The rule a suite's own output cannot forge: once the suite has exited, the wrapper draws a fresh
random nonce (`/proc/sys/kernel/random/uuid`) and prints `--- BEGIN JUNIT <nonce> ---`, the report
file, and `--- END JUNIT <nonce> ---` as the log's last line. Only that pair counts: the last line
must be an END marker, and the report is what stands between it and the one BEGIN marker with the
same nonce. The suite never saw the nonce, so a report it printed itself (in a test's message, or a
second one) is just log text. Failures a report declares only as `<testsuite>` attributes count.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

from runs.classify import Verdict

NONCE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
END = re.compile(rf"^--- END JUNIT (?P<nonce>{NONCE}) ---$")
BEGIN_LINE = "--- BEGIN JUNIT {nonce} ---"
# A report comes from the suite's own log: no DTDs (entity expansion), a bounded size and depth.
MAX_REPORT_BYTES = 20 * 1024 * 1024
MAX_REPORT_DEPTH = 32  # testsuites > testsuite > testcase > failure: a handful of levels is real

@dataclass(frozen=True)
class SuiteReport:
    service: str
    xml: JUnitXml
    problem: str | None = None  # why the report had to be made up (missing, truncated, broken)

    @property
    def tests(self) -> int:
        return int(self.xml.tests or 0)

    @property
    def failures(self) -> int:
        return int(self.xml.failures or 0)

    @property
    def errors(self) -> int:
        return int(self.xml.errors or 0)

    @property
    def passed(self) -> bool:
        return self.problem is None and self.failures == 0 and self.errors == 0


def _placeholder(service: str, message: str, type_: str = "MissingReport") -> JUnitXml:
    case = TestCase(name="junit-report" if type_ == "MissingReport" else "run",
                    classname=f"integration.{service}")
    case.result = [Error(message=message, type_=type_)]
    suite = TestSuite(f"{service} (no usable JUnit report)")
    suite.add_testcase(case)
    suite.update_statistics()
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.update_statistics()
    return xml


def stand_in(service: str, message: str, problem: str, *, type_: str = "MissingReport") -> SuiteReport:
    """A failed report standing for a run that left none (the message says why, `type_` its code)."""
    return SuiteReport(service, _placeholder(service, message, type_), problem)


def _report_body(log: str) -> str | None:
    """The text between the wrapper's own markers, or None when the log does not end with them."""
    lines = log.rstrip("\n").rsplit("\n", 1)
    match = END.match(lines[-1].rstrip("\r"))
    if match is None:
        return None
    before = lines[0] if len(lines) > 1 else ""
    begin = BEGIN_LINE.format(nonce=match["nonce"])
    start = before.find(begin + "\n")
    if start < 0 or not (start == 0 or before[start - 1] == "\n"):
        return None
    return before[start + len(begin) + 1:]


def _depth(body: str) -> int:
    depth = deepest = 0
    for event, _ in ElementTree.iterparse(io.StringIO(body), events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_REPORT_DEPTH:
            break
    return deepest


def _declared_counts(xml: JUnitXml) -> tuple[tuple[int, int], list[tuple[TestSuite, int, int]]] | None:
    """The failures/errors the root and each suite state in their attributes, before they are recounted;
    None when a stated count is not a whole number (a report that says `failures="many"` is broken)."""
    def number(value: object) -> int | None:
        if value is None or value == "":
            return 0
        text = str(value).strip()
        return int(text) if text.isdigit() else None

    root = (number(xml._elem.get("failures")), number(xml._elem.get("errors")))
    suites = [(suite, number(suite._elem.get("failures")), number(suite._elem.get("errors"))) for suite in xml]
    if None in root or any(f is None or e is None for _, f, e in suites):
        return None
    return (int(root[0] or 0), int(root[1] or 0)), [(s, int(f or 0), int(e or 0)) for s, f, e in suites]


def _keep_declared_failures(service: str, declared: list[tuple[TestSuite, int, int]]) -> None:
    """A suite that states more failures or errors than it lists keeps them, as failed cases."""
    for suite, failures, errors in declared:
        suite.update_statistics()
        listed_failures, listed_errors = int(suite.failures or 0), int(suite.errors or 0)
        if failures > listed_failures or errors > listed_errors:
            case = TestCase(name="declared-results", classname=f"integration.{service}")
            case.result = [Failure(message=f"the report declares {failures} failure(s) and {errors} error(s) "
                                   f"but lists {listed_failures} and {listed_errors}", type_="DeclaredFailures")]
            suite.add_testcase(case)
            suite.update_statistics()


def extract(service: str, log: str) -> SuiteReport:
    """The report the wrapper printed at the end of `log`, or a failed placeholder saying why there is none."""
    if "--- BEGIN JUNIT " not in log:
        return stand_in(service, "the suite printed no JUnit report", "no report in the log")
    body = _report_body(log)
    if body is None:
        return stand_in(service, "the log does not end with the wrapper's JUnit report (truncated, or "
                        "printed by the suite itself)", "truncated report")
    body = body.strip()
    if not body:
        return stand_in(service, "the suite wrote no JUnit file", "empty report")
    if len(body) > MAX_REPORT_BYTES or "<!DOCTYPE" in body.upper() or "<!ENTITY" in body.upper():
        return stand_in(service, "the JUnit report is too large or declares a DTD", "refused report")
    try:
        if _depth(body) > MAX_REPORT_DEPTH:
            return stand_in(service, f"the JUnit report nests deeper than {MAX_REPORT_DEPTH} levels",
                            "refused report")
        xml = JUnitXml.fromstring(body)  # a lone <testsuite> comes back wrapped in <testsuites>
        counts = _declared_counts(xml)
        if counts is None:
            return stand_in(service, "the JUnit report states a count that is not a whole number", "broken report")
        root_failures, root_errors = counts[0]
        _keep_declared_failures(service, counts[1])
        xml.update_statistics()
    except Exception as exc:  # the XML parser's errors (etree's or lxml's), bad attributes: never a traceback
        return stand_in(service, f"the JUnit report is not valid JUnit XML ({type(exc).__name__})", "broken report")
    if not int(xml.tests or 0):
        return stand_in(service, "the JUnit report holds no test case: the suite ran nothing", "empty report")
    listed_failures, listed_errors = int(xml.failures or 0), int(xml.errors or 0)
    if root_failures > listed_failures or root_errors > listed_errors:
        first = next(iter(xml))
        case = TestCase(name="declared-results", classname=f"integration.{service}")
        case.result = [Failure(message=f"the report's root declares {root_failures} failure(s) and {root_errors} "
                               f"error(s) but lists {listed_failures} and {listed_errors}", type_="DeclaredFailures")]
        first.add_testcase(case)
        xml.update_statistics()
    return SuiteReport(service, xml)


def merged(reports: list[SuiteReport]) -> JUnitXml:
    out = JUnitXml(name="integration-tests")
    for report in reports:
        for suite in report.xml:
            out.add_testsuite(suite)
    out.update_statistics()
    return out


def result_word(verdict: Verdict) -> str:
    return {"passed": "passed", "suite": "failed", "secret": "blocked", "infrastructure": "infra"}[verdict.cause]


def reason_case(service: str, verdict: Verdict) -> TestCase:
    """An error case standing for why the run ended, typed by its reason code."""
    case = TestCase(name=f"run ({verdict.cause})", classname=f"integration.{service}")
    case.result = [Error(message=verdict.detail, type_=verdict.reason)]
    return case


def retried_case(service: str, earlier: list[tuple[str, Verdict]], *, flaky: bool) -> TestCase:
    """The earlier attempts: `flakyFailure` when a retry passed, `rerunFailure` when none did -- the
    elements Maven Surefire writes and the usual JUnit consumers read."""
    case = TestCase(name="retried attempts", classname=f"integration.{service}")
    element = "flakyFailure" if flaky else "rerunFailure"
    for job, verdict in earlier:
        ElementTree.SubElement(case._elem, element, {"message": f"Job {job}: {verdict.detail}",
                                                     "type": verdict.reason})
    return case
