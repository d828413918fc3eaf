"""`make local-env-down` works with whatever Python the machine has: a fresh machine's own Python has
none of the project's packages, and a stop that fails on an import leaves every server running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.localenv import stop
from tools.localenv.processes import Processes

ROOT = Path(__file__).resolve().parents[2]


def stop_module() -> str:
    """The module the Makefile's local-env-down recipe runs, as a user's `make local-env-down` does."""
    recipe = re.search(r"^local-env-down:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe, "the Makefile has a local-env-down target"
    module = re.search(r"-m (\S+)", recipe.group(1))
    assert module, recipe.group(1)
    return module.group(1)


def test_the_stop_path_imports_nothing_but_the_standard_library() -> None:
    """Under `python -S` no site-packages exist: exactly a bare machine's Python (no pulumi, no yaml)."""
    probe = (f"import sys, {stop_module()}\n"
             "ours = ('tools', '__main__')\n"
             "extra = sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names "
             "and m.split('.')[0] not in ours)\n"
             "print(extra)")
    proc = subprocess.run([sys.executable, "-S", "-c", probe], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_down_stops_every_recorded_process_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    processes = Processes(tmp_path)
    processes.start("etcd", ["sleep", "60"])
    processes.start("openbao", ["sleep", "60"])
    pids = [r.pid for name in ("etcd", "openbao") if (r := processes.recorded(name))]
    monkeypatch.setattr(stop, "PROCESSES", processes)
    monkeypatch.setattr(stop, "STATE", tmp_path)
    assert stop.down() == 0
    said = capsys.readouterr().out
    assert "openbao: stopped" in said and "etcd: stopped" in said
    assert said.index("openbao") < said.index("etcd")  # the reverse of their start
    for pid in pids:  # gone, not merely exited: no PID of the environment answers any more
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not processes.pids.exists()
    assert stop.down() == 0 and "nothing is running" in capsys.readouterr().out
