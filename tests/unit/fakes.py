"""Fakes of what `make run` talks to, beside the narrow Protocols they stand in for: a cluster that
runs Jobs as told (runs.runner.Cluster), an ESO that syncs or refuses on its force-sync annotation
(runs.gate.SyncTarget), a Vault that answers KV v2 metadata (runs.gate.VersionSource); and the pod
logs and objects they hand back. Shared by the run, gate, rotate and trust tests; no test module
imports another.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from config.outputs import ServiceOutputs, VaultOutputs
from runs.gate import Gate
from runs.runner import Runner

NONCE = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def wrapped(report: str, nonce: str = NONCE, before: str = "") -> str:
    """A pod log as the chart's wrapper leaves it: the suite's output, then the report between markers."""
    return f"{before}\n--- BEGIN JUNIT {nonce} ---\n{report}\n--- END JUNIT {nonce} ---\n"


PASSING = wrapped('<testsuite name="graph" tests="2" failures="0"><testcase name="a"/><testcase name="b"/></testsuite>')


FAILING = wrapped("""<testsuites><testsuite name="graph" tests="2"><testcase name="a"/>
<testcase name="b"><failure message="x"/></testcase></testsuite></testsuites>""", before="collecting...")


CRON = {
    "metadata": {"name": "test-graph", "uid": "u-1"},
    "spec": {"jobTemplate": {"metadata": {"labels": {"ameide.io/service": "graph"}},
                             "spec": {"template": {"spec": {"containers": [{"name": "suite"}]}}}}},
}


def pod(name: str, *, phase: str = "Succeeded", state: dict[str, Any] | None = None,
        conditions: list[dict[str, str]] | None = None, **status: str) -> dict[str, Any]:
    """A pod as the API server returns it, with the one container's state."""
    return {"metadata": {"name": name},
            "status": {"phase": phase, "conditions": conditions or [], **status,
                       "containerStatuses": [{"name": "tests", "imageID": "registry.test/suite@sha256:" + "a" * 64,
                                              "state": state or {"terminated": {"reason": "Completed", "exitCode": 0}}}]}}


class FakeCluster:
    """Jobs finish as `results` says (one state, or one per attempt), with `logs` as their pod's log and
    `pod_states` as their pod's status (per attempt); tracks concurrency."""

    def __init__(self, results: dict[str, Any], logs: dict[str, Any], free: int | None = None,
                 pod_states: dict[str, list[dict[str, Any] | None]] | None = None) -> None:
        self.results, self.logs, self.free = results, logs, free
        self.pod_states = pod_states or {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.attempt_of: dict[str, int] = {}
        self.attempts: dict[str, int] = {}
        self.deleted: list[str] = []
        self.active = self.max_active = 0
        self.lock = threading.Lock()
        self.polls: dict[str, int] = {}
        self.watched: dict[str, int] = {}  # Job name -> how often the runner waited on its pods' changes
        # The synced Secrets' values by Secret name (None: the credentials may not read it).
        self.secrets: dict[str, dict[str, str] | None] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}  # pod name -> its events

    def _for(self, table: dict[str, Any], name: str) -> Any:
        value = table.get(self.service_of(name))
        if isinstance(value, list):
            return value[min(self.attempt_of[name], len(value)) - 1]
        return value

    def service_of(self, name: str) -> str:
        return str(self.jobs[name]["metadata"]["labels"]["ameide.io/service"])

    def get_cron_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        svc = name.removeprefix("test-")
        return json.loads(json.dumps(CRON).replace("graph", svc)) if svc in self.results else None

    def create_job(self, namespace: str, body: dict[str, Any]) -> None:
        with self.lock:
            name = body["metadata"]["name"]
            self.jobs[name] = body
            service = self.service_of(name)
            self.attempts[service] = self.attempts.get(service, 0) + 1
            self.attempt_of[name] = self.attempts[service]
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        job = self.jobs.get(name)
        if job is None:
            return None
        time.sleep(0.01)  # a real round trip: lets concurrent suites overlap
        self.polls[name] = self.polls.get(name, 0) + 1
        result = self._for(self.results, name)
        if self.polls[name] < 3 or result == "Running":
            return job
        with self.lock:
            if "status" not in job:
                self.active -= 1
        job["status"] = {"conditions": [{"type": result, "status": "True"}]}
        return job

    def delete_job(self, namespace: str, name: str) -> None:
        self.deleted.append(name)
        self.jobs.pop(name, None)

    def list_jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        key, _, value = selector.partition("=")
        return [j for j in self.jobs.values() if j["metadata"]["labels"].get(key) == value]

    def pod_log(self, namespace: str, job: str) -> str | None:
        return cast(str | None, self._for(self.logs, job))

    def pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        if job not in self.jobs:
            return []
        states = self.pod_states.get(self.service_of(job))
        if states is not None:
            status = states[min(self.attempt_of[job], len(states)) - 1]
            return [] if status is None else [status]
        result = self._for(self.results, job)
        if result == "Running" or self.polls.get(job, 0) < 3:  # the pod ends when the Job does
            return [pod(f"{job}-p", phase="Running", state={"running": {}})]
        failed = result == "Failed"
        return [pod(f"{job}-p", phase="Failed" if failed else "Succeeded",
                    state={"terminated": {"reason": "Error" if failed else "Completed", "exitCode": int(failed)}})]

    def watch_pods(self, namespace: str, job: str, seconds: float) -> None:
        self.watched[job] = self.watched.get(job, 0) + 1

    def free_pods(self, namespace: str) -> int | None:
        return self.free

    def pod_events(self, namespace: str, pod: str) -> list[dict[str, Any]]:
        return self.events.get(pod, [])

    def secret_values(self, namespace: str, name: str) -> dict[str, str] | None:
        return self.secrets.get(name, {})


WRITTEN = "2026-12-04T10:00:00.123456789Z"


# ESO's last sync began this long after WRITTEN: past the gate's clock-skew margin, so it counts as is.
SYNCED_AFTER = "2026-12-04T10:00:30Z"


CANARY = "canary-value-5d1c9e"  # what a key holds: must appear nowhere a run writes


def metadata(current: int = 2, created: str = WRITTEN, **states: dict[str, Any]) -> dict[str, Any]:
    versions = {str(v): {"created_time": "2026-12-01T00:00:00Z", "deletion_time": "", "destroyed": False}
                for v in range(1, current)}
    versions[str(current)] = {"created_time": created, "deletion_time": "", "destroyed": False}
    for version, facts in states.items():
        versions[version.removeprefix("v")].update(facts)
    return {"current_version": current, "versions": versions, "custom_metadata": None}


class FakeVault:
    def __init__(self, keys: dict[str, dict[str, Any] | None], role: bool | None = True) -> None:
        self.keys, self.role = keys, role
        self.reads: list[str] = []

    def metadata(self, mount: str, path: str) -> dict[str, Any] | None:
        self.reads.append(f"{mount}/{path}")
        return self.keys.get(f"{mount}/{path}")

    def role_exists(self, auth_mount: str, role: str) -> bool | None:
        return self.role


class FakeESO(FakeCluster):
    """An API server with one ExternalSecret per service whose ESO behaves as `eso` says:
    `syncs` (on the annotation's change), `denied` (a Warning event as ESO words a refused login),
    `missing` (ESO finds no property), `never`."""

    def __init__(self, eso: str, refreshed: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.eso, self.refreshed = eso, refreshed
        self.annotations: list[dict[str, str]] = []
        self.events: dict[str, tuple[int, str]] = {}
        self.version = 1
        self.after_sync = "2026-12-04T10:00:05Z"  # refreshTime ESO stamps on a forced sync (its clock)

    def get_external_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return {"metadata": {"name": name},
                "status": {"refreshTime": self.refreshed, "syncedResourceVersion": f"1-{self.version}",
                           "conditions": [{"type": "Ready", "status": "True" if self.eso != "denied" else "False",
                                           "message": "could not get secret data from provider"}]}}

    def annotate_external_secret(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        self.annotations.append(annotations)
        if self.eso == "syncs":
            self.version += 1
            self.refreshed = self.after_sync
        elif self.eso == "denied":
            self.events["es.1"] = (len(self.annotations), "could not get provider client: unable to log in with "
                                   "Kubernetes auth: Code: 403. Errors: * permission denied")
        elif self.eso == "missing":
            self.events["es.1"] = (len(self.annotations), "error processing spec.data[0] (key: integration/x/graph),"
                                   " err: cannot find secret data for key: \"database-url\"")

    def warning_events(self, namespace: str, kind: str, name: str) -> dict[str, tuple[int, str]]:
        return dict(self.events)


FACTS = VaultOutputs.model_validate({
    "address": "https://vault.test:8200", "role": "integration-tests-x-eso", "authMount": "kubernetes",
    "keys": {"secret/integration/x/graph": {"owner": "team-graph", "source": "external"},
             "secret/integration/x/shared": {"owner": "platform-auth", "source": "generated"}}})


GRAPH = ServiceOutputs.model_validate({
    "cronJob": "test-graph", "timeoutSeconds": 100, "secretName": "graph-int-tests-secrets",
    "image": "registry.test/suite:2026.12", "vaultKeys": ["secret/integration/x/graph", "secret/integration/x/shared"]})


def gated_runner(cluster: FakeESO, vault: FakeVault, tmp_path: Path, **kw: Any) -> Runner:
    ticks = iter(range(0, 10**9))
    clock = lambda: float(next(ticks))  # noqa: E731 -- one tick a call
    gate = Gate(vault, cluster, FACTS, "integration-tests", bound=30, clock=clock, sleep=lambda _: None)
    return Runner(cluster, "integration-tests", tmp_path, "run-9", "ci", say=lambda _: None, poll_seconds=0,
                  clock=clock, sleep=lambda _: None, gate=gate, **kw)


# ------------------------------------------------------------------ a recorded run (run-manifest.json)
RUN_STARTED = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)


def run_record(cause: str, reason: str, *, seconds: dict[str, float] | None, job: str = "") -> dict[str, Any]:
    started = RUN_STARTED.isoformat().replace("+00:00", "Z")
    phases = None if seconds is None else {"startedAt": started, "seconds": seconds, "missing": []}
    return {"cause": cause, "reason": reason, "flaky": False, "imageId": "registry.test/suite@sha256:" + "a" * 64,
            "chartVersion": "1.1.0", "keys": [{"path": "secret/integration/graph/token", "version": 3}],
            "attempts": [{"job": job}] if job else [], "phases": phases}


PHASE_SECONDS = {"secretReady": 0.5, "jobCreated": 0.1, "podScheduled": 0.4, "imagePulled": 1.0,
                 "containerStarted": 0.5, "suiteStarted": 1.5, "reportWritten": 6.0, "collected": 2.0}
RUN_MANIFEST = {
    "runId": "ci-4711", "caller": "review", "stack": "staging", "namespace": "integration-tests",
    "startedAt": "2026-12-07T10:00:00Z", "finishedAt": "2026-12-07T10:00:13Z", "exitCode": 3,
    "services": {"graph": run_record("passed", "PASSED", seconds=PHASE_SECONDS, job="test-graph-1"),
                 "threads": run_record("suite", "TESTS_FAILED", seconds=PHASE_SECONDS, job="test-threads-1"),
                 "agents": run_record("secret", "SECRET_MISSING", seconds=None)}}
