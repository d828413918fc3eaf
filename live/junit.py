"""JUnit reports of suite runs: taken from a suite's log, and merged for `live.run --all`.

Owns: finding the report the chart prints between `--- BEGIN JUNIT <path> ---` and
`--- END JUNIT ---`, parsing it with junitparser, and turning a missing, truncated or broken report
into a failed test case of its own (a run is never silently dropped from the merged report).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

BEGIN = re.compile(r"^--- BEGIN JUNIT (?P<path>\S*) ---$", re.MULTILINE)
END = "--- END JUNIT ---"
# A report comes from the suite's own log: no DTDs (entity expansion), and a bounded size.
MAX_REPORT_BYTES = 20 * 1024 * 1024


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


def _placeholder(service: str, message: str) -> JUnitXml:
    case = TestCase(name="junit-report", classname=f"integration.{service}")
    case.result = [Error(message=message, type_="MissingReport")]
    suite = TestSuite(f"{service} (no usable JUnit report)")
    suite.add_testcase(case)
    suite.update_statistics()
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.update_statistics()
    return xml


def outcome_case(service: str, message: str) -> TestCase:
    """A failed test case standing for a run that ended without its suites (deadline, no pod)."""
    case = TestCase(name="run", classname=f"integration.{service}")
    case.result = [Failure(message=message, type_="RunFailed")]
    return case


def extract(service: str, log: str) -> SuiteReport:
    """The last report printed in `log`, or a failed placeholder saying why there is none."""
    begins = list(BEGIN.finditer(log))
    if not begins:
        return SuiteReport(service, _placeholder(service, "the suite printed no JUnit report"),
                           "no report in the log")
    start = begins[-1].end()
    end = log.find(END, start)
    if end < 0:
        return SuiteReport(service, _placeholder(service, "the JUnit report in the log is truncated"),
                           "truncated report")
    body = log[start:end].strip()
    if not body:
        return SuiteReport(service, _placeholder(service, "the suite wrote no JUnit file"), "empty report")
    if len(body) > MAX_REPORT_BYTES or "<!DOCTYPE" in body.upper() or "<!ENTITY" in body.upper():
        return SuiteReport(service, _placeholder(service, "the JUnit report is too large or declares a DTD"),
                           "refused report")
    try:
        xml = JUnitXml.fromstring(body)
    except Exception as exc:
        return SuiteReport(service, _placeholder(service, f"the JUnit report is not valid XML ({type(exc).__name__})"),
                           "broken report")
    xml.update_statistics()
    return SuiteReport(service, xml)


def merged(reports: list[SuiteReport]) -> JUnitXml:
    out = JUnitXml(name="integration-tests")
    for report in reports:
        for suite in report.xml:
            out.add_testsuite(suite)
    out.update_statistics()
    return out
