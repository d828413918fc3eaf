"""The Makefile passes every user variable as one quoted word: a hostile BASE, STACK or SERVICE is
never run as shell code, and reaches the program, which answers with its own one-line message."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from offline.project import copy_project

HOSTILE = ["';touch PWNED;'", "$(touch PWNED)", "`touch PWNED`", "x; touch PWNED", "--help", "-x", "a b", '"',
           "x\\'; touch PWNED #"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("makefile"), skip=("tests/",))


def make(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(project)}  # no Pulumi CLI, no credentials
    return subprocess.run(["make", "-s", *args], cwd=project, capture_output=True, text=True, timeout=300,
                          check=False, env=env)


@pytest.mark.parametrize(
    ("target", "variable", "own_message"),
    [("diff", "BASE", "diff: BASE"), ("render", "STACK", "render failed"), ("up", "STACK", "not a stack name"),
     ("run", "SERVICE", "run: ")],
)
def test_a_hostile_variable_is_one_argument_and_gets_the_programs_own_message(
        project: Path, target: str, variable: str, own_message: str) -> None:
    for value in HOSTILE:
        extra = ["STACK=staging"] if variable == "BASE" else []
        proc = make(project, target, f"{variable}={value}", *extra)
        assert proc.returncode != 0, (value, proc.stdout)
        assert own_message in proc.stderr, (value, proc.stderr)
        assert "usage:" not in proc.stderr and "Traceback" not in proc.stderr, (value, proc.stderr)
        assert not list(project.rglob("PWNED")), value


def test_make_help_lists_the_commands_of_the_readme(project: Path) -> None:
    out = make(project, "help").stdout
    for target in ("render", "test", "e2e", "up", "preview", "init", "diff", "verify", "run", "clean", "distclean"):
        assert f"make {target} " in out, target


@pytest.mark.parametrize("dry_run", [True, False], ids=["make -n", "make"])
@pytest.mark.parametrize("variable", ["STACK", "BASE", "SERVICE", "RUN_ID", "CALLER", "RERUN"])
def test_a_variable_holding_make_code_is_never_expanded_by_make(project: Path, variable: str, dry_run: bool) -> None:
    """make expands a command-line variable's value itself -- `$(shell ...)` included, even under `-n` --
    unless the Makefile takes it with `$(value ...)`."""
    hostile = "$(shell touch PWNED)local"
    target = {"BASE": "diff", "SERVICE": "run", "RUN_ID": "run", "CALLER": "run", "RERUN": "run"}.get(variable, "render")
    make(project, *(["-n"] if dry_run else []), target, f"{variable}={hostile}")
    assert not list(project.rglob("PWNED")), variable
