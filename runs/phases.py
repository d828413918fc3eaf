"""Where a suite's time to its results goes: one run of one service cut into consecutive phases.

Owns the phase names, the boundaries they run between and where each boundary is read:

| boundary | read from |
| --- | --- |
| `started` | the runner, when it began the service (wall clock) |
| `secretReady` | the readiness gate's `readyAt` (the ExternalSecret holds the current versions) |
| `jobCreated` | the runner, when it created the Job that counted (after earlier attempts) |
| `podScheduled` | the pod's `PodScheduled` condition |
| `imagePulled` | the kubelet's `Pulled` event of the pod (pulled, or already present) |
| `containerStarted` | the container's `startedAt` |
| `suiteStarted` | the JUnit report's own `timestamp`: the test runner's session start, the closest the report
  comes to its first test case |
| `reportWritten` | the container's `finishedAt` (the wrapper prints the report as the suite's last act) |
| `collected` | the runner, when the report and log were read and written (wall clock) |

Each phase is named after the boundary it ends at and lasts from the boundary before. The API server
records times to the second, the runner to the millisecond: a boundary is never earlier than the one
before it nor later than `collected`, so the phases always sum to `collected - started`; a boundary
that could not be read (no gate, no event, no report) takes the one before it and is listed in
`missing`. The runner's own monotonic measure of the same span (`Outcome.seconds`) is the independent
check: the e2e tier asserts the phases sum to it within 2 %.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from config.times import timestamp

BOUNDARIES = ("started", "secretReady", "jobCreated", "podScheduled", "imagePulled", "containerStarted",
              "suiteStarted", "reportWritten", "collected")
PHASES = BOUNDARIES[1:]
PULLED_REASON = "Pulled"


@dataclass(frozen=True)
class Phases:
    """A run's phases in order (name -> seconds) and the boundaries that had to be assumed."""

    seconds: dict[str, float]
    missing: tuple[str, ...]
    started: datetime

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def as_json(self) -> dict[str, Any]:
        return {"startedAt": self.started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}, "missing": list(self.missing)}


def pod_scheduled(pods: Sequence[Mapping[str, Any]]) -> datetime | None:
    for pod in reversed(pods):
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "True":
                return timestamp(str(condition.get("lastTransitionTime") or ""))
    return None


def container_times(pods: Sequence[Mapping[str, Any]]) -> tuple[datetime | None, datetime | None]:
    """The newest pod's container: when it started and (when it ended) when it finished."""
    for pod in reversed(pods):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            state = status.get("state") or {}
            ended = state.get("terminated") or {}
            running = state.get("running") or {}
            started = timestamp(str(ended.get("startedAt") or running.get("startedAt") or ""))
            if started is not None:
                return started, timestamp(str(ended.get("finishedAt") or ""))
    return None, None


def image_pulled(events: Sequence[Mapping[str, Any]]) -> datetime | None:
    """The kubelet's last `Pulled` event (core/v1: lastTimestamp to the second, or a precise eventTime)."""
    times = [timestamp(str(e.get("eventTime") or e.get("lastTimestamp") or e.get("firstTimestamp") or ""))
             for e in events if e.get("reason") == PULLED_REASON]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def cut(moments: Mapping[str, datetime | None]) -> Phases:
    """The phases between the boundaries given (`started` and `collected` are required)."""
    start, end = moments["started"], moments["collected"]
    if start is None or end is None:
        raise ValueError("a run's phases need its start and its collection time")
    previous = start
    seconds: dict[str, float] = {}
    missing: list[str] = []
    for name in PHASES:
        moment = moments.get(name)
        if moment is None:
            missing.append(name)
            moment = previous
        moment = min(max(moment, previous), end) if name != "collected" else max(end, previous)
        seconds[name] = (moment - previous).total_seconds()
        previous = moment
    return Phases(seconds, tuple(missing), start)


def suite_started(suites: Sequence[Any]) -> datetime | None:
    """The earliest `timestamp` the report's suites state (junitparser TestSuite objects)."""
    times = [timestamp(str(getattr(suite, "timestamp", None) or "")) for suite in suites]
    known = [t for t in times if t is not None]
    return min(known) if known else None


def percentiles(runs: Sequence[Mapping[str, Any]], quantiles: Sequence[int] = (50, 95)) -> dict[str, dict[int, float]]:
    """Per phase, the nearest-rank percentiles over many services' recorded phases (`Phases.as_json`)."""
    table: dict[str, dict[int, float]] = {}
    for phase in PHASES:
        values = sorted(float(r["seconds"][phase]) for r in runs if phase in (r.get("seconds") or {}))
        if values:
            table[phase] = {q: values[max(0, math.ceil(q / 100 * len(values)) - 1)] for q in quantiles}
    return table


def of_attempt(began: datetime, secret_ready: datetime | None, job_created: datetime | None,
               pods: Sequence[Mapping[str, Any]], events_of: Callable[[str], Sequence[Mapping[str, Any]]],
               suites: Sequence[Any], collected: datetime) -> dict[str, Any]:
    """The phases of the attempt that counted, from its newest pod (and that pod's events) and its report."""
    pod = str(((pods[-1] if pods else {}).get("metadata") or {}).get("name") or "")
    container_started, finished = container_times(pods)
    return cut({"started": began, "secretReady": secret_ready, "jobCreated": job_created,
                "podScheduled": pod_scheduled(pods), "imagePulled": image_pulled(events_of(pod) if pod else []),
                "containerStarted": container_started, "suiteStarted": suite_started(suites),
                "reportWritten": finished, "collected": collected}).as_json()
