"""The rule of `make e2e` (tools/toolchain/e2e.py): it runs the end-to-end tests, builds first when Go's
caches are warm, and only with a cold cache says plainly that nothing ran -- never a pass."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tools.toolchain import e2e as e2e_run


class Calls(list):
    def __call__(self, argv, **kwargs):
        self.append(argv)
        return subprocess.CompletedProcess(argv, 0)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Calls:
    recorded = Calls()
    monkeypatch.setattr(e2e_run.subprocess, "run", recorded)
    monkeypatch.setattr(e2e_run, "ROOT", tmp_path)  # build/e2e/machine.json goes there
    return recorded


def test_a_cold_machine_runs_nothing_and_says_so(monkeypatch, calls, capsys) -> None:
    monkeypatch.setattr(e2e_run, "missing_binaries", lambda: ["pulumi", "kube-apiserver"])
    monkeypatch.setattr(e2e_run, "module_cache_warm", lambda: False)
    monkeypatch.delenv("E2E_BUILD_COLD", raising=False)
    assert e2e_run.main() == 0
    out = capsys.readouterr().out
    assert out.startswith("E2E NOT RUN") and "make e2e-tools" in out and "min" in out
    assert "pulumi, kube-apiserver" in out and "passed" not in out.replace("reported as passed", "")
    assert calls == []


def test_a_warm_machine_builds_then_tests(monkeypatch, calls) -> None:
    monkeypatch.setattr(e2e_run, "missing_binaries", lambda: ["pulumi"])
    monkeypatch.setattr(e2e_run, "module_cache_warm", lambda: True)
    assert e2e_run.main() == 0
    assert calls[0][1:] == ["-m", "tools.toolchain.build"]
    assert calls[1][1:3] == ["-m", "pytest"] and calls[1][-1].endswith("tests/e2e")


def test_the_run_records_the_machines_busy_time_and_speed_beside_its_wall_time(monkeypatch, calls, capsys,
                                                                                tmp_path) -> None:
    monkeypatch.setattr(e2e_run, "missing_binaries", lambda: [])
    assert e2e_run.main() == 0
    machine = json.loads((tmp_path / "build" / "e2e" / "machine.json").read_text())
    assert machine["busy_cpu_s"] >= 0 and machine["wall_s"] >= 0 and machine["pytest_exit"] == 0
    assert all(seconds > 0 for seconds in machine["reference_cpu_s"])  # the loop's own CPU time, measured
    assert "CPUs busy" in capsys.readouterr().out


def test_busy_time_is_everything_but_idle_iowait_and_steal() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    stat = f"cpu  {3 * ticks} {ticks} {2 * ticks} {50 * ticks} {7 * ticks} 0 {ticks} {ticks} 0 0\ncpu0 1 2 3\n"
    assert e2e_run.busy_cpu_seconds(stat) == 7.0


def test_built_tools_go_straight_to_the_tests(monkeypatch, calls) -> None:
    monkeypatch.setattr(e2e_run, "missing_binaries", lambda: [])
    assert e2e_run.main() == 0
    assert len(calls) == 1 and calls[0][1:3] == ["-m", "pytest"]


def test_cold_cache_detection_reads_the_module_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(e2e_run.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, f"{tmp_path}\n"))
    assert e2e_run.module_cache_warm() is False
    for spec in e2e_run.load_toolchain()["binaries"].values():
        zip_ = tmp_path / "cache" / "download" / e2e_run._escape(spec["module"]) / "@v" / f"{spec['version']}.zip"
        zip_.parent.mkdir(parents=True, exist_ok=True)
        zip_.touch()
    assert e2e_run.module_cache_warm() is True


def test_each_built_provider_is_the_release_the_python_sdk_pins() -> None:
    """The engine asks for the plugin version the SDK names: a provider built at another release
    would be downloaded instead (and downloads are off), so the two pins must agree."""
    from tools.toolchain.build import ROOT, load_toolchain

    pins = dict(line.split("==", 1) for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    providers = {name: spec for name, spec in load_toolchain()["binaries"].items()
                 if name.startswith("pulumi-resource-")}
    assert {"pulumi-resource-kubernetes", "pulumi-resource-random"} <= set(providers)
    for name, spec in providers.items():
        package = name.replace("pulumi-resource-", "pulumi-")
        assert pins[package].split()[0] == spec["release"], name
