"""The house as docs/design.md draws it: every product module named on its map, and no module that
defines `main()` (a command) imported by another product module -- a command is an entry point,
its logic lives in modules the others may share. (The import contracts are import-linter's,
in pyproject.toml; this is what it cannot express.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

PRODUCT = ("config", "components", "offline", "clients", "deploy", "runs", "ci", "policy")
MODULES = sorted(p for package in PRODUCT for p in (PROJECT_DIR / package).glob("*.py") if p.name != "__init__.py")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PROJECT_DIR).with_suffix("").parts)


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def defines_main(path: Path) -> bool:
    return any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in ast.parse(path.read_text()).body)


def test_no_command_is_imported_by_another_product_module() -> None:
    commands = {module_name(p) for p in MODULES if defines_main(p)}
    assert {"runs.run", "deploy.verify", "deploy.review", "ci.pr_comment"} <= commands
    offenders = [(module_name(p), sorted(imported_modules(p) & commands)) for p in MODULES
                 if imported_modules(p) & (commands - {module_name(p)})]
    assert not offenders, offenders


def package_entry(package: str) -> str:
    """The lines of docs/design.md's file map for one package: its line and those indented below it."""
    lines = (PROJECT_DIR / "docs" / "design.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{package}/"))
    entry = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break
        entry.append(line)
    return "\n".join(entry)


@pytest.mark.parametrize("module", MODULES, ids=module_name)
def test_every_product_module_is_on_the_map(module: Path) -> None:
    package = module.parent.name
    assert module.name in package_entry(package), f"{package}/{module.name} is not on docs/design.md's map"


def test_no_test_module_imports_another() -> None:
    """Shared fakes and builders live in helper modules (tests/unit/fakes.py, ...), never in a test file."""
    tests = sorted((PROJECT_DIR / "tests").rglob("test_*.py"))
    offenders = [(str(p.relative_to(PROJECT_DIR)), sorted(m for m in imported_modules(p) if ".test_" in m))
                 for p in tests if any(".test_" in m for m in imported_modules(p))]
    assert not offenders, offenders


COMMANDS = sorted(module_name(p) for p in MODULES if defines_main(p))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help(command: str) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", command, "--help"], cwd=PROJECT_DIR, capture_output=True, text=True,
                          timeout=120, check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "usage:" in proc.stdout, (proc.stdout[-500:], proc.stderr[-500:])


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 350, 60


@pytest.mark.parametrize("module", MODULES, ids=module_name)
def test_no_product_module_over_350_lines_nor_function_over_60(module: Path) -> None:
    """The budgets of the house (a function over 60 lines says why in a comment on its first line)."""
    source = module.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    lines = source.splitlines()
    long = [n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.end_lineno is not None and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES
            and "# long:" not in lines[n.lineno - 1]]
    assert not long, long


# Frames of their own, on purpose: pr_comment runs on any Python (the standard library only); the
# policy pack's entry point is the Pulumi policy SDK's; kubectl starts the exec credential for every
# command (the standard library only: the frame's Pulumi SDK import cost 0.42 s a call).
OWN_FRAMES = {"ci.pr_comment", "policy.__main__", "deploy.exec_credential"}


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in OWN_FRAMES])
def test_every_command_uses_the_one_frame(command: str) -> None:
    """config/cli.py: one parser shape, --stack by one rule, `prog: message` and exit 2 for an expected error."""
    source = (PROJECT_DIR / Path(*command.split("."))).with_suffix(".py").read_text()
    assert "cli.parser(" in source and "cli.run(" in source
    assert "argparse.ArgumentParser(" not in source


def test_every_expected_error_is_the_projects() -> None:
    """Each exception class of the product derives from config.errors.TestinfraError, so the frame prints
    it as one line; the exceptions are named with why."""
    allowed = {"CommentError": "ci/github.py: the standard library only (pr_comment runs on any Python)",
               "NoOidcToken": "deploy/oidc_token.py: the standard library only (kubectl's exec credential)",
               "_DuplicateKey": "config/files.py: a yaml.YAMLError the loader turns into a ConfigError"}
    from config.errors import TestinfraError

    outside = []
    for path in MODULES:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and (b.id.endswith(("Error", "Problem", "Exception")) or b.id == "Exception")
                    for b in node.bases):
                module = __import__(module_name(path), fromlist=[node.name])
                if not issubclass(getattr(module, node.name), TestinfraError) and node.name not in allowed:
                    outside.append(f"{module_name(path)}.{node.name}")
    assert not outside, outside
