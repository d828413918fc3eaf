"""`make run STACK=<env> SERVICE=<name>` (`python -m live.run`): run suites on demand, collect JUnit.

For pipelines that consume the stack outputs. For each service asked for, starts a fresh Job from
the service's suspended CronJob (a unique, valid DNS-label name, labelled with the run id and the
caller), waits until it is Complete or Failed (at most its own deadline plus a margin), saves its
log and its JUnit report as `<dir>/<service>.log|.xml`, and with `--all` a merged `<dir>/all.xml`.
`--all` runs suites concurrently, never more at once than the namespace's pod quota admits.
`--rerun` re-runs a failed install-time Job under its own name, so a gated `pulumi up` (waitForJobs)
can be retried without changing config.

Exit status: 0 every suite passed; 1 a suite failed, timed out or printed no usable report;
2 unusable input or cluster (one message, no traceback). Never prints a secret value. Files are
written only inside --junit-dir, named after the service (a DNS label, checked).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from junitparser import Error, TestCase

from config.credentials import redact
from config.errors import EnvironmentProblem
from config.stack import token_transport_problem
from live import kube, outputs
from live.classify import EXIT_CODES, PASSED, Verdict, classify, exit_code, pod_verdict
from live.gate import DEFAULT_BOUND_SECONDS, Gate, split
from live.jobs import (
    DEADLINE_MARGIN_SECONDS,
    SERVICE_LABEL,
    job_for_rerun,
    job_from_cron_job,
    job_name,
    latest_install_job,
    terminal_state,
)
from live.junit import SuiteReport, extract, merged, stand_in
from live.outputs import ServiceOutputs, StackOutputs
from live.provenance import (
    MANIFEST_NAME,
    Attempt,
    KeyVersion,
    RunManifest,
    ServiceRecord,
    chart_version,
    image_id,
    now,
    safe_run_id,
    stamp,
    sync_state,
    timestamp,
    version_state,
)

# A suite's log is kept whole up to this; the report is its last lines, so a longer log keeps its tail.
MAX_LOG_BYTES = 32 * 1024 * 1024
DEFAULT_INFRA_RETRIES = 1
DEFAULT_STUCK_SECONDS = 30.0
MAX_MANIFEST_BYTES = 5 * 1024 * 1024
EPILOG = """exit status (docs/runs.md): 0 every suite passed (a pass after an infrastructure retry is
reported flaky); 1 a suite's tests failed or it left no usable JUnit report; 3 a secret kept a suite
from starting (SECRET_MISSING, VAULT_AUTH_DENIED, SECRET_NOT_SYNCED); 4 the infrastructure failed it
(IMAGE_PULL, EVICTED, NODE_PRESSURE, OOM_KILLED, DEADLINE_EXCEEDED, ...) after its retries; 2 unusable
input (outputs, service name, manifest) or cluster. Suites ending differently: 3, then 4, then 1.

environment: KUBECONFIG (kubeconfig file; default ~/.kube/config), GITHUB_RUN_ID (default --run-id),
GITHUB_WORKFLOW or USER (default --caller); with --stack, the Pulumi CLI's own (PULUMI_BACKEND_URL,
PULUMI_ACCESS_TOKEN, PULUMI_CONFIG_PASSPHRASE)."""


def log_tail(chunks: Iterable[bytes], limit: int) -> bytes:
    """The last `limit` bytes of a stream, holding at most twice that at any time."""
    kept = bytearray()
    for chunk in chunks:
        kept += chunk
        if len(kept) > 2 * limit:
            del kept[:-limit]
    return bytes(kept[-limit:])


class RunInputError(Exception):
    """The outputs, the service name or the cluster cannot be used; the message says how to fix it."""


class Cluster(Protocol):
    def get_cron_job(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def create_job(self, namespace: str, body: dict[str, Any]) -> None: ...
    def delete_job(self, namespace: str, name: str) -> None: ...
    def list_jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...
    def pod_log(self, namespace: str, job: str) -> str | None: ...
    def free_pods(self, namespace: str) -> int | None: ...
    def pods(self, namespace: str, job: str) -> list[dict[str, Any]]: ...
    def get_external_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def annotate_external_secret(self, namespace: str, name: str, annotations: dict[str, str]) -> None: ...
    def warning_events(self, namespace: str, kind: str, name: str) -> dict[str, tuple[int, str]]: ...
    def secret_values(self, namespace: str, name: str) -> dict[str, str] | None: ...


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
            stuck = next((v for v in map(pod_verdict, self.cluster.pods(self.namespace, name))
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
            self.sleep(self.poll_seconds)
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
        began = self.clock()
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
        return self.finish(record, Outcome(service, last.job, last.state, self.clock() - began, last.report,
                                           last.log_file, verdict), attempts[:-1])

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
        started = timestamp(str(((attempt.pods[-1] if attempt.pods else {}).get("status") or {}).get("startTime") or ""))
        if self.gate is not None and started is not None:
            keys = []
            for path in svc.vault_keys:
                meta = self.gate.vault.metadata(*split(path))
                version = version_state(meta).version_at(started) if meta else None
                if version is not None:
                    created = version_state(meta or {}).created.get(version, "")
                    keys.append(KeyVersion(path, version, created, self.gate.owner(path)))
            record.set_keys(keys)
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


def result_word(verdict: Verdict) -> str:
    return {"passed": "passed", "suite": "failed", "secret": "blocked", "infrastructure": "infra"}[verdict.cause]


DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def image_repository(image: str) -> str:
    """`registry:port/path/name` of an image reference: its digest and tag taken off."""
    repository = image.split("@", 1)[0]
    last = repository.rpartition("/")[2]
    if ":" in last:  # a tag, not a registry port
        repository = repository[: len(repository) - len(last)] + last.split(":", 1)[0]
    return repository


def pinned_reference(image: str, recorded_id: str) -> str | None:
    """`repository@sha256:...`: the repository of the image the stack names, the digest a pod resolved.
    Only a digest is taken from a record: a replay never runs a repository the stack does not name."""
    digest = recorded_id.rpartition("@")[2] if "@" in recorded_id else recorded_id
    if not DIGEST.fullmatch(digest):
        return image if "@sha256:" in image else None
    return f"{image_repository(image)}@{digest}"


def check_replayed(replayed: dict[str, Any], source: str, *, stack: str, namespace: str,
                   services: dict[str, ServiceOutputs]) -> None:
    """A manifest is replayed only into the stack and namespace it records, with the images the stack
    names: a manifest from a pull request's artifact (which that pull request's code wrote) must not
    choose what runs beside another stack's secrets."""
    recorded_namespace = str(replayed.get("namespace") or "")
    if recorded_namespace != namespace:
        raise RunInputError(f"{source}: the replayed run was in namespace {recorded_namespace[:63]!r}, this run is in "
                            f"{namespace!r}: replay a run of this stack")
    recorded_stack = str(replayed.get("stack") or "")
    if recorded_stack and recorded_stack != stack:
        raise RunInputError(f"{source}: the replayed run was of stack {recorded_stack[:63]!r}, this run is of "
                            f"{stack!r}: replay a run of this stack")
    for name, record in sorted(replayed["services"].items()):
        svc = services.get(name)
        if svc is None:
            continue
        recorded = str(record.get("image") or "")
        if recorded and image_repository(recorded) != image_repository(svc.image):
            raise RunInputError(f"{source}: services.{name[:63]}.image names repository "
                                f"{image_repository(recorded)[:200]!r}, the stack runs {image_repository(svc.image)!r}: "
                                "a replay takes only the digest from a record, never the repository")
        image_id = str(record.get("imageId") or "")
        digest = image_id.rpartition("@")[2]
        if image_id and not DIGEST.fullmatch(digest):
            raise RunInputError(f"{source}: services.{name[:63]}.imageId is not a sha256 digest")


def replay_notes(service: str, recorded: dict[str, Any], now: tuple[Any, ...], gate: Gate) -> list[str]:
    """What differs from the replayed run's secrets, said plainly: values are never stored, so a
    version that no longer exists cannot be had again."""
    notes = []
    current = {k.path: k.version for k in now}
    for key in recorded.get("keys") or []:
        path, version = str(key.get("path")), key.get("version")
        if current.get(path) == version:
            continue
        meta = gate.vault.metadata(*split(path))
        state = version_state(meta).versions.get(int(version or 0), "gone") if meta else "gone"
        if state == "live":
            notes.append(f"{path}: the replayed run read version {version}; this run reads version "
                         f"{current.get(path)} (ESO syncs a key's current version)")
        else:
            notes.append(f"{path}: version {version}, which the replayed run read, no longer exists ({state}); "
                         f"this run reads version {current.get(path)} -- the value is stored nowhere by this project")
    return notes


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


def summary(outcomes: list[Outcome]) -> str:
    rows = [f"{'service':<24} {'result':<8} {'reason':<18} {'tests':>5} {'fail':>5} {'err':>5} {'seconds':>8}"]
    for o in outcomes:
        result = "flaky" if o.flaky else result_word(o.verdict)
        rows.append(f"{o.service:<24} {result:<8} {o.verdict.reason:<18} {o.report.tests:>5} {o.report.failures:>5} "
                    f"{o.report.errors:>5} {o.seconds:>8.0f}")
    return "\n".join(rows)


# --------------------------------------------------------------------------- the real cluster

ESO_GROUP, ESO_VERSION = "external-secrets.io", "v1"


class ClientCluster:
    """The official kubernetes client, on the context the stack outputs name (or --context)."""

    def __init__(self, context: str, kubeconfig: str | None = None) -> None:
        from kubernetes import client

        api = kube.api_client(context, kubeconfig)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self._sanitize = api.sanitize_for_serialization

    def _call(self, fn: Callable[[], Any], *, missing_ok: bool = True) -> Any:
        return kube.call(fn, missing_ok=missing_ok)

    def get_cron_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self._call(lambda: self.batch.read_namespaced_cron_job(name, namespace))
        return None if obj is None else self._sanitize(obj)

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self._call(lambda: self.batch.read_namespaced_job(name, namespace))
        return None if obj is None else self._sanitize(obj)

    def create_job(self, namespace: str, body: dict[str, Any]) -> None:
        # The client takes plain dicts as bodies; its annotations say V1Job.
        self._call(lambda: self.batch.create_namespaced_job(namespace, cast(Any, body)), missing_ok=False)

    def delete_job(self, namespace: str, name: str) -> None:
        self._call(lambda: self.batch.delete_namespaced_job(name, namespace, propagation_policy="Background"))

    def list_jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        jobs = self._call(lambda: self.batch.list_namespaced_job(namespace, label_selector=selector))
        return [self._sanitize(j) for j in (jobs.items if jobs else [])]

    def secret_values(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's values (to redact them; never written), [] when it is not there, None when
        the credentials may not read it."""
        import base64

        try:
            secret = self._call(lambda: self.core.read_namespaced_secret(name, namespace))
        except EnvironmentProblem:
            return None
        data = (secret.data or {}) if secret is not None else {}
        return {key: base64.b64decode(v).decode("utf-8", "replace") for key, v in data.items() if v}

    def pod_log(self, namespace: str, job: str) -> str | None:
        pods = self._call(lambda: self.core.list_namespaced_pod(namespace, label_selector=f"job-name={job}"))
        items = sorted(pods.items if pods else [], key=lambda p: p.metadata.creation_timestamp)
        if not items:
            return None
        # Raw bytes, streamed, and only the last MAX_LOG_BYTES kept: the report is at the log's end, so a
        # suite that logs more keeps its report, and one cannot push the real report past a head limit.
        raw = self._call(lambda: self.core.read_namespaced_pod_log(
            items[-1].metadata.name, namespace, _preload_content=False))
        if raw is None:
            return ""
        return log_tail(raw.stream(1 << 16), MAX_LOG_BYTES).decode("utf-8", "replace")

    def pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        pods = self._call(lambda: self.core.list_namespaced_pod(namespace, label_selector=f"job-name={job}"))
        items = sorted(pods.items if pods else [], key=lambda p: p.metadata.creation_timestamp)
        return [self._sanitize(p) for p in items]

    def get_external_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return cast(dict[str, Any] | None, self._call(lambda: self.custom.get_namespaced_custom_object(
            ESO_GROUP, ESO_VERSION, namespace, "externalsecrets", name)))

    def annotate_external_secret(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        self._call(lambda: self.custom.patch_namespaced_custom_object(
            ESO_GROUP, ESO_VERSION, namespace, "externalsecrets", name, {"metadata": {"annotations": annotations}}),
            missing_ok=False)

    def warning_events(self, namespace: str, kind: str, name: str) -> dict[str, tuple[int, str]]:
        """Warning events about one object: event name -> (count, message)."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name},type=Warning"
        events = self._call(lambda: self.core.list_namespaced_event(namespace, field_selector=selector))
        return {e.metadata.name: (int(e.count or 1), str(e.message or ""))
                for e in (events.items if events else [])}

    def free_pods(self, namespace: str) -> int | None:
        quotas = self._call(lambda: self.core.list_namespaced_resource_quota(namespace))
        free = None
        for q in quotas.items if quotas else []:
            hard = (q.status.hard or {}).get("pods") if q.status else None
            if hard is not None:
                left = int(hard) - int((q.status.used or {}).get("pods", 0))
                free = left if free is None else min(free, left)
        return free


def read_manifest(replay: str, runs_dir: Path) -> dict[str, Any]:
    """The manifest of the run to replay: a file, or the run id of one kept under --runs-dir."""
    path = Path(replay)
    if not path.is_file():
        path = runs_dir / safe_run_id(replay) / MANIFEST_NAME
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ValueError("too large")
        data: Any = json.loads(raw)
    except FileNotFoundError:
        raise RunInputError(f"RERUN={replay[:100]}: no run manifest there nor at {path}: pass a run id kept in "
                            f"{runs_dir}/, or the path of a run-manifest.json (a CI artifact)") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise RunInputError(f"{path}: not a run manifest ({type(exc).__name__})") from None
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict) or not all(isinstance(v, dict) for v in services.values()):
        raise RunInputError(f"{path}: not a run manifest (no `services` object)")
    return cast(dict[str, Any], data)


@dataclass(frozen=True)
class Endpoints:
    """Where this run's credentials go: the Vault that gets VAULT_TOKEN and the kube context KUBECONFIG
    serves. Taken from the stack file (which only who may change the repository writes), never from
    the outputs alone: the outputs come from the state, which more people can write."""

    vault_address: str | None
    vault_from: str
    kube_context: str


def endpoints(ns: argparse.Namespace, stack: StackOutputs, stack_name: str) -> Endpoints:
    from config.errors import ConfigError
    from config.files import PROJECT_DIR
    from config.loading import stack_settings
    from config.naming import stack_file

    settings = None
    if ns.stack or (stack_name and (PROJECT_DIR / stack_file(stack_name)).is_file()):
        try:
            settings = stack_settings(stack_name, project_dir=PROJECT_DIR)
        except ConfigError as exc:
            raise RunInputError(f"the stack file of {stack_name}: {exc}") from None
    context = ns.context or (settings.stack.kube_context if settings else stack.kube_context)
    if ns.skip_gate:
        return Endpoints(None, "", context)
    if ns.vault_address:
        address, source = ns.vault_address.rstrip("/"), "--vault-address"
    elif settings is not None:
        address, source = settings.stack.vault_address.rstrip("/"), f"vaultAddress in {settings.stack_file}"
        named = stack.vault.address.rstrip("/") if stack.vault else address
        if ns.stack is None and named != address:
            raise RunInputError(f"{ns.outputs}: vault.address {named[:200]} is not {source} ({address}): the token "
                                "goes only to the stack file's Vault; pass --vault-address to choose another")
    else:
        raise RunInputError(f"{ns.outputs}: no stack file Pulumi.{stack_name[:63]}.yaml here names the Vault that "
                            "may receive VAULT_TOKEN: pass --vault-address (or --stack), or --skip-gate")
    problem = token_transport_problem(address)
    if problem:
        raise RunInputError(f"{source}: {problem}")
    return Endpoints(address, source, context)


def vault_gate(stack: StackOutputs, where: Endpoints, cluster: ClientCluster, ns: argparse.Namespace) -> Gate | None:
    if ns.skip_gate or where.vault_address is None:
        return None
    from live.vault import HvacVaultReader

    if stack.vault is None:
        raise RunInputError("the outputs name no Vault (outputs.vault): the readiness gate needs it; or pass --skip-gate")
    token = os.environ.get("VAULT_TOKEN")
    if not token:
        raise RunInputError("VAULT_TOKEN is not set: the readiness gate reads each key's version (metadata, never a "
                            "value) with the deploy identity's token; or pass --skip-gate (no gate, no versions)")
    reader = HvacVaultReader(where.vault_address, token, address_from=where.vault_from)
    return Gate(reader, cluster, stack.vault, stack.namespace, bound=ns.gate_seconds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m live.run", description=__doc__.splitlines()[0], epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("service", nargs="?", help="the service whose suite to run")
    ap.add_argument("--all", action="store_true", help="every enabled service")
    ap.add_argument("--stack", help="read the outputs with `pulumi stack output --json --stack STACK`")
    ap.add_argument("--outputs", type=Path, help="a saved `pulumi stack output --json`")
    ap.add_argument("--context", help="kube context (default: the stack file's kubeContext)")
    ap.add_argument("--run-id", default=os.environ.get("GITHUB_RUN_ID", ""), help="caller's run id (label)")
    ap.add_argument("--caller", default=os.environ.get("GITHUB_WORKFLOW") or os.environ.get("USER") or "cli")
    ap.add_argument("--junit-dir", type=Path, default=Path("build/junit"))
    ap.add_argument("--runs-dir", type=Path, default=Path("build/runs"),
                    help="where each run's manifest is kept by run id (for --replay)")
    ap.add_argument("--rerun", action="store_true", help="re-run the failed install-time Job under its name")
    ap.add_argument("--replay", metavar="RUN", help="run again with the image digest a recorded run used "
                    "(its run id under --runs-dir, or its run-manifest.json)")
    ap.add_argument("--install-jobs", action="store_true", help="collect the install-time Jobs `make up` ran "
                    "(their JUnit, classification and provenance) instead of starting runs")
    ap.add_argument("--infra-retries", type=int, default=DEFAULT_INFRA_RETRIES, choices=range(0, 4),
                    help=f"retries of a run the infrastructure failed (default {DEFAULT_INFRA_RETRIES})")
    ap.add_argument("--gate-seconds", type=float, default=DEFAULT_BOUND_SECONDS,
                    help=f"how long a suite waits for its ExternalSecret to sync (default {DEFAULT_BOUND_SECONDS:g})")
    ap.add_argument("--stuck-seconds", type=float, default=DEFAULT_STUCK_SECONDS,
                    help="how long a pod may wait for an image it cannot pull (or a Secret key) before the attempt "
                    f"is ended (default {DEFAULT_STUCK_SECONDS:g})")
    ap.add_argument("--skip-gate", action="store_true", help="no readiness gate (no Vault token): no key versions")
    ap.add_argument("--vault-address", help="Vault to read versions from, the one VAULT_TOKEN is sent to (default: "
                    "the stack file's vaultAddress; with --outputs the outputs' vault.address must equal it)")
    ns = ap.parse_args(argv)
    started = now()
    try:
        if bool(ns.service) == ns.all:
            raise RunInputError("name one SERVICE or pass --all")
        if not ns.stack and ns.outputs is None:
            raise RunInputError("pass --stack <env> or --outputs FILE")
        if not 1 <= ns.gate_seconds <= 3600:
            raise RunInputError("--gate-seconds: between 1 and 3600")
        if ns.install_jobs and (ns.rerun or ns.replay):
            raise RunInputError("--install-jobs collects what `make up` ran: not with --rerun or --replay")
        if not 1 <= ns.stuck_seconds <= 3600:
            raise RunInputError("--stuck-seconds: between 1 and 3600")
        replayed = read_manifest(ns.replay, ns.runs_dir) if ns.replay else None
        stack = outputs.read_file(ns.outputs) if ns.outputs is not None else outputs.from_stack(ns.stack)
        stack_name = ns.stack or stack.environment or ""
        services = dict(stack.services)
        if replayed is not None:
            check_replayed(replayed, ns.replay[:200], stack=stack_name, namespace=stack.namespace,
                           services=services)
        if replayed is not None and not ns.service:
            services = {k: v for k, v in services.items() if k in replayed["services"]}
        if ns.service:
            if ns.service not in services:
                known = ", ".join(sorted(services))
                raise RunInputError(f"no service {ns.service[:64]!r} in the stack outputs; enabled: {known}")
            services = {ns.service: services[ns.service]}
        try:
            ns.junit_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunInputError(f"--junit-dir {ns.junit_dir}: cannot be created ({exc.strerror})") from None
        where = endpoints(ns, stack, stack_name)
        cluster = ClientCluster(where.kube_context, os.environ.get("KUBECONFIG"))
        run_id = ns.run_id or f"local-{int(time.time())}"
        runner = Runner(cluster, stack.namespace, ns.junit_dir, run_id, ns.caller,
                        gate=vault_gate(stack, where, cluster, ns), infra_retries=ns.infra_retries,
                        stuck_seconds=ns.stuck_seconds,
                        replay=None if replayed is None else dict(replayed["services"]))
        if ns.install_jobs:
            services = {k: v for k, v in services.items() if v.job}
            if not services:
                raise RunInputError("the stack runs no install-time Job (runOnInstall is off): nothing to collect")
        outcomes = run_all(runner, services, rerun=ns.rerun, install_jobs=ns.install_jobs)
    except (RunInputError, EnvironmentProblem) as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 2
    if len(outcomes) > 1:
        (ns.junit_dir / "all.xml").write_bytes(merged([o.report for o in outcomes]).tostring())
    status = exit_code(o.verdict for o in outcomes)
    manifest = RunManifest(run_id, ns.caller, stack.namespace, started, now(), status,
                           {o.service: o.record for o in outcomes if o.record is not None}, stack=stack_name)
    written = manifest.write(ns.junit_dir, ns.runs_dir)
    print(summary(outcomes))
    cause = next((c for c, code in EXIT_CODES.items() if code == status), "passed")
    print(f"run {run_id}: exit {status} ({cause}); manifest {written[-1]}")
    return status


if __name__ == "__main__":
    sys.exit(main())
