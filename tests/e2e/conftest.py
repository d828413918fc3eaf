"""Fixtures of the end-to-end tier: a fresh local environment and a copy of the project that the
real Pulumi CLI deploys from (so stack-config changes made by the tests never touch the checkout).

Run by `make e2e` (tools/toolchain/e2e.py), never by `make test`. Each test reads like a step a platform
engineer takes; they run in file order against one environment, brought up once per session -- per
pytest-xdist worker: each worker has a named local environment of its own (`e2e-<worker>`, free ports,
tools/localenv/layout.py), so the tier runs beside a developer's open `make local-env`, and the groups
of E2E_GROUPS run at once, one worker each.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import pytest

from offline.project import copy_project

# Before anything imports tools.localenv: every tool this worker runs, in process or as a child, works
# on the worker's own environment.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
E2E_ENVIRONMENT = f"e2e-{WORKER}" if WORKER else "e2e"
os.environ["TESTINFRA_LOCAL_ENV"] = E2E_ENVIRONMENT

from tools.localenv import layout  # noqa: E402  (after the environment's name is set)
from tools.localenv.stacks import write_local_stack_file  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parents[2]
LOCAL_ENV = layout.STATE
# Which modules share a worker (and its environment), in file order: the local stack's deployment tests
# build on each other and end with its destroy, after which the 100-service stack has the cluster to
# itself, then the teardown; the runs deploy the local stack on an environment of their own, then prod's
# rehearsal replaces it (each rehearsal starts its own environment); staging's rehearsal is followed by
# its review environments. The groups take about as long as each other (docs/end-to-end.md).
E2E_GROUPS = {
    "test_local_env_hygiene.py": "local-stack", "test_local_stack.py": "local-stack",
    "test_local_stack_at_scale.py": "local-stack", "test_teardown_leaves_the_machine_clean.py": "local-stack",
    "test_local_stack_runs.py": "local-runs", "test_rehearsed_prod.py": "local-runs",
    "test_eso_schemas_match.py": "rehearsals", "test_plugin_shutdown.py": "rehearsals", "test_rehearsal.py": "rehearsals",
    "test_rehearsal_review.py": "rehearsals",
}


def pytest_configure(config: pytest.Config) -> None:
    unplaced = sorted({p.name for p in Path(__file__).parent.glob("test_*.py")} - set(E2E_GROUPS))
    if unplaced:
        raise pytest.UsageError(f"tests/e2e/conftest.py: E2E_GROUPS places no worker group for {', '.join(unplaced)}: "
                                "add each module to the group whose environment it uses")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`make e2e` runs `-n auto`: a worker per group of E2E_GROUPS."""
    return len(set(E2E_GROUPS.values()))


MODULE_SECONDS: dict[str, float] = {}  # this worker's time per module (setup, call and teardown of its tests)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = Path(report.nodeid.split("::", 1)[0]).name
    MODULE_SECONDS[module] = MODULE_SECONDS.get(module, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """build/e2e/modules-<environment>.json: where this worker's time went, module by module."""
    if MODULE_SECONDS:
        out = PROJECT_DIR / "build" / "e2e" / f"modules-{E2E_ENVIRONMENT}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({m: round(s, 1) for m, s in sorted(MODULE_SECONDS.items())}, indent=2) + "\n")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Each group of E2E_GROUPS to one worker, in file order. (xdist's own `loadgroup` marks tests by
    suffixing their node ids, which pytest 9 no longer lets a plugin change: it would spread them.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByEnvironmentGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return E2E_GROUPS[Path(nodeid.split("::", 1)[0]).name]

    return ByEnvironmentGroup(config, log)
TIMINGS = PROJECT_DIR / "build" / "e2e" / f"timings-{E2E_ENVIRONMENT}.json"
# Owned by another team on a real cluster; the e2e stack makes it `external` so the tests can show
# that the program checks it, never writes it, and `destroy` leaves it alone.
EXTERNAL_KEY = "integration-test-bearer-token"


@dataclass
class LocalStack:
    """The project copy, the recorded environment, and the commands a user runs against them."""

    project: Path
    env: dict[str, str]
    timings: dict[str, float]
    machine_before: dict[str, list[str]] = field(default_factory=dict)

    def run(self, *argv: str, timeout: float = 900, check: bool = False,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            list(argv), cwd=self.project, env={**self.env, **(extra_env or {})}, text=True,
            capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"`{' '.join(argv)}` exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def make(self, target: str, *args: str, timed: str | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = self.run("make", "-s", target, "STACK=local", *args, **kw)
        if timed:
            self.timings[timed] = round(time.monotonic() - started, 1)
        return proc

    def pulumi(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("pulumi", *args, "--stack", "local", "--non-interactive", **kw)

    def kubectl_json(self, *args: str) -> dict[str, Any]:
        proc = self.run("kubectl", *args, "-o", "json", check=True, timeout=60)
        return json.loads(proc.stdout)

    @property
    def vault(self) -> hvac.Client:
        return hvac.Client(url=self.env["VAULT_ADDR"], token=self.env["VAULT_TOKEN"], timeout=10)

    def config_set(self, path: str, value: str) -> None:
        self.run("pulumi", "config", "set", "--path", f"testinfra:{path}", value, "--stack", "local", check=True)

    def config_rm(self, path: str) -> None:
        self.run("pulumi", "config", "rm", "--path", f"testinfra:{path}", "--stack", "local", check=True)


def machine_state() -> dict[str, list[str]]:
    """What the environment must leave as it found it: the host's interfaces, mounts and cgroups."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False).stdout
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    cgroups = sorted(str(p) for h in Path("/sys/fs/cgroup").iterdir() if h.is_dir() for p in h.iterdir() if p.is_dir())
    return {
        "links": sorted(line.split(":", 2)[1].split("@")[0].strip() for line in links.splitlines() if ":" in line),
        "mounts": sorted(" ".join(m.split()[4:5]) for m in mounts),
        # Another worker's environment starts and stops its own cgroup root whenever it does.
        "cgroups": [c for c in cgroups if not Path(c).name.startswith("testinfra-") or Path(c).name == own_cgroup_root()],
    }


def own_cgroup_root() -> str:
    from tools.localenv.stop import cgroup_root

    return cgroup_root(LOCAL_ENV)


def provider_plugins() -> set[int]:
    """This environment's provider plugins running now (a CLI killed with SIGKILL leaves its own
    orphaned, each in a process group of its own): this checkout's plugins -- the built ones and the
    Vault stand-in, a Python module -- whose environment names this environment's folder (another
    worker's environment runs plugins of the same checkout at the same time)."""
    tools = str(PROJECT_DIR / ".tools" / "e2e")
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_text() if proc.name.isdigit() else ""
            built = tools in command and ("pulumi-resource-" in command or "pulumi-language-" in command)
            if (built or "tools.toolchain.standin_providers" in command) and \
                    str(LOCAL_ENV).encode() in (proc / "environ").read_bytes():
                found.add(int(proc.name))
        except OSError:
            continue
    return found


def reap_plugins_since(before: set[int]) -> None:
    """Ends the plugins a killed CLI left behind -- started by the test that killed it, none other."""
    time.sleep(1)
    for orphan in provider_plugins() - before:
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)


def _copy_project(target: Path) -> None:
    """The copy's `local` stack is this worker's environment: its env file, its Pulumi.local.yaml."""
    copy_project(target)
    (target / "build").mkdir(exist_ok=True)
    (target / "build" / "local-env").symlink_to(LOCAL_ENV)
    write_local_stack_file(target, "local")


@pytest.fixture(scope="session")
def timings() -> Iterator[dict[str, float]]:
    """This worker's measured figures, in build/e2e/timings-<environment>.json at its end."""
    measured: dict[str, float] = {}
    try:
        yield measured
    finally:
        TIMINGS.parent.mkdir(parents=True, exist_ok=True)
        TIMINGS.write_text(json.dumps(measured, indent=2, sort_keys=True) + "\n")
        print(f"\ne2e timings (s): {json.dumps(measured, sort_keys=True)}")


@pytest.fixture(scope="session", autouse=True)
def environment_stopped_at_the_end() -> Iterator[None]:
    """Whatever this worker's tests started in its environment (the local environment, a rehearsal's)
    stops with the session; a provider plugin still running then is a test's leak: ended, and named."""
    yield
    left = provider_plugins()
    reap_plugins_since(set())
    subprocess.run([sys.executable, "-m", "tools.localenv.environment", "down"], cwd=PROJECT_DIR, check=False,
                   capture_output=True)
    if left:
        pytest.fail(f"{E2E_ENVIRONMENT}: provider plugins left running by a killed CLI (ended now): {sorted(left)}")


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory, timings: dict[str, float]) -> LocalStack:
    """This worker's local environment, started afresh, and a project copy whose `local` stack uses it.
    (The rehearsals start environments of their own and ask only for `timings`.)"""
    env_tool = [sys.executable, "-m", "tools.localenv.environment"]
    subprocess.run([*env_tool, "down"], cwd=PROJECT_DIR, check=False, capture_output=True)
    before = machine_state()
    started = time.monotonic()
    up = subprocess.run([*env_tool, "up"], cwd=PROJECT_DIR, capture_output=True, text=True, check=False, timeout=600)
    if up.returncode != 0:
        pytest.fail(f"make local-env failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
    project = tmp_path_factory.mktemp("project")
    _copy_project(project)
    env = {**os.environ, **json.loads((LOCAL_ENV / "env.json").read_text())}
    env.pop("STACK", None)
    stack = LocalStack(project=project, env=env, timings=timings, machine_before=before)
    timings["local_env_up_s"] = round(time.monotonic() - started, 1)
    return stack
