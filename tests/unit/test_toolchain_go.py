"""`make test` on a stock runner: a Go too old or missing is one clear reason, never a wrong message, and
the Go-built checks say it instead of failing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR
from tools.toolchain.build import go_problem, load_toolchain

NEEDED = f"Go {load_toolchain()['go']['minimum']} or newer is needed, found: go version go1.22.0 linux/amd64"


@pytest.fixture
def old_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    fake = tmp_path / "go"
    fake.write_text('#!/bin/sh\necho "go version go1.22.0 linux/amd64"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    return tmp_path


def test_a_go_older_than_the_toolchains_minimum_is_named_with_the_version_found(old_go: Path) -> None:
    assert go_problem() == NEEDED


def test_no_go_at_all_is_said_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert go_problem() == "no go on PATH"


def test_the_makefile_says_why_a_go_tool_is_not_built_and_goes_on(old_go: Path, tmp_path: Path) -> None:
    """kube-score in a fresh folder (nothing built): one line with the reason, exit 0."""
    for name in ("Makefile",):
        (tmp_path / name).write_text((PROJECT_DIR / name).read_text())
    (tmp_path / "tools").symlink_to(PROJECT_DIR / "tools")
    made = subprocess.run(["make", "-s", "kube-score", f"PYTHON={sys.executable}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)})
    assert made.returncode == 0, made.stderr
    said = f"kube-score: not built ({NEEDED}): tests/integration/test_kube_score.py will say it did not run"
    assert made.stdout.strip() == said


@pytest.mark.parametrize("version", ["0.8.0", "0.10.0"])
def test_the_runners_own_shellcheck_is_used_from_0_8(tmp_path: Path, version: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "shellcheck"
    fake.write_text(f'#!/bin/sh\necho "ShellCheck - shell script analysis tool"\necho "version: {version}"\n')
    fake.chmod(0o755)
    (tmp_path / "Makefile").write_text((PROJECT_DIR / "Makefile").read_text())
    made = subprocess.run(["make", "-s", "shellcheck"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert made.returncode == 0 and made.stdout.strip() == f"shellcheck: {version} from PATH ({fake})", made
    assert (tmp_path / ".tools" / "bin" / "shellcheck").resolve() == fake
