"""The runner behind `make run` and `make rotate`: for each service, the readiness gate, then a fresh
Job from its suspended CronJob (a unique DNS-label name, labelled with the run id and the caller), waited
for until Complete or Failed (at most its own deadline plus a margin), its log and JUnit written as
`<dir>/<service>.log|.xml` with every secret value redacted, attempts retried when the infrastructure
failed them, and what it ran with recorded (provenance). Suites run concurrently, never more at once
than the namespace's pod quota admits. The cluster is a narrow Protocol (Cluster); the real one is
clients.kubernetes.ClientCluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from config.credentials import redact
from config.errors import EnvironmentProblem
from config.outputs import ServiceOutputs
from config.times import timestamp
from runs.classify import Verdict, classify, pod_verdict
from runs.errors import RunInputError
from runs.gate import Gate, split
from runs.jobs import (
    DEADLINE_MARGIN_SECONDS,
    SERVICE_LABEL,
    job_for_rerun,
    job_from_cron_job,
    job_name,
    latest_install_job,
    pod_succeeded,
    terminal_state,
)
from runs.junit import SuiteReport, extract, reason_case, result_word, retried_case, stand_in
from runs.outcomes import Outcome
from runs.phases import container_times, of_attempt
from runs.provenance import (
    Attempt,
    ServiceRecord,
    chart_version,
    image_id,
    now,
    stamp,
    sync_state,
    versions_at,
)
from runs.replay import pinned_reference, replay_notes

DEFAULT_INFRA_RETRIES = 1
DEFAULT_STUCK_SECONDS = 30.0


class Cluster(Protocol):
    def get_cron_job(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def create_job(self, namespace: str, body: dict[str, Any]) -> None: ...
    def delete_job(self, namespace: str, name: str) -> None: ...
    def list_jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...
    def pod_log(self, namespace: str, job: str) -> str | None: ...
    def free_pods(self, namespace: str) -> int | None: ...
    def pods(self, namespace: str, job: str) -> list[dict[str, Any]]: ...
    def watch_pods(self, namespace: str, job: str, seconds: float) -> None: ...
    def get_external_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def annotate_external_secret(self, namespace: str, name: str, annotations: dict[str, str]) -> None: ...
    def warning_events(self, namespace: str, kind: str, name: str) -> dict[str, tuple[int, str]]: ...
    def pod_events(self, namespace: str, pod: str) -> list[dict[str, Any]]: ...
    def secret_values(self, namespace: str, name: str) -> dict[str, str] | None: ...


@dataclass
class Attempted:
    """One attempt's Job as it ended: its state, the report from its log, its pods' last status."""

    job: str
    state: str
    seconds: float
    report: SuiteReport
    log_file: Path | None
    job_object: dict[str, Any] | None
    pods: list[dict[str, Any]]
    stopped: Verdict | None = None  # the runner ended it early (an image that cannot be pulled, ...)

    def verdict(self) -> Verdict:
        return self.stopped or classify(self.state, self.job_object, self.pods,
                                        report_passed=self.report.passed, report_problem=self.report.problem)


@dataclass
class Runner:
    cluster: Cluster
    namespace: str
    junit_dir: Path
    run_id: str
    caller: str
    say: Callable[[str], None] = print
    poll_seconds: float = 2.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    started: dict[str, float] = field(default_factory=dict)
    created_at: dict[str, datetime] = field(default_factory=dict)  # Job name -> when the runner created it
    wall: Callable[[], datetime] = lambda: datetime.now(UTC)
    gate: Gate | None = None
    infra_retries: int = DEFAULT_INFRA_RETRIES
    # How long a pod may wait for an image that cannot be pulled (or for a Secret key) before the run
    # is ended as the infrastructure's (the secret's) instead of waiting out the Job's deadline.
    stuck_seconds: float = DEFAULT_STUCK_SECONDS
    replay: dict[str, dict[str, Any]] | None = None  # service -> its record in the replayed run's manifest

    def file(self, service: str, suffix: str) -> Path:
        path = self.junit_dir / f"{service}{suffix}"
        if path.resolve().parent != self.junit_dir.resolve():  # service names are DNS labels; never elsewhere
            raise RunInputError(f"{service!r} is not a service name")
        return path

    def start(self, service: str, svc: ServiceOutputs, *, rerun: bool = False, attempt: int = 1) -> str:
        if rerun:
            if not svc.job:
                raise RunInputError(f"{service}: the stack runs no install-time Job (outputs.services.{service}.job "
                                    "is null); run it on demand without --rerun")
            failed = latest_install_job(self.cluster.list_jobs(self.namespace, f"{SERVICE_LABEL}={service}"))
            if failed is None:
                raise RunInputError(f"{service}: there is no install-time Job to re-run in {self.namespace}; "
                                    "run it on demand without --rerun")
            name = str(failed["metadata"]["name"])
            if attempt == 1 and terminal_state(failed) != "Failed":
                raise RunInputError(f"{service}: Job {name} has not failed; nothing to re-run")
            self.cluster.delete_job(self.namespace, name)
            for _ in range(60):
                if self.cluster.get_job(self.namespace, name) is None:
                    break
                self.sleep(1)
            self.cluster.create_job(self.namespace, job_for_rerun(failed))
        else:
            cron = self.cluster.get_cron_job(self.namespace, svc.cron_job)
            if cron is None:
                raise RunInputError(f"{service}: CronJob {svc.cron_job} is not in namespace {self.namespace}: "
                                    "deploy the stack first (`make up`)")
            name = job_name(svc.cron_job, self.run_id, f"{service}/{attempt}/{time.time_ns()}")
            body = job_from_cron_job(cron, name, self.run_id, self.caller)
            pinned = self.pinned_image(service, svc)
            if pinned:
                body["spec"]["template"]["spec"]["containers"][0]["image"] = pinned
            self.cluster.create_job(self.namespace, body)
        self.started[name] = self.clock()
        self.created_at[name] = self.wall()
        self.say(f"{service}: started Job {name}" + (f" (attempt {attempt})" if attempt > 1 else ""))
        return name

    def pinned_image(self, service: str, svc: ServiceOutputs) -> str | None:
        """In a replay, the image the replayed run's pod ran, by digest."""
        if self.replay is None:
            return None
        recorded = self.replay.get(service) or {}
        return pinned_reference(svc.image, str(recorded.get("imageId") or ""))

    def wait(self, service: str, svc: ServiceOutputs, name: str) -> Attempted:
        deadline = svc.deadline_seconds + DEADLINE_MARGIN_SECONDS
        began = self.started.get(name, self.clock())
        last_note = began
        state: str | None = None
        stuck_since: float | None = None
        stopped: Verdict | None = None
        while True:
            job = self.cluster.get_job(self.namespace, name)
            state = terminal_state(job)
            elapsed = self.clock() - began
            if state or elapsed > deadline:
                break
            pods_now = self.cluster.pods(self.namespace, name)
            if pod_succeeded(pods_now):  # the Job controller says Complete seconds later (docs/runs.md, phases)
                state = "Complete"
                break
            stuck = next((v for v in map(pod_verdict, pods_now)
                          if v is not None and v.reason in ("IMAGE_PULL", "SECRET_NOT_SYNCED")), None)
            if stuck is None:
                stuck_since = None
            elif stuck_since is None:
                stuck_since = self.clock()
            elif self.clock() - stuck_since >= self.stuck_seconds:
                stopped = Verdict(stuck.cause, stuck.reason, f"{stuck.detail}, for {self.stuck_seconds:g} s")
                state = "Stopped"
                break
            if self.clock() - last_note >= 30:
                self.say(f"{service}: running ({elapsed:.0f} s of at most {deadline} s)")
                last_note = self.clock()
            # Back at the first change to its pods, or after poll_seconds (the Job's conditions: no pod shows them).
            self.cluster.watch_pods(self.namespace, name, self.poll_seconds)
        state = state or "TimedOut"
        pods = self.cluster.pods(self.namespace, name)
        if stopped is not None:  # its container never started: there is no log to read
            self.cluster.delete_job(self.namespace, name)
        log = self.cluster.pod_log(self.namespace, name) if stopped is None else None
        if log is not None:
            log = self.redacted(service, svc, log)
        log_file = None
        if log is not None:
            log_file = self.file(service, ".log")
            log_file.write_text(log)
        report = extract(service, log or "")
        return Attempted(name, state, self.clock() - began, report, log_file, job, pods, stopped)

    def redacted(self, service: str, svc: ServiceOutputs, log: str) -> str:
        """The log with every value the suite received from its Secret (and every string shaped like
        a generated value) replaced: the log and the JUnit made from it are uploaded as CI artifacts."""
        values = self.cluster.secret_values(self.namespace, svc.secret_name) if svc.secret_name else {}
        if values is None:
            self.say(f"{service}: Secret {svc.secret_name} could not be read to redact its values from the log; "
                     "only strings shaped like generated values are redacted")
        return redact(log, values or {}, shown_as=f"[redacted: a value of {svc.secret_name or 'a secret'}]")

    def run_service(self, service: str, svc: ServiceOutputs, *, rerun: bool) -> Outcome:
        """The gate, then attempts until one passes, fails for a reason of its own, or retries run out."""
        record = ServiceRecord(service, image=svc.image)
        began, began_at = self.clock(), self.wall()
        gated = self.gate.check(service, svc) if self.gate is not None else None
        if gated is not None:
            record.set_keys(gated.keys)
            record.set_sync(gated.sync)
            record.gate = {"seconds": round(gated.seconds, 1), "forcedSync": gated.forced,
                           "reason": gated.verdict.reason if gated.verdict else "READY",
                           "readyAt": now(precise=True)}
            self.say(f"{service}: {'secrets at the current versions' if gated.verdict is None else gated.verdict.reason}"
                     f" ({gated.seconds:.1f} s{', ESO synced on request' if gated.forced else ''})")
            if self.replay is not None and self.gate is not None:
                record.notes += replay_notes(service, self.replay.get(service) or {}, gated.keys, self.gate)
                for note in record.notes:
                    self.say(f"{service}: {note}")
            if gated.verdict is not None:
                return self.finish(record, Outcome(service, "", "Blocked", self.clock() - began,
                                                   stand_in(service, gated.verdict.detail, gated.verdict.reason,
                                                            type_=gated.verdict.reason),
                                                   verdict=gated.verdict), [])
        attempts: list[Attempted] = []
        while True:
            attempt = self.wait(service, svc, self.start(service, svc, rerun=rerun, attempt=len(attempts) + 1))
            attempts.append(attempt)
            verdict = attempt.verdict()
            record.attempts.append(Attempt(attempt.job, attempt.state, verdict.cause, verdict.reason, verdict.detail,
                                           round(attempt.seconds, 1)))
            if not verdict.retryable or len(attempts) > self.infra_retries:
                break
            self.say(f"{service}: {verdict.reason} ({verdict.detail}): the infrastructure's, retrying "
                     f"({len(attempts)} of at most {self.infra_retries} retries)")
        last = attempts[-1]
        record.image_id = image_id(last.pods)
        record.chart_version = chart_version(last.job_object)
        if gated is not None and self.gate is not None:
            now_keys, _ = self.gate.current_versions(service, svc)
            changed = [k.path for k, n in zip(gated.keys, now_keys, strict=False) if k.version != n.version]
            if changed:
                record.notes.append(f"a newer version of {', '.join(changed)} was written during the run: the "
                                    "suite may have read either")
        record.phases = self.phases(began_at, timestamp(str(record.gate.get("readyAt") or "")), last, self.wall())
        return self.finish(record, Outcome(service, last.job, last.state, self.clock() - began, last.report,
                                           last.log_file, verdict), attempts[:-1])

    def phases(self, began: datetime, ready: datetime | None, last: Attempted, collected: datetime) -> dict[str, Any]:
        def events(pod: str) -> list[dict[str, Any]]:
            try:
                return self.cluster.pod_events(self.namespace, pod)
            except EnvironmentProblem:  # credentials that may not list events: that boundary is `missing`
                return []

        return of_attempt(began, ready, self.created_at.get(last.job), last.pods, events,
                          list(last.report.xml), collected)

    def collect_install(self, service: str, svc: ServiceOutputs) -> Outcome:
        """The newest install-time Job's result, as `make up` ran it (no gate ran: each key's version is
        the newest one written before the pod started -- what its Secret could hold then)."""
        job = latest_install_job(self.cluster.list_jobs(self.namespace, f"{SERVICE_LABEL}={service}"))
        if job is None:
            raise RunInputError(f"{service}: no install-time Job in {self.namespace} (runOnInstall is off, or the "
                                "Job's TTL removed it): run the suite on demand instead")
        name = str(job["metadata"]["name"])
        attempt = self.wait(service, svc, name)
        verdict = attempt.verdict()
        record = ServiceRecord(service, image=svc.image, image_id=image_id(attempt.pods),
                               chart_version=chart_version(attempt.job_object))
        record.attempts.append(Attempt(name, attempt.state, verdict.cause, verdict.reason, verdict.detail,
                                       round(attempt.seconds, 1)))
        record.gate = {"reason": "NOT_GATED", "basis": "an install-time Job: versions as of its pod's start"}
        created = timestamp(str(((attempt.job_object or {}).get("metadata") or {}).get("creationTimestamp") or ""))
        if created is not None:  # `make up` made the Job: its phases run from then to its report
            self.created_at[name] = created
            record.phases = self.phases(created, None, attempt, container_times(attempt.pods)[1] or self.wall())
        started = timestamp(str(((attempt.pods[-1] if attempt.pods else {}).get("status") or {}).get("startTime") or ""))
        if self.gate is not None and started is not None:
            gate = self.gate
            record.set_keys(versions_at(svc.vault_keys, lambda path: gate.vault.metadata(*split(path)), gate.owner,
                                        started))
            es = self.cluster.get_external_secret(self.namespace, svc.secret_name) if svc.secret_name else None
            record.set_sync(sync_state(es) if es else None)
        return self.finish(record, Outcome(service, name, attempt.state, attempt.seconds, attempt.report,
                                           attempt.log_file, verdict), [])

    def finish(self, record: ServiceRecord, outcome: Outcome, earlier: list[Attempted]) -> Outcome:
        """The report as the service's JUnit file: why it failed as an error case, earlier attempts as
        flakyFailure/rerunFailure elements, and the record's properties on every suite."""
        verdict, service = outcome.verdict, outcome.service
        record.cause, record.reason = verdict.cause, verdict.reason
        record.flaky = verdict.cause == "passed" and bool(earlier)
        record.seconds = round(outcome.seconds, 3)
        if verdict.cause in ("secret", "infrastructure") and outcome.report.problem is not None:
            # No report: the reason is the one error case (not "no report", which would blame the suite).
            outcome.report = stand_in(service, verdict.detail, verdict.reason, type_=verdict.reason)
        report = outcome.report
        suite = next(iter(report.xml))
        if verdict.cause in ("secret", "infrastructure") and report.problem is None:
            suite.add_testcase(reason_case(service, verdict))
        if earlier:
            suite.add_testcase(retried_case(service, [(a.job, a.verdict()) for a in earlier], flaky=record.flaky))
        suite.update_statistics()
        report.xml.update_statistics()
        stamp(report.xml, record, self.run_id)
        self.file(service, ".xml").write_bytes(report.xml.tostring())
        outcome.record = record
        result = "flaky" if record.flaky else result_word(verdict)
        self.say(f"{service}: {result} ({verdict.reason}) in {outcome.seconds:.0f} s"
                 + ("" if outcome.passed else f": {verdict.detail}"))
        return outcome


def run_all(runner: Runner, services: dict[str, ServiceOutputs], *, rerun: bool,
            install_jobs: bool = False) -> list[Outcome]:
    free = runner.cluster.free_pods(runner.namespace)
    cap = max(1, min(len(services), free if free is not None else len(services)))
    if free is not None and cap < len(services):
        runner.say(f"running {cap} suites at a time: the namespace's pod quota admits {free} more pods")

    def one(item: tuple[str, ServiceOutputs]) -> Outcome:
        service, svc = item
        try:
            if install_jobs:
                return runner.collect_install(service, svc)
            return runner.run_service(service, svc, rerun=rerun)
        except (RunInputError, EnvironmentProblem) as exc:
            if len(services) == 1:
                raise
            # One suite that cannot start must not cost the others their results.
            runner.say(f"{service}: not started: {exc}")
            report = stand_in(service, f"not started: {exc}", "not started")
            runner.file(service, ".xml").write_bytes(report.xml.tostring())
            return Outcome(service, "", "NotStarted", 0.0, report,
                           verdict=Verdict("infrastructure", "NOT_STARTED", str(exc)[:300]))

    with ThreadPoolExecutor(max_workers=cap) as pool:
        return list(pool.map(one, sorted(services.items())))
