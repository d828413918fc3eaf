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
    [("diff", "BASE", "diff: BASE"), ("render", "STACK", "render: failed"), ("up", "STACK", "not a stack name"),
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


MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"
# Variables a user (or CI's environment) gives: every one the Makefile takes as text with $(value ...).
USER_VARIABLES = sorted(set(__import__("re").findall(r"^override ([A-Z_]+) := \$\(value \1\)$",
                                                      MAKEFILE.read_text(), __import__("re").MULTILINE)))


def targets_taking(variable: str) -> list[str]:
    """Every target whose recipe uses `variable` (directly, or through STACK_ENV for STACK)."""
    import re

    targets, current = [], None
    for line in MAKEFILE.read_text().splitlines():
        rule = re.match(r"^([a-z][a-z0-9-]*):", line)
        if rule:
            current = rule.group(1)
        elif line.startswith("\t") and current and (f"$({variable})" in line or
                                                   (variable == "STACK" and "$(STACK_ENV)" in line)):
            targets.append(current)
    return sorted(set(targets))


PAIRS = [(target, variable) for variable in USER_VARIABLES for target in targets_taking(variable)]
# A variable that names a command the user chooses (`PYTHON=python3.12`) is run as written, by design:
# only make's own expansion of it is refused.
COMMANDS = {"PYTHON"}
SHELL_PAYLOADS = ["x$(touch PWNED)", "x`touch PWNED`", "x;touch PWNED;", "x';touch PWNED;'"]


def test_every_variable_the_makefile_takes_is_checked() -> None:
    assert {"STACK", "PR", "PYTHON", "GITHUB_RUN_ID", "LOCK_MINUTES"} <= set(USER_VARIABLES)
    assert ("outputs", "STACK") in PAIRS and ("preview-comment", "STACK") in PAIRS
    assert ("review-comment", "GITHUB_RUN_ID") in PAIRS and ("pr-comment", "PR") in PAIRS


def outside_single_quotes(text: str, needle: str) -> bool:
    """Whether `needle` occurs where the shell would still interpret it (not inside '...')."""
    quoted, i = False, 0
    while i < len(text):
        if not quoted and text.startswith(needle, i):
            return True
        if text[i] == "'":
            quoted = not quoted
        elif text[i] == "\\" and not quoted:
            i += 1
        i += 1
    return False


@pytest.mark.parametrize(("target", "variable"), PAIRS, ids=[f"{t}-{v}" for t, v in PAIRS])
def test_every_target_takes_every_variable_as_text(project: Path, target: str, variable: str) -> None:
    """make code in a value is never expanded by make; shell code in a value reaches the shell only
    inside single quotes (the recipe make would run, read as the shell reads it)."""
    make(project, "-n", target, f"{variable}=$(shell touch PWNED)x")
    assert not list(project.rglob("PWNED"))
    if variable in COMMANDS:
        return
    for payload in SHELL_PAYLOADS:
        shown = make(project, "-n", target, f"{variable}={payload}", "GITHUB_RUN_ID=1")
        inner = payload[1:].strip("';")
        assert not outside_single_quotes(shown.stdout, inner), (payload, shown.stdout[-2000:])


@pytest.mark.parametrize("target", ["outputs", "preview-comment"])
def test_the_targets_that_ran_stack_as_shell_code_run_nothing(project: Path, target: str) -> None:
    for value in (v for v in HOSTILE if "PWNED" in v):  # the others could leave no trace to find
        make(project, target, f"STACK={value}")
        assert not list(project.rglob("PWNED")), value
    assert not list((project / "build").glob("outputs-*")) if (project / "build").exists() else True
