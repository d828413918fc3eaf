"""`make report` (`python -m runs.report`): the run-history page, one static HTML file written from the
recorded run manifests (`build/runs/<run id>/run-manifest.json`, kept by `make run`).

Owns what the page shows: a suites x runs grid (pass, fail, flaky, secret, infrastructure; each cell a
link to that run's JUnit file), each suite's flaky rate over equivalent runs, where each run's time to
its results went (phases, runs/phases.py) and what each run ran with (provenance). Runs are
**equivalent** when they share the commit, the image digest, the chart version and every key's version:
a suite that passed and failed among equivalent runs is flaky; one that failed after a rotation is not
(its runs differ in a key's version). A pass after an infrastructure retry is flaky too.

The page is written into the runs folder (`index.html`), beside the runs it links to, so the folder is
the artifact CI uploads. It holds names, versions, digests, reasons and times from the manifests, which
never hold a secret's value; everything is escaped (run ids and callers come from CI). No script or
style is fetched from anywhere: it opens offline.

Exit status: 0 written; 2 no readable manifest (one message). An unreadable manifest is skipped, named.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from config import cli
from runs.errors import RunInputError
from runs.phases import PHASES, percentiles
from runs.provenance import MANIFEST_NAME

PAGE_NAME = "index.html"
RESULTS = ("pass", "fail", "flaky", "secret", "infrastructure")
CHART_WIDTH = 640  # px of the longest run's bar
MAX_MANIFEST_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Cell:
    result: str  # one of RESULTS
    reason: str
    junit: str | None  # a link relative to the page, when the run kept the file


@dataclass
class Run:
    folder: str  # the run's folder name under the runs folder
    manifest: dict[str, Any]
    cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("runId") or self.folder)

    @property
    def started(self) -> str:
        return str(self.manifest.get("startedAt") or "")


def result_of(record: dict[str, Any]) -> str:
    cause = str(record.get("cause") or "")
    if cause == "passed":
        return "flaky" if record.get("flaky") else "pass"
    return {"suite": "fail", "secret": "secret"}.get(cause, "infrastructure")


def equivalence(manifest: dict[str, Any], record: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two runs of a suite the same test: commit, image digest, chart, every key's version."""
    keys = tuple(sorted((str(k.get("path")), int(k.get("version") or 0)) for k in record.get("keys") or []))
    return (str(manifest.get("commit") or ""), str(record.get("imageId") or ""),
            str(record.get("chartVersion") or ""), keys)


@dataclass(frozen=True)
class Flakiness:
    runs: int  # runs with a suite verdict (pass, fail, flaky)
    flaky: int
    classes: int  # sets of equivalent runs among them

    @property
    def rate(self) -> float:
        return self.flaky / self.runs if self.runs else 0.0


def flakiness(runs: list[Run], suite: str) -> Flakiness:
    """Flaky runs of one suite: marked flaky (a retry passed), or in a set of equivalent runs that both
    passed and failed. Secret and infrastructure failures are not the suite's: left out."""
    classes: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for run in runs:
        record = (run.manifest.get("services") or {}).get(suite)
        if record is None or result_of(record) not in ("pass", "fail", "flaky"):
            continue
        classes[equivalence(run.manifest, record)].append(result_of(record))
    flaky = 0
    for results in classes.values():
        mixed = "fail" in results and any(r in ("pass", "flaky") for r in results)
        flaky += len(results) if mixed else results.count("flaky")
    return Flakiness(sum(len(r) for r in classes.values()), flaky, len(classes))


def read_runs(runs_dir: Path, say: Callable[[str], None] = print) -> list[Run]:
    runs = []
    for path in sorted(runs_dir.glob(f"*/{MANIFEST_NAME}")):
        try:
            if path.stat().st_size > MAX_MANIFEST_BYTES:
                raise ValueError(f"larger than {MAX_MANIFEST_BYTES} bytes")
            manifest = json.loads(path.read_text())
            if not isinstance(manifest, dict) or not isinstance(manifest.get("services"), dict) or \
                    not all(isinstance(r, dict) for r in manifest["services"].values()):
                raise ValueError("not a run manifest (no services)")
        except (OSError, ValueError) as exc:  # json's errors are ValueErrors
            say(f"report: skipped {path}: {str(exc)[:200]}")
            continue
        run = Run(path.parent.name, manifest)
        for suite, record in manifest["services"].items():
            junit = path.parent / f"{suite}.xml"
            link = f"{path.parent.name}/{suite}.xml" if junit.is_file() else None
            run.cells[str(suite)] = Cell(result_of(record), str(record.get("reason") or ""), link)
        runs.append(run)
    return sorted(runs, key=lambda r: (r.started, r.run_id))


def phase_bars(runs: list[Run]) -> list[dict[str, Any]]:
    """Per run, the median of each phase over its services, as widths of one stacked bar."""
    medians = []
    for run in runs:
        recorded = [r["phases"] for r in (run.manifest.get("services") or {}).values() if isinstance(r.get("phases"), dict)]
        table = percentiles(recorded, (50,))
        medians.append({phase: table[phase][50] for phase in table})
    longest = max([sum(m.values()) for m in medians] + [1e-9])
    bars = []
    for run, median in zip(runs, medians, strict=True):
        x, segments = 0.0, []
        for index, phase in enumerate(PHASES):
            width = median.get(phase, 0.0) / longest * CHART_WIDTH
            segments.append({"phase": phase, "seconds": median.get(phase, 0.0), "x": x, "width": width,
                             "colour": index})
            x += width
        bars.append({"run": run.run_id, "total": sum(median.values()), "segments": segments})
    return bars


def page(runs: list[Run]) -> str:
    suites = sorted({suite for run in runs for suite in run.cells})
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(
        runs=runs, suites=suites, results=RESULTS, phases=PHASES, bars=phase_bars(runs), chart_width=CHART_WIDTH,
        flaky={suite: flakiness(runs, suite) for suite in suites})


def write(runs_dir: Path, say: Callable[[str], None] = print) -> Path:
    if not runs_dir.is_dir():
        raise RunInputError(f"--runs-dir {runs_dir}: no such folder; `make run` keeps each run there")
    runs = read_runs(runs_dir, say)
    if not runs:
        raise RunInputError(f"no readable run manifest under {runs_dir}: run suites first (`make run`)")
    target = runs_dir / PAGE_NAME
    try:
        target.write_text(page(runs))
    except OSError as exc:
        raise RunInputError(f"{target}: cannot be written ({exc.strerror})") from None
    say(f"report: {len(runs)} run(s), {len({s for r in runs for s in r.cells})} suite(s): {target}")
    return target


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("runs.report", __doc__)
    ap.add_argument("--runs-dir", type=Path, default=Path("build/runs"), help="the runs `make run` kept")
    ns: argparse.Namespace = ap.parse_args(argv)

    def body() -> int:
        write(ns.runs_dir)
        return 0

    return cli.run("report", body)


if __name__ == "__main__":
    sys.exit(main())
