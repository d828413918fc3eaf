"""What gets installed: every requirements file has a lock with a hash for each package, the lock agrees
with the file's own pins, and a deploy installs the deploy set, never the development tools."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

INPUTS = ("requirements.txt", "requirements-deploy.txt", "requirements-dev.txt")
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;#\\]+)")


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if line.startswith("-r "):
            found |= pins(path.parent / line[3:].strip())
        elif match := PIN.match(line):
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


@pytest.mark.parametrize("name", INPUTS)
def test_each_lock_holds_every_pin_of_its_requirements_at_that_version(name: str) -> None:
    lock = PROJECT_DIR / name.replace(".txt", ".lock")
    locked = pins(lock)
    stale = {pkg: (version, locked.get(pkg)) for pkg, version in pins(PROJECT_DIR / name).items()
             if locked.get(pkg) != version}
    assert not stale, f"{lock.name} disagrees with {name} (pin, locked): {stale}: run `make lock`"


@pytest.mark.parametrize("name", INPUTS)
def test_every_locked_package_carries_its_hashes(name: str) -> None:
    text = (PROJECT_DIR / name.replace(".txt", ".lock")).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    packages = [e for e in entries if PIN.match(e)]
    assert len(packages) > 10
    assert all("--hash=sha256:" in e for e in packages), [e.split()[0] for e in packages if "--hash" not in e]


def test_the_three_locks_agree_on_every_shared_package() -> None:
    runtime, deploy, dev = (pins(PROJECT_DIR / n.replace(".txt", ".lock")) for n in INPUTS)
    assert runtime.items() <= deploy.items() <= dev.items()


@pytest.mark.parametrize("target", ["up", "preview", "destroy", "verify", "run"])
def test_a_deploy_installs_the_deploy_set_not_the_development_tools(target: str) -> None:
    planned = subprocess.run(["make", "-n", target, "STACK=staging"], cwd=PROJECT_DIR, capture_output=True,
                             text=True, check=True).stdout
    assert "requirements-deploy.txt" in planned and "requirements-dev.txt" not in planned, planned


def test_the_changelog_names_the_release_pyproject_declares() -> None:
    import tomllib

    version = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]["version"]
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", (PROJECT_DIR / "CHANGELOG.md").read_text(), re.M)
    assert released and released[0] == version, (released, version)
