"""kube-score (a maintained rule set, built from its Go module by `make kube-score`) over every rendered
fixture stack: no CRITICAL and no WARNING. Every check it skips by default stays skipped; the checks we
ignore on purpose are listed in IGNORED, each with its reason (none today)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from offline import render
from tests.conftest import PROJECT_DIR, STACKS, fixture_project
from tools.toolchain.build import go_problem, load_toolchain, output_path

# check id -> why it does not apply to integration-test Jobs (kube-score's `--ignore-test`).
IGNORED: dict[str, str] = {}


def kube_score() -> str:
    binary = output_path("kube-score", load_toolchain()["binaries"]["kube-score"])
    if binary.exists():
        return str(binary)
    problem = go_problem()
    if problem:  # no go, or one older than toolchain.toml's minimum: `make kube-score` said so too
        pytest.skip(f"kube-score is not built and cannot be here ({problem}): these checks did not run")
    pytest.fail("kube-score is not built: run `make kube-score` (make test does)")


def score(manifests: list[Path]) -> subprocess.CompletedProcess[str]:
    ignores = [arg for check in IGNORED for arg in ("--ignore-test", check)]
    return subprocess.run([kube_score(), "score", "--output-format", "ci", *ignores, *map(str, manifests)],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("kube-score")
    return {stack: render.render(stack, out, fixture_project()) for stack in STACKS}


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_stack_has_no_critical_or_warning_finding(rendered: dict[str, Path], stack: str) -> None:
    manifests = sorted((rendered[stack] / "manifests").glob("*.yaml"))
    proc = score(manifests)
    findings = [line for line in proc.stdout.splitlines() if line.startswith(("[CRITICAL]", "[WARNING]"))]
    assert not findings, "\n".join(findings[:20])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("[OK]") > 100  # it read the Jobs and CronJobs, not nothing


def test_kube_score_sees_a_suite_without_disk_bounds_and_a_cron_job_without_a_deadline(
        rendered: dict[str, Path], tmp_path: Path) -> None:
    """What the red team found before the chart set them: the checks run, and would fail."""
    manifests = sorted((rendered["staging"] / "manifests").glob("*.yaml"))
    release = next(p for p in manifests if p.name == "release-test-graph.yaml")
    docs = [d for d in yaml.safe_load_all(release.read_text()) if d]
    for doc in docs:
        spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
        spec["template"]["spec"]["containers"][0]["resources"]["requests"].pop("ephemeral-storage")
        spec["template"]["spec"]["containers"][0]["resources"]["limits"].pop("ephemeral-storage")
        doc["spec"].pop("startingDeadlineSeconds", None)
    broken = tmp_path / release.name
    broken.write_text(yaml.safe_dump_all(docs))
    out = score([*(p for p in manifests if p != release), broken]).stdout
    assert "Ephemeral Storage limit is not set" in out or "ephemeral-storage" in out.lower()
    assert "startingDeadlineSeconds" in out or "deadline" in out.lower()


def test_make_test_builds_kube_score_from_the_pinned_module() -> None:
    planned = subprocess.run(["make", "-n", "test"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True).stdout
    assert "tools.toolchain.build --only kube-score" in planned
