"""Whose a failed run is, from recorded pod statuses and Job conditions (as the API server returns
them), and the exit code a pipeline gets for a mix of suites."""

from __future__ import annotations

from typing import Any

import pytest

from runs.classify import Verdict, classify, exit_code

POD = "test-graph-1a2b3c4d5e-x7k2p"


def pod(*, waiting: str | None = None, terminated: str | None = None, exit_code: int = 1,
        conditions: list[dict[str, str]] | None = None, **status: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if waiting:
        state["waiting"] = {"reason": waiting, "message": "rpc error: code = NotFound"}
    if terminated:
        state["terminated"] = {"reason": terminated, "exitCode": exit_code}
    return {"metadata": {"name": POD},
            "status": {"phase": "Failed", "conditions": conditions or [], **status,
                       "containerStatuses": [{"name": "tests", "state": state}]}}


def job(reason: str, message: str = "") -> dict[str, Any]:
    return {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": reason, "message": message}]}}


DISRUPTED = [{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}]
KUBELET = [{"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet"}]


@pytest.mark.parametrize(
    ("state", "job_obj", "pods", "report_passed", "problem", "cause", "reason"),
    [
        ("Complete", None, [pod(terminated="Completed", exit_code=0)], True, None, "passed", "PASSED"),
        ("Failed", job("BackoffLimitExceeded"), [pod(terminated="Error")], False, None, "suite", "TESTS_FAILED"),
        ("Failed", job("BackoffLimitExceeded"), [pod(terminated="Error")], False, "no report in the log",
         "suite", "NO_REPORT"),
        ("Stopped", None, [pod(waiting="ImagePullBackOff")], False, "no report", "infrastructure", "IMAGE_PULL"),
        ("Stopped", None, [pod(waiting="ErrImageNeverPull")], False, "no report", "infrastructure", "IMAGE_PULL"),
        ("Stopped", None, [pod(waiting="CreateContainerConfigError")], False, "no report", "secret",
         "SECRET_NOT_SYNCED"),
        ("Failed", job("BackoffLimitExceeded"), [pod(terminated="OOMKilled", exit_code=137)], False, "truncated report",
         "infrastructure", "OOM_KILLED"),
        ("Failed", job("PodFailurePolicy", f"Pod ns/{POD} has condition DisruptionTarget matching FailJob rule at index 0"),
         [pod(terminated="Error", exit_code=137, conditions=DISRUPTED)], False, "truncated report",
         "infrastructure", "EVICTED"),
        ("Failed", job("BackoffLimitExceeded"), [pod(conditions=KUBELET)], False, "no report", "infrastructure",
         "NODE_PRESSURE"),
        ("Failed", job("BackoffLimitExceeded"), [pod(reason="Evicted",
                                                     message="The node was low on resource: memory.")],
         False, "no report", "infrastructure", "NODE_PRESSURE"),
        ("Failed", job("PodFailurePolicy", "Pod ns/x has condition DisruptionTarget matching FailJob rule at index 0"),
         [], False, "no report", "infrastructure", "EVICTED"),
        ("Failed", job("DeadlineExceeded"), [pod(terminated="Error", exit_code=143)], False, "truncated report",
         "infrastructure", "DEADLINE_EXCEEDED"),
        ("TimedOut", None, [{"metadata": {"name": POD}, "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}}], False, "no report",
         "infrastructure", "UNSCHEDULABLE"),
        ("Failed", job("BackoffLimitExceeded"), [], False, "no report", "infrastructure", "NO_POD"),
    ],
    ids=["passed", "tests-failed", "no-report", "image-pull-backoff", "never-pull", "secret-key-missing", "oom",
         "evicted-by-api", "kubelet-pressure", "evicted-status", "pod-failure-policy-pod-gone", "deadline",
         "unschedulable", "no-pod"],
)
def test_each_run_is_the_suites_the_secrets_or_the_infrastructures(
        state: str, job_obj: dict[str, Any] | None, pods: list[dict[str, Any]], report_passed: bool,
        problem: str | None, cause: str, reason: str) -> None:
    verdict = classify(state, job_obj, pods, report_passed=report_passed, report_problem=problem)
    assert (verdict.cause, verdict.reason) == (cause, reason)
    assert verdict.retryable is (cause == "infrastructure")


def test_a_secret_in_the_pod_spec_never_reaches_the_verdict() -> None:
    canary = "canary-7f3a9c1e5b"
    evicted = pod(conditions=DISRUPTED)
    evicted["spec"] = {"containers": [{"env": [{"name": "TOKEN", "value": canary}]}]}
    evicted["status"]["message"] = f"env TOKEN={canary}"
    verdict = classify("Failed", job("BackoffLimitExceeded"), [evicted], report_passed=False, report_problem="x")
    assert canary not in verdict.detail and canary[:6] not in verdict.detail


def test_one_exit_code_for_many_suites_secret_first_then_infrastructure_then_suite() -> None:
    passed, suite = Verdict("passed", "PASSED", ""), Verdict("suite", "TESTS_FAILED", "")
    secret, infra = Verdict("secret", "SECRET_MISSING", ""), Verdict("infrastructure", "EVICTED", "")
    assert exit_code([passed, passed]) == 0
    assert exit_code([passed, suite]) == 1
    assert exit_code([suite, infra]) == 4
    assert exit_code([infra, secret, suite]) == 3
    assert exit_code([]) == 0


def test_the_exit_table_is_written_once_and_shown_by_help_and_the_docs() -> None:
    """runs/classify.py holds it; `make run --help` renders it and docs/runs.md's table agrees."""
    import re
    import subprocess
    import sys

    from runs.classify import EXIT_CODES, EXIT_MEANINGS, EXIT_PRECEDENCE, exit_status_help
    from tests.conftest import PROJECT_DIR

    assert set(EXIT_MEANINGS) == {*EXIT_CODES.values(), 2}
    shown = subprocess.run([sys.executable, "-m", "runs.run", "--help"], cwd=PROJECT_DIR, capture_output=True,
                           text=True, check=True).stdout
    assert " ".join(exit_status_help().split()) in " ".join(shown.split())
    docs = (PROJECT_DIR / "docs" / "runs.md").read_text()
    words = {"passed": "passed", "suite": "the suite's", "secret": "the secret's", "infrastructure": "the infrastructure's"}
    for cause, word in words.items():
        row = next(line for line in docs.splitlines() if line.startswith(f"| {word} |"))
        assert row.split("|")[4].strip() == str(EXIT_CODES[cause]), row
    order = ", ".join(str(EXIT_CODES[c]) for c in EXIT_PRECEDENCE)
    assert re.search(rf"the first of {re.escape(order)}\b", docs)
