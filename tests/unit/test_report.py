"""`make report` (runs/report.py): the run-history page from recorded manifests -- the grid, the flaky
rate over equivalent runs (a rotation is no flakiness), escaping, and manifests it cannot read."""

from __future__ import annotations

import copy
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from runs import report
from tests.unit.fakes import PHASE_SECONDS, RUN_MANIFEST, run_record


def keep(runs_dir: Path, run_id: str, services: dict[str, dict[str, Any]], *, commit: str = "c0ffee",
         started: str = "2026-12-07T10:00:00Z", junit: bool = True) -> None:
    folder = runs_dir / run_id
    folder.mkdir(parents=True)
    manifest = {**copy.deepcopy(RUN_MANIFEST), "runId": run_id, "commit": commit, "startedAt": started,
                "services": services}
    (folder / "run-manifest.json").write_text(json.dumps(manifest))
    if junit:
        for service in services:
            (folder / f"{service}.xml").write_text("<testsuites/>")


def passed(version: int = 3) -> dict[str, Any]:
    return {**run_record("passed", "PASSED", seconds=PHASE_SECONDS), "keys": [{"path": "secret/k", "version": version}]}


def failed(version: int = 3) -> dict[str, Any]:
    return {**run_record("suite", "TESTS_FAILED", seconds=PHASE_SECONDS), "keys": [{"path": "secret/k", "version": version}]}


class Cells(HTMLParser):
    """The grid's cells as (suite, result, link) from the written page."""

    def __init__(self) -> None:
        super().__init__()
        self.suite = ""
        self.cells: list[tuple[str, str, str | None]] = []
        self.in_grid = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.in_grid = a.get("id") == "grid"
        elif self.in_grid and tag == "tr" and a.get("data-suite"):
            self.suite = str(a["data-suite"])
        elif self.in_grid and tag == "td":
            self.cells.append((self.suite, str(a.get("data-result")), None))
        elif self.in_grid and tag == "a" and self.cells:
            suite, result, _ = self.cells[-1]
            self.cells[-1] = (suite, result, a.get("href"))


def cells(page: Path) -> list[tuple[str, str, str | None]]:
    parser = Cells()
    parser.feed(page.read_text())
    return parser.cells


def test_the_grid_has_one_cell_per_run_and_suite_linking_its_junit(tmp_path: Path) -> None:
    keep(tmp_path, "run-1", {"graph": passed(), "threads": failed()}, started="2026-12-07T10:00:00Z")
    keep(tmp_path, "run-2", {"graph": passed()}, started="2026-12-07T11:00:00Z")
    page = report.write(tmp_path, say=lambda _: None)
    assert page == tmp_path / "index.html"
    assert cells(page) == [("graph", "pass", "run-1/graph.xml"), ("graph", "pass", "run-2/graph.xml"),
                           ("threads", "fail", "run-1/threads.xml"), ("threads", "none", None)]


def test_a_pass_and_a_fail_among_equivalent_runs_is_flaky_but_not_across_a_rotation(tmp_path: Path) -> None:
    keep(tmp_path, "a", {"graph": passed(3), "threads": passed(3)}, started="2026-12-07T10:00:00Z")
    keep(tmp_path, "b", {"graph": failed(3), "threads": failed(4)}, started="2026-12-07T11:00:00Z")
    runs = report.read_runs(tmp_path)
    graph, threads = report.flakiness(runs, "graph"), report.flakiness(runs, "threads")
    assert (graph.runs, graph.flaky, graph.classes) == (2, 2, 1)
    assert (threads.runs, threads.flaky, threads.classes) == (2, 0, 2)  # key version 3 -> 4: a rotation


def test_another_commit_is_another_test_and_a_retried_pass_is_flaky(tmp_path: Path) -> None:
    keep(tmp_path, "a", {"graph": passed()}, commit="aaaa")
    keep(tmp_path, "b", {"graph": failed()}, commit="bbbb")
    keep(tmp_path, "c", {"graph": {**passed(), "flaky": True}}, commit="bbbb")
    keep(tmp_path, "d", {"graph": run_record("infrastructure", "IMAGE_PULL", seconds=None)}, commit="bbbb")
    stats = report.flakiness(report.read_runs(tmp_path), "graph")
    # b and c are equivalent and differ (fail, retried pass): both flaky; a stands alone; d is not the suite's.
    assert (stats.runs, stats.flaky, stats.classes) == (3, 2, 2)
    assert [c[1] for c in cells(report.write(tmp_path, say=lambda _: None))] == \
        ["pass", "fail", "flaky", "infrastructure"]


def test_what_ci_names_is_escaped(tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script>'
    keep(tmp_path, "r", {"graph": passed()})
    manifest = json.loads((tmp_path / "r" / "run-manifest.json").read_text())
    manifest.update(runId=hostile, caller=hostile)
    (tmp_path / "r" / "run-manifest.json").write_text(json.dumps(manifest))
    text = report.write(tmp_path, say=lambda _: None).read_text()
    assert hostile not in text and "&lt;script&gt;" in text
    assert text.count("<script>") == 1  # the page's own filter


def test_an_unreadable_manifest_is_skipped_by_name_and_none_at_all_is_one_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run-manifest.json").write_text("{not json")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "run-manifest.json").write_text("[1, 2]")
    assert report.main(["--runs-dir", str(tmp_path)]) == 2
    out = capsys.readouterr()
    assert "skipped" in out.out and "broken/run-manifest.json" in out.out and "list/run-manifest.json" in out.out
    assert out.err.strip().startswith("report: no readable run manifest under") and "Traceback" not in out.err
    assert not (tmp_path / "index.html").exists()
    assert report.main(["--runs-dir", str(tmp_path / "absent")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_the_phase_chart_draws_each_runs_median_phases(tmp_path: Path) -> None:
    keep(tmp_path, "run-1", {"graph": passed(), "threads": failed()})
    text = report.write(tmp_path, say=lambda _: None).read_text()
    assert f"{sum(PHASE_SECONDS.values()):.1f} s" in text
    assert all(f"{phase}: {seconds:.1f} s" in text for phase, seconds in PHASE_SECONDS.items())
