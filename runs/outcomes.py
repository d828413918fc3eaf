"""What one service's run came to (its Outcome: state, seconds, report, verdict, record) and the table
`make run` and `make rotate` print of many."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runs.classify import PASSED, Verdict
from runs.junit import SuiteReport, result_word
from runs.provenance import ServiceRecord


@dataclass
class Outcome:
    service: str
    job: str
    state: str  # Complete | Failed | TimedOut | Stopped | NotStarted | Blocked
    seconds: float
    report: SuiteReport
    log_file: Path | None = None
    verdict: Verdict = PASSED
    record: ServiceRecord | None = None

    @property
    def passed(self) -> bool:
        return self.verdict.cause == "passed"

    @property
    def flaky(self) -> bool:
        return self.record is not None and self.record.flaky


def summary(outcomes: list[Outcome]) -> str:
    rows = [f"{'service':<24} {'result':<8} {'reason':<18} {'tests':>5} {'fail':>5} {'err':>5} {'seconds':>8}"]
    for o in outcomes:
        result = "flaky" if o.flaky else result_word(o.verdict)
        rows.append(f"{o.service:<24} {result:<8} {o.verdict.reason:<18} {o.report.tests:>5} {o.report.failures:>5} "
                    f"{o.report.errors:>5} {o.seconds:>8.0f}")
    return "\n".join(rows)
