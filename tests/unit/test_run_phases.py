"""Where a run's time goes (runs/phases.py): the phases read from the pod, its events and the report,
in order, summing to the run's span; boundaries the API server rounds or never recorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from junitparser import JUnitXml

from config.outputs import ServiceOutputs
from runs.phases import PHASES, cut
from runs.runner import Runner, run_all
from tests.unit.fakes import FakeCluster, pod, wrapped

T0 = datetime(2026, 12, 7, 10, 0, 0, 250_000, tzinfo=UTC)


def at(seconds: float) -> str:
    """A Kubernetes time: to the second, as the API server writes it."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def timed_pod(job: str) -> dict:
    return pod(f"{job}-p", conditions=[{"type": "PodScheduled", "status": "True", "lastTransitionTime": at(2)}],
               state={"terminated": {"reason": "Completed", "exitCode": 0, "startedAt": at(6),
                                     "finishedAt": at(18)}})


class TimedCluster(FakeCluster):
    """A cluster whose pods carry the times a real one records."""

    def pods(self, namespace: str, job: str) -> list[dict]:
        return [timed_pod(job)] if job in self.jobs else []

    def pod_events(self, namespace: str, pod_name: str) -> list[dict]:
        return [{"reason": "Scheduled", "lastTimestamp": at(2)},
                {"reason": "Pulled", "lastTimestamp": at(5), "message": "already present on machine"},
                {"reason": "Started", "lastTimestamp": at(6)}]


REPORT = wrapped(f'<testsuite name="graph" tests="1" timestamp="{(T0 + timedelta(seconds=8)).isoformat()}">'
                 '<testcase name="a"/></testsuite>')


def timed_runner(cluster: FakeCluster, tmp_path: Path) -> Runner:
    walls = iter([T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=20)])  # began, Job created, collected
    return Runner(cluster, "integration-tests", tmp_path, "run-7", "ci", say=lambda _: None, poll_seconds=0,
                  sleep=lambda _: None, wall=lambda: next(walls))


def graph() -> dict[str, ServiceOutputs]:
    return {"graph": ServiceOutputs.model_validate({"cronJob": "test-graph", "job": None, "timeoutSeconds": 100,
                                                   "activeDeadlineSeconds": 220})}


def test_a_runs_phases_come_from_its_pod_its_events_and_its_report_and_sum_to_its_span(tmp_path: Path) -> None:
    [outcome] = run_all(timed_runner(TimedCluster({"graph": "Complete"}, {"graph": REPORT}), tmp_path), graph(),
                        rerun=False)
    phases = outcome.record.phases if outcome.record else None
    assert phases is not None
    # The API server's seconds are truncated: 10:00:02 is 1.75 s after the Job the runner made at 10:00:01.25.
    assert phases["seconds"] == {"secretReady": 0.0, "jobCreated": 1.0, "podScheduled": 0.75, "imagePulled": 3.0,
                                 "containerStarted": 1.0, "suiteStarted": 2.25, "reportWritten": 9.75,
                                 "collected": 2.25}
    assert phases["missing"] == ["secretReady"]  # no readiness gate ran
    assert sum(phases["seconds"].values()) == 20.0

    suite = next(iter(JUnitXml.fromfile(str(tmp_path / "graph.xml"))))
    properties = {p.name: p.value for p in suite.properties()}
    assert properties["testinfra.phase.imagePulled.seconds"] == "3.000"
    assert [n.split(".")[2] for n in properties if n.startswith("testinfra.phase.")] == list(PHASES)


def test_the_manifest_holds_each_services_phases(tmp_path: Path) -> None:
    from runs.provenance import RunManifest

    [outcome] = run_all(timed_runner(TimedCluster({"graph": "Complete"}, {"graph": REPORT}), tmp_path), graph(),
                        rerun=False)
    assert outcome.record is not None
    RunManifest("run-7", "ci", "integration-tests", at(0), at(20), 0, {"graph": outcome.record}).write(tmp_path, None)
    manifest = json.loads((tmp_path / "run-manifest.json").read_text())
    assert manifest["services"]["graph"]["phases"]["seconds"]["reportWritten"] == 9.75


def test_a_pod_that_left_no_times_gives_empty_phases_it_names_and_the_span_stays_whole(tmp_path: Path) -> None:
    cluster = FakeCluster({"graph": "Failed"}, {"graph": "no report\n"})  # the fake's pods carry no times
    [outcome] = run_all(timed_runner(cluster, tmp_path), graph(), rerun=False)
    phases = outcome.record.phases if outcome.record else None
    assert phases is not None
    assert phases["missing"] == ["secretReady", "podScheduled", "imagePulled", "containerStarted", "suiteStarted",
                                 "reportWritten"]
    assert phases["seconds"]["jobCreated"] == 1.0 and phases["seconds"]["collected"] == 19.0


def test_a_boundary_out_of_order_is_never_a_negative_phase() -> None:
    phases = cut({"started": T0, "secretReady": T0 + timedelta(seconds=3), "jobCreated": T0 + timedelta(seconds=4),
                  "podScheduled": T0 + timedelta(seconds=2),  # rounded down below the Job's creation
                  "imagePulled": T0 + timedelta(seconds=99),  # past the collection: a clock ahead
                  "containerStarted": None, "suiteStarted": None, "reportWritten": None,
                  "collected": T0 + timedelta(seconds=10)})
    assert min(phases.seconds.values()) == 0.0
    assert phases.seconds["podScheduled"] == 0.0 and phases.seconds["imagePulled"] == 6.0
    assert phases.total == 10.0


def test_credentials_that_may_not_list_events_cost_one_boundary_not_the_run(tmp_path: Path) -> None:
    from config.errors import EnvironmentProblem

    class NoEvents(TimedCluster):
        def pod_events(self, namespace: str, pod_name: str) -> list[dict]:
            raise EnvironmentProblem("Kubernetes API refused the request (403 Forbidden)")

    [outcome] = run_all(timed_runner(NoEvents({"graph": "Complete"}, {"graph": REPORT}), tmp_path), graph(),
                        rerun=False)
    assert outcome.passed and outcome.record is not None and outcome.record.phases is not None
    assert outcome.record.phases["missing"] == ["secretReady", "imagePulled"]
