"""Every benchmark script runs at its smallest size on each change, so none falls behind the config
model unnoticed (bench/evaluate.py once stopped on `waitForJobs: missing` for weeks). bench/real.py
needs the real engine for its figures; here it builds everything it would deploy (--plan-only)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import PROJECT_DIR


def run_bench(*argv: str) -> list[dict]:
    proc = subprocess.run([sys.executable, *argv], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_the_mock_benchmark_runs_the_program_and_both_references_at_two_services() -> None:
    [row] = run_bench("-m", "bench.evaluate", "--services", "2", "--repeat", "1")
    assert row["services"] == 2 and row["resources"] > 10
    assert row["program_s"] > 0 and row["floor_s"] > 0 and row["replay_s"] > 0


def test_the_real_benchmark_plans_a_synthetic_catalog_and_a_valid_seed_script() -> None:
    [row] = run_bench("-m", "bench.real", "--plan-only", "--services", "3")
    assert row["services"] == 3 and row["seed_script_lines"] > 10 and row["suites_on_install"] is True


def test_the_real_benchmark_without_suites_deploys_releases_that_run_none_on_install() -> None:
    [row] = run_bench("-m", "bench.real", "--plan-only", "--no-suites", "--services", "3")
    assert row["services"] == 3 and row["suites_on_install"] is False


def test_the_trace_breakdown_reads_a_trace_file(tmp_path) -> None:
    from tests.unit.trace_spans import export, span

    trace = tmp_path / "t.otel"
    trace.write_text(export("pulumi-cli", span("pulumi", 0, 2)) + "\n")
    proc = subprocess.run([sys.executable, "-m", "bench.trace", str(trace)], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["wall"] == 2.0


def test_recorded_figures_carry_date_machine_and_command_and_keep_the_last_runs(tmp_path) -> None:
    from bench import record

    store, page = tmp_path / "figures.json", tmp_path / "figures.md"
    for i in range(record.KEEP + 2):
        record.record("make bench", f"python bench/evaluate.py --services {i}", {"services": i, "program_s": 0.1},
                      path=store, page=page)
    record.record("make e2e", "make e2e", {"up_from_empty_s": 30.1}, path=store, page=page)
    runs = json.loads(store.read_text())
    assert [r["figures"][0]["services"] for r in runs if r["name"] == "make bench"] == list(range(2, record.KEEP + 2))
    text = page.read_text()
    assert "## make e2e" in text and "`make e2e`" in text and "| up_from_empty_s |" in text
    assert "cores" in runs[-1]["machine"] and runs[-1]["date"].endswith("UTC")


def test_the_synthetic_stack_loads_at_every_size_the_benchmarks_deploy(tmp_path) -> None:
    """The quota the program checks at load (pods, CPU, memory, ephemeral storage) holds N suites: the
    100- and 1,000-service rows once stopped at load when the quota gained a kind."""
    from bench.real import project_copy
    from config.loading import stack_settings

    for services in (100, 1000):
        project = project_copy(tmp_path / str(services), services)
        assert len(stack_settings("local", project_dir=project).services) == services
