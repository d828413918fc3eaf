"""Whose a failed run is: the suite's, the secret's or the infrastructure's, from what the API server
recorded (the Job's conditions, its pods' status) and the suite's JUnit report.

Owns: the reason codes, the three causes, which causes are retried, the exit code each cause maps to
(documented in docs/runs.md for pipelines), and the one-line wording of each. Pure: no cluster calls,
so the fast tier classifies recorded pod statuses. Never quotes a pod's environment or a log line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Cause = Literal["passed", "suite", "secret", "infrastructure"]

# Exit codes of `python -m runs.run` (2 is unusable input, as before). Several suites ending
# differently: the first of EXIT_PRECEDENCE that applies (what blocks everything comes first).
EXIT_CODES: Mapping[Cause, int] = {"passed": 0, "suite": 1, "secret": 3, "infrastructure": 4}
EXIT_PRECEDENCE: tuple[Cause, ...] = ("secret", "infrastructure", "suite")
EXIT_INPUT = 2
# What each exit status says: the one table `--help` renders and docs/runs.md repeats (a test compares).
EXIT_MEANINGS: Mapping[int, str] = {
    EXIT_CODES["passed"]: "every suite passed (a pass after an infrastructure retry is reported flaky)",
    EXIT_CODES["suite"]: "a suite's tests failed or it left no usable JUnit report",
    EXIT_INPUT: "unusable input (outputs, service name, manifest) or cluster",
    EXIT_CODES["secret"]: "a secret kept a suite from starting (SECRET_MISSING, VAULT_AUTH_DENIED, SECRET_NOT_SYNCED)",
    EXIT_CODES["infrastructure"]: "the infrastructure failed it (IMAGE_PULL, EVICTED, NODE_PRESSURE, OOM_KILLED, "
                                  "DEADLINE_EXCEEDED, ...) after its retries",
}


def exit_status_help() -> str:
    """The exit table as `make run`'s --help prints it."""
    lines = [f"  {code}  {EXIT_MEANINGS[code]}" for code in sorted(EXIT_MEANINGS)]
    order = ", then ".join(str(EXIT_CODES[cause]) for cause in EXIT_PRECEDENCE)
    return "exit status (docs/runs.md):\n" + "\n".join(lines) + f"\nSuites ending differently: {order}."

# Waiting reasons the kubelet gives a container whose image cannot be had.
IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
                                "RegistryUnavailable"})
# A container that cannot start because its Secret or a key of it is missing.
SECRET_WAITING_REASONS = frozenset({"CreateContainerConfigError"})
DISRUPTION_REASONS = {"EvictionByEvictionAPI": "EVICTED", "PreemptionByScheduler": "PREEMPTED",
                      "DeletionByTaintManager": "NODE_NOT_READY", "TerminationByKubelet": "NODE_PRESSURE",
                      "DeletionByPodGC": "NODE_GONE"}


@dataclass(frozen=True)
class Verdict:
    """One run's end: its cause, a reason code, and one line saying what happened (no values)."""

    cause: Cause
    reason: str
    detail: str

    @property
    def retryable(self) -> bool:
        """Only the infrastructure's failures are retried: a suite's or a secret's would fail again."""
        return self.cause == "infrastructure"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.cause]


PASSED = Verdict("passed", "PASSED", "every test passed")


def exit_code(verdicts: Iterable[Verdict]) -> int:
    causes = {v.cause for v in verdicts}
    return next((EXIT_CODES[c] for c in EXIT_PRECEDENCE if c in causes), 0)


def _conditions(obj: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return list(((obj or {}).get("status") or {}).get("conditions") or [])


def _container_states(pod: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    states: list[tuple[str, Mapping[str, Any]]] = []
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        for which in ("state", "lastState"):
            for kind, detail in (status.get(which) or {}).items():
                if detail:
                    states.append((kind, detail))
    return states


def pod_verdict(pod: Mapping[str, Any]) -> Verdict | None:
    """What a pod's own status says went wrong that is not the suite's doing, or None."""
    name = (pod.get("metadata") or {}).get("name", "the pod")
    for kind, detail in _container_states(pod):
        reason = str(detail.get("reason") or "")
        if kind == "waiting" and reason in IMAGE_PULL_REASONS:
            return Verdict("infrastructure", "IMAGE_PULL", f"{name}: the suite image could not be pulled ({reason})")
        if kind == "waiting" and reason in SECRET_WAITING_REASONS:
            return Verdict("secret", "SECRET_NOT_SYNCED",
                           f"{name}: the container could not start: its Secret or a key of it is missing ({reason})")
        if kind == "terminated" and reason == "OOMKilled":
            return Verdict("infrastructure", "OOM_KILLED", f"{name}: the suite was killed for memory (OOMKilled): "
                           "raise the service's resources.limits.memory")
        if kind == "terminated" and reason in ("ContainerCannotRun", "StartError"):
            return Verdict("infrastructure", "CONTAINER_START", f"{name}: the container could not run ({reason})")
    for cond in _conditions(pod):
        if cond.get("type") == "DisruptionTarget" and cond.get("status") == "True":
            reason = str(cond.get("reason") or "")
            code = DISRUPTION_REASONS.get(reason, "EVICTED")
            return Verdict("infrastructure", code, f"{name}: the pod was disrupted ({reason or 'DisruptionTarget'})")
    status = pod.get("status") or {}
    if status.get("reason") == "Evicted":
        pressure = "low on resource" in str(status.get("message") or "")
        return Verdict("infrastructure", "NODE_PRESSURE" if pressure else "EVICTED",
                       f"{name}: the kubelet evicted the pod{' (node pressure)' if pressure else ''}")
    return None


def unschedulable(pods: Sequence[Mapping[str, Any]]) -> bool:
    return any(c.get("type") == "PodScheduled" and c.get("status") == "False" for p in pods for c in _conditions(p))


def classify(state: str, job: Mapping[str, Any] | None, pods: Sequence[Mapping[str, Any]], *,
             report_passed: bool, report_problem: str | None) -> Verdict:
    """The verdict of one attempt: `state` is the runner's (Complete, Failed, TimedOut, NotStarted)."""
    if state == "Complete" and report_passed:
        return PASSED
    for pod in reversed(pods):  # the newest pod's evidence first
        verdict = pod_verdict(pod)
        if verdict is not None:
            return verdict
    failed = next((c for c in _conditions(job) if c.get("type") == "Failed" and c.get("status") == "True"), None)
    if failed is not None and failed.get("reason") == "DeadlineExceeded" or state == "TimedOut":
        if pods and unschedulable(pods):
            return Verdict("infrastructure", "UNSCHEDULABLE", "no node took the pod before the deadline")
        if report_problem is None and not report_passed:
            return Verdict("suite", "TESTS_FAILED", "the suite's tests failed (its report came before the deadline)")
        return Verdict("infrastructure", "DEADLINE_EXCEEDED",
                       "the Job ran past activeDeadlineSeconds with no report from the suite")
    if failed is not None and failed.get("reason") == "PodFailurePolicy" and "DisruptionTarget" in str(
            failed.get("message") or ""):
        return Verdict("infrastructure", "EVICTED", "the pod was disrupted (the Job's podFailurePolicy)")
    if state == "NotStarted" or (state != "Complete" and not pods):
        return Verdict("infrastructure", "NO_POD", "no pod ran the suite (quota, admission or a deleted Job)")
    if report_problem is not None:
        return Verdict("suite", "NO_REPORT", f"the suite ended without a usable JUnit report ({report_problem})")
    return Verdict("suite", "TESTS_FAILED", "the suite's tests failed")
