"""`python -m runs.run`: Job naming, JUnit extraction and merging on recorded logs, outcomes and
exit codes, and the concurrency cap -- against an in-memory cluster that plays the API server's
part (the real API server is exercised in tests/e2e/test_run_on_demand.py)."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from config.outputs import ServiceOutputs
from runs import run as live_run
from runs.jobs import job_for_rerun, job_from_cron_job, job_name, label_value
from runs.junit import extract, merged
from runs.runner import Runner, run_all
from tests.unit.fakes import CRON, FAILING, NONCE, PASSING, FakeCluster, pod, wrapped

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize("service", ["graph", "s" * 47, "a-b" * 15 + "ab"])
def test_job_names_are_dns_labels_of_at_most_63_and_unique_per_run(service: str) -> None:
    cron = f"test-{service}"[:52]
    names = {job_name(cron, "12345", str(attempt)) for attempt in range(50)}
    assert len(names) == 50
    for name in names:
        assert len(name) <= 63 and DNS_LABEL.match(name), name
        assert name.startswith(cron[:50])


def test_run_ids_become_valid_label_values() -> None:
    assert label_value("refs/pull/12/merge#3") == "refs-pull-12-merge-3"
    assert len(label_value("x" * 200)) == 63
    assert label_value("---") == "none"


@pytest.mark.parametrize(
    ("log", "tests", "failures", "errors", "problem"),
    [
        (PASSING, 2, 0, 0, None),
        (FAILING, 2, 1, 0, None),
        ("no report here\n", 1, 0, 1, "no report in the log"),
        (f"--- BEGIN JUNIT {NONCE} ---\n<testsuite name='x'>", 1, 0, 1, "truncated report"),
        (wrapped("<testsuite name='x'><oops"), 1, 0, 1, "broken report"),
        (wrapped(""), 1, 0, 1, "empty report"),
        (wrapped('<!DOCTYPE x [<!ENTITY a "aaaa">]><testsuite name="&a;"/>'), 1, 0, 1, "refused report"),
        (wrapped("<a>" * 1000 + "</a>" * 1000), 1, 0, 1, "refused report"),
        (wrapped("<testsuite name='g' tests='5' failures='3' errors='1'><testcase name='a'/></testsuite>"),
         2, 1, 0, None),
        (PASSING + "a line printed after the wrapper\n", 1, 0, 1, "truncated report"),
        (wrapped("<testsuite name='g'/>", nonce="--- not a nonce"), 1, 0, 1, "truncated report"),
        # The third red-team round (issue 30, finding 5).
        (wrapped("<testsuites><testsuite name='g' tests='0'/></testsuites>"), 1, 0, 1, "empty report"),
        (wrapped("<testsuites failures='2'><testsuite name='g'><testcase name='a'/></testsuite></testsuites>"),
         2, 1, 0, None),
        (wrapped("<testsuite name='g' failures='many'><testcase name='a'/></testsuite>"), 1, 0, 1, "broken report"),
        (wrapped("<testsuites errors='-1'><testsuite name='g'><testcase name='a'/></testsuite></testsuites>"),
         1, 0, 1, "broken report"),
    ],
    ids=["passing", "failing", "missing", "truncated", "malformed", "empty", "dtd", "nested-1000-deep",
         "failures-only-in-attributes", "not-last", "bad-nonce", "no-test-case", "failures-on-the-root",
         "count-not-a-number", "negative-count"],
)
def test_reports_are_extracted_or_stand_in_as_a_failed_case(log: str, tests: int, failures: int, errors: int,
                                                             problem: str | None) -> None:
    report = extract("graph", log)
    assert (report.tests, report.failures, report.errors, report.problem) == (tests, failures, errors, problem)
    assert report.passed is (problem is None and failures == 0)


def test_the_merged_report_keeps_every_suite_including_made_up_ones() -> None:
    xml = merged([extract("graph", PASSING), extract("threads", FAILING), extract("platform", "")])
    assert (xml.tests, xml.failures, xml.errors) == (5, 1, 1)
    assert {s.name for s in xml} == {"graph", "platform (no usable JUnit report)"}


def test_a_report_the_suite_printed_itself_cannot_replace_the_wrappers() -> None:
    forged_pass = wrapped('<testsuite name="graph" tests="1"><testcase name="a"/></testsuite>',
                          nonce="aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
    inside_cdata = f"<testcase name='t'><failure><![CDATA[{forged_pass}]]></failure></testcase>"
    real = wrapped(f"<testsuite name='graph' tests='1'>{inside_cdata}</testsuite>", before=forged_pass)
    report = extract("graph", real)
    assert (report.tests, report.failures, report.passed) == (1, 1, False)


def test_a_second_report_printed_by_the_suite_does_not_count() -> None:
    own = PASSING.replace(NONCE, "11111111-2222-3333-4444-555555555555")
    failing = "<testsuite name='graph' tests='1'><testcase name='a'><failure message='x'/></testcase></testsuite>"
    report = extract("graph", wrapped(failing, before=own + own))
    assert (report.tests, report.failures, report.passed) == (1, 1, False)


# --------------------------------------------------------------------------- against a fake cluster


def runner(cluster: FakeCluster, tmp_path: Path) -> Runner:
    ticks = iter(range(0, 10**9, 5))
    return Runner(cluster, "integration-tests", tmp_path, "run-7", "ci", say=lambda _: None, poll_seconds=0,
                  clock=lambda: float(next(ticks)), sleep=lambda _: None)


def svc_outputs(name: str, timeout: int = 100) -> dict[str, Any]:
    return {"cronJob": f"test-{name}", "job": f"test-{name}-abc", "timeoutSeconds": timeout,
            "activeDeadlineSeconds": timeout + 120}


def svc(name: str, timeout: int = 100) -> ServiceOutputs:
    return ServiceOutputs.model_validate(svc_outputs(name, timeout))


def test_a_job_is_made_from_the_cron_job_with_labels_and_owner() -> None:
    job = job_from_cron_job(CRON, "test-graph-0123456789", "refs/pull/1", "ci")
    assert job["metadata"]["labels"] == {"ameide.io/service": "graph", "ameide.io/run-id": "refs-pull-1",
                                         "ameide.io/caller": "ci"}
    assert job["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "CronJob", "name": "test-graph", "uid": "u-1", "controller": True}]
    pod_template = job["spec"].pop("template")
    assert pod_template["metadata"]["labels"] == {"ameide.io/run-id": "refs-pull-1", "ameide.io/caller": "ci"}
    assert pod_template["spec"] == CRON["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert job["spec"] == {k: v for k, v in CRON["spec"]["jobTemplate"]["spec"].items() if k != "template"}


def test_between_two_reads_of_a_running_suite_the_runner_waits_on_its_pods_changes_not_on_a_sleep(
        tmp_path: Path) -> None:
    cluster = FakeCluster({"graph": "Complete"}, {"graph": PASSING})
    slept: list[float] = []
    ticks = iter(range(0, 10**9, 5))
    the_runner = Runner(cluster, "integration-tests", tmp_path, "run-7", "ci", say=lambda _: None, poll_seconds=2,
                        clock=lambda: float(next(ticks)), sleep=slept.append)
    [outcome] = run_all(the_runner, {"graph": svc("graph")}, rerun=False)
    assert outcome.passed
    [job] = cluster.jobs
    assert cluster.watched[job] == cluster.polls[job] - 1  # once between each two reads, never after the last
    assert slept == []


def test_outcomes_and_reports_per_suite(tmp_path: Path) -> None:
    cluster = FakeCluster({"graph": "Complete", "threads": "Complete", "platform": "Failed", "agents": "Running"},
                          {"graph": PASSING, "threads": FAILING, "platform": None, "agents": None})
    outcomes = {o.service: o for o in run_all(runner(cluster, tmp_path),
                                             {n: svc(n) for n in ("graph", "threads", "platform", "agents")},
                                             rerun=False)}
    assert outcomes["graph"].passed
    assert not outcomes["threads"].passed and outcomes["threads"].report.failures == 1
    assert outcomes["platform"].state == "Failed" and outcomes["platform"].verdict.reason == "NO_REPORT"
    assert outcomes["agents"].state == "TimedOut" and outcomes["agents"].verdict.reason == "DEADLINE_EXCEEDED"
    assert (tmp_path / "graph.xml").read_bytes().count(b"<testcase") == 2
    assert b"the suite printed no JUnit report" in (tmp_path / "platform.xml").read_bytes()


def test_never_more_suites_at_once_than_the_quota_admits(tmp_path: Path) -> None:
    names = [f"svc-{i}" for i in range(6)]
    cluster = FakeCluster({n: "Complete" for n in names}, {n: PASSING for n in names}, free=2)
    outcomes = run_all(runner(cluster, tmp_path), {n: svc(n) for n in names}, rerun=False)
    assert len(outcomes) == 6 and all(o.passed for o in outcomes)
    assert cluster.max_active == 2


def test_rerun_recreates_the_failed_install_job_under_its_name(tmp_path: Path) -> None:
    failed = {"metadata": {"name": "test-graph-abc", "labels": {"ameide.io/service": "graph", "job-name": "x",
                                                                 "controller-uid": "1"}},
              "spec": {"selector": {"matchLabels": {"controller-uid": "1"}},
                       "template": {"metadata": {"labels": {"controller-uid": "1", "job-name": "x", "a": "b"}}}},
              "status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    again = job_for_rerun(failed)
    assert again["metadata"]["name"] == "test-graph-abc"
    assert "selector" not in again["spec"]
    assert again["spec"]["template"]["metadata"]["labels"] == {"a": "b"}
    assert again["metadata"]["labels"] == {"ameide.io/service": "graph"}


def install_job(name: str, created: str, state: str | None, *, from_cron: bool = False) -> dict[str, Any]:
    job: dict[str, Any] = {"metadata": {"name": name, "creationTimestamp": created, "labels": {"ameide.io/service": "graph"}},
                           "spec": {"template": {"metadata": {"labels": {}}}}}
    if from_cron:
        job["metadata"]["ownerReferences"] = [{"kind": "CronJob", "name": "test-graph"}]
    if state:
        job["status"] = {"conditions": [{"type": state, "status": "True"}]}
    return job


def test_rerun_takes_the_newest_install_job_when_the_outputs_name_an_older_one(tmp_path: Path) -> None:
    """A gated `up` that failed leaves the previous outputs, naming the Job that `up` replaced."""
    cluster = FakeCluster({"graph": "Complete"}, {"graph": PASSING})
    cluster.jobs = {
        "test-graph-new": install_job("test-graph-new", "2026-11-29T10:05:00Z", "Failed"),
        "test-graph-ondemand": install_job("test-graph-ondemand", "2026-11-29T10:09:00Z", "Failed", from_cron=True),
    }
    outcome = run_all(runner(cluster, tmp_path), {"graph": svc("graph")}, rerun=True)[0]  # outputs: test-graph-abc
    assert outcome.job == "test-graph-new" and outcome.passed


def test_rerun_refuses_when_the_newest_install_job_has_not_failed(tmp_path: Path) -> None:
    cluster = FakeCluster({"graph": "Complete"}, {"graph": PASSING})
    cluster.jobs = {"test-graph-old": install_job("test-graph-old", "2026-11-29T10:00:00Z", "Failed"),
                    "test-graph-new": install_job("test-graph-new", "2026-11-29T10:05:00Z", "Complete")}
    with pytest.raises(live_run.RunInputError, match="test-graph-new has not failed"):
        runner(cluster, tmp_path).start("graph", svc("graph"), rerun=True)
    cluster.jobs = {}
    with pytest.raises(live_run.RunInputError, match="no install-time Job to re-run"):
        runner(cluster, tmp_path).start("graph", svc("graph"), rerun=True)


def test_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = {"schemaVersion": "1.0", "namespace": "integration-tests", "kubeContext": "ctx",
               "services": {"graph": svc_outputs("graph")}}
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps(outputs))
    for result, log, code in (("Complete", PASSING, 0), ("Complete", FAILING, 1), ("Failed", None, 1),
                              ("Running", None, 4)):
        cluster = FakeCluster({"graph": result}, {"graph": log})
        monkeypatch.setattr(live_run, "ClientCluster", lambda *a, c=cluster, **k: c)
        # The Runner's own sleep, not time.sleep: its default was bound when the class was defined.
        ticks = iter(range(0, 10**9, 5))
        monkeypatch.setattr(live_run, "Runner", functools.partial(live_run.Runner, sleep=lambda _: None,
                                                                  clock=lambda t=ticks: float(next(t))))
        assert live_run.main(["graph", "--outputs", str(saved), "--junit-dir", str(tmp_path / "j"),
                              "--runs-dir", str(tmp_path / "runs"), "--skip-gate"]) == code
    assert live_run.main(["nosuch", "--outputs", str(saved)]) == 2
    assert "no service 'nosuch'" in capsys.readouterr().err
    saved.write_text("{not json")
    assert live_run.main(["graph", "--outputs", str(saved)]) == 2
    assert live_run.main(["--outputs", str(saved)]) == 2


@pytest.mark.parametrize("service", ["a b", "x; touch PWNED", "Graph", "-x", "graph\n", "g" * 48])
def test_a_name_that_is_no_service_name_is_refused_before_the_outputs_are_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], service: str) -> None:
    missing = tmp_path / "no-such-outputs.json"  # read first, it would be the message
    assert live_run.main(["--outputs", str(missing), "--", service]) == 2  # as make run passes it
    err = capsys.readouterr().err
    assert "not a service name" in err and "no-such-outputs" not in err


def test_a_pod_that_succeeded_ends_the_wait_before_the_job_controller_says_complete(tmp_path: Path) -> None:
    """The suite exited 0 and its report is in the log: its result does not wait for the Job's condition
    (seconds later on a real cluster). A failed pod still waits for the Job: its conditions say whose."""
    class SlowJobController(FakeCluster):
        def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
            self.polls[name] = self.polls.get(name, 0) + 1
            return self.jobs.get(name)  # never a condition

        def pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
            failed = self._for(self.results, job) == "Failed"
            return [pod(f"{job}-p", phase="Failed" if failed else "Succeeded",
                        state={"terminated": {"reason": "Error" if failed else "Completed", "exitCode": int(failed)}})]

    cluster = SlowJobController({"graph": "Complete", "threads": "Failed"}, {"graph": PASSING, "threads": FAILING})
    outcomes = {o.service: o for o in run_all(runner(cluster, tmp_path), {"graph": svc("graph"), "threads": svc("threads")},
                                             rerun=False)}
    assert outcomes["graph"].passed and outcomes["graph"].state == "Complete"
    assert [p for j, p in cluster.polls.items() if j.startswith("test-graph")] == [1]
    assert outcomes["threads"].state == "TimedOut"  # no Job condition came: a failed pod is not taken as done
