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
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from config.errors import EnvironmentProblem
from live import kube, outputs
from live.jobs import (
    DEADLINE_MARGIN_SECONDS,
    SERVICE_LABEL,
    job_for_rerun,
    job_from_cron_job,
    job_name,
    latest_install_job,
    terminal_state,
)
from live.junit import SuiteReport, extract, merged, outcome_case, stand_in
from live.outputs import ServiceOutputs

# A suite's log is kept whole up to this; the report is its last lines, so a longer log keeps its tail.
MAX_LOG_BYTES = 32 * 1024 * 1024
EPILOG = """exit status: 0 every suite passed; 1 a suite failed, timed out or left no usable JUnit
report; 2 unusable input (outputs, service name) or cluster.

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


@dataclass
class Outcome:
    service: str
    job: str
    state: str  # Complete | Failed | TimedOut | NotStarted
    seconds: float
    report: SuiteReport
    log_file: Path | None = None

    @property
    def passed(self) -> bool:
        return self.state == "Complete" and self.report.passed


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

    def file(self, service: str, suffix: str) -> Path:
        path = self.junit_dir / f"{service}{suffix}"
        if path.resolve().parent != self.junit_dir.resolve():  # service names are DNS labels; never elsewhere
            raise RunInputError(f"{service!r} is not a service name")
        return path

    def start(self, service: str, svc: ServiceOutputs, *, rerun: bool = False) -> str:
        if rerun:
            if not svc.job:
                raise RunInputError(f"{service}: the stack runs no install-time Job (outputs.services.{service}.job "
                                    "is null); run it on demand without --rerun")
            failed = latest_install_job(self.cluster.list_jobs(self.namespace, f"{SERVICE_LABEL}={service}"))
            if failed is None:
                raise RunInputError(f"{service}: there is no install-time Job to re-run in {self.namespace}; "
                                    "run it on demand without --rerun")
            name = str(failed["metadata"]["name"])
            if terminal_state(failed) != "Failed":
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
            name = job_name(svc.cron_job, self.run_id, f"{service}/{time.time_ns()}")
            self.cluster.create_job(self.namespace, job_from_cron_job(cron, name, self.run_id, self.caller))
        self.started[name] = self.clock()
        self.say(f"{service}: started Job {name}")
        return name

    def wait(self, service: str, svc: ServiceOutputs, name: str) -> Outcome:
        deadline = svc.deadline_seconds + DEADLINE_MARGIN_SECONDS
        began = self.started.get(name, self.clock())
        last_note = began
        state: str | None = None
        while True:
            state = terminal_state(self.cluster.get_job(self.namespace, name))
            elapsed = self.clock() - began
            if state or elapsed > deadline:
                break
            if self.clock() - last_note >= 30:
                self.say(f"{service}: running ({elapsed:.0f} s of at most {deadline} s)")
                last_note = self.clock()
            self.sleep(self.poll_seconds)
        state = state or "TimedOut"
        log = self.cluster.pod_log(self.namespace, name)
        log_file = None
        if log is not None:
            log_file = self.file(service, ".log")
            log_file.write_text(log)
            report = extract(service, log)
        else:
            report = extract(service, "")
        if state != "Complete" and report.problem is not None:
            suite = next(iter(report.xml))
            why = {"Failed": "the Job failed", "TimedOut": f"no result within {deadline} s"}[state]
            suite.add_testcase(outcome_case(service, f"{why}; {'no pod log' if log is None else report.problem}"))
            suite.update_statistics()
            report.xml.update_statistics()
        self.file(service, ".xml").write_bytes(report.xml.tostring())
        outcome = Outcome(service, name, state, self.clock() - began, report, log_file)
        self.say(f"{service}: {state}{'' if outcome.passed else ' (not passed)'} in {outcome.seconds:.0f} s")
        return outcome


def run_all(runner: Runner, services: dict[str, ServiceOutputs], *, rerun: bool) -> list[Outcome]:
    free = runner.cluster.free_pods(runner.namespace)
    cap = max(1, min(len(services), free if free is not None else len(services)))
    if free is not None and cap < len(services):
        runner.say(f"running {cap} suites at a time: the namespace's pod quota admits {free} more pods")

    def one(item: tuple[str, ServiceOutputs]) -> Outcome:
        service, svc = item
        try:
            return runner.wait(service, svc, runner.start(service, svc, rerun=rerun))
        except (RunInputError, EnvironmentProblem) as exc:
            if len(services) == 1:
                raise
            # One suite that cannot start must not cost the others their results.
            runner.say(f"{service}: not started: {exc}")
            report = stand_in(service, f"not started: {exc}", "not started")
            runner.file(service, ".xml").write_bytes(report.xml.tostring())
            return Outcome(service, "", "NotStarted", 0.0, report)

    with ThreadPoolExecutor(max_workers=cap) as pool:
        return list(pool.map(one, sorted(services.items())))


def summary(outcomes: list[Outcome]) -> str:
    rows = [f"{'service':<24} {'result':<10} {'tests':>5} {'fail':>5} {'err':>5} {'seconds':>8}"]
    for o in outcomes:
        result = "passed" if o.passed else o.state.lower() if o.state != "Complete" else "failed"
        rows.append(f"{o.service:<24} {result:<10} {o.report.tests:>5} {o.report.failures:>5} "
                    f"{o.report.errors:>5} {o.seconds:>8.0f}")
    return "\n".join(rows)


# --------------------------------------------------------------------------- the real cluster


class ClientCluster:
    """The official kubernetes client, on the context the stack outputs name (or --context)."""

    def __init__(self, context: str, kubeconfig: str | None = None) -> None:
        from kubernetes import client

        api = kube.api_client(context, kubeconfig)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
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

    def free_pods(self, namespace: str) -> int | None:
        quotas = self._call(lambda: self.core.list_namespaced_resource_quota(namespace))
        free = None
        for q in quotas.items if quotas else []:
            hard = (q.status.hard or {}).get("pods") if q.status else None
            if hard is not None:
                left = int(hard) - int((q.status.used or {}).get("pods", 0))
                free = left if free is None else min(free, left)
        return free


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m live.run", description=__doc__.splitlines()[0], epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("service", nargs="?", help="the service whose suite to run")
    ap.add_argument("--all", action="store_true", help="every enabled service")
    ap.add_argument("--stack", help="read the outputs with `pulumi stack output --json --stack STACK`")
    ap.add_argument("--outputs", type=Path, help="a saved `pulumi stack output --json`")
    ap.add_argument("--context", help="kube context (default: the outputs' kubeContext)")
    ap.add_argument("--run-id", default=os.environ.get("GITHUB_RUN_ID", ""), help="caller's run id (label)")
    ap.add_argument("--caller", default=os.environ.get("GITHUB_WORKFLOW") or os.environ.get("USER") or "cli")
    ap.add_argument("--junit-dir", type=Path, default=Path("build/junit"))
    ap.add_argument("--rerun", action="store_true", help="re-run the failed install-time Job under its name")
    ns = ap.parse_args(argv)
    try:
        if bool(ns.service) == ns.all:
            raise RunInputError("name one SERVICE or pass --all")
        if not ns.stack and ns.outputs is None:
            raise RunInputError("pass --stack <env> or --outputs FILE")
        stack = outputs.read_file(ns.outputs) if ns.outputs is not None else outputs.from_stack(ns.stack)
        services = dict(stack.services)
        if ns.service:
            if ns.service not in services:
                known = ", ".join(sorted(services))
                raise RunInputError(f"no service {ns.service[:64]!r} in the stack outputs; enabled: {known}")
            services = {ns.service: services[ns.service]}
        try:
            ns.junit_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunInputError(f"--junit-dir {ns.junit_dir}: cannot be created ({exc.strerror})") from None
        runner = Runner(ClientCluster(ns.context or stack.kube_context, os.environ.get("KUBECONFIG")),
                        stack.namespace, ns.junit_dir, ns.run_id or f"local-{int(time.time())}", ns.caller)
        outcomes = run_all(runner, services, rerun=ns.rerun)
    except (RunInputError, EnvironmentProblem) as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 2
    if len(outcomes) > 1:
        (ns.junit_dir / "all.xml").write_bytes(merged([o.report for o in outcomes]).tostring())
    print(summary(outcomes))
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
