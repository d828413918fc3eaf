"""tools/localenv/processes.py: what `make local-env-down` may signal, and what a server inherits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.localenv.processes import Processes, alive, boot_id, start_ticks


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_started_process_is_stopped_by_its_record(tmp_path: Path) -> None:
    processes = Processes(tmp_path)
    processes.start("sleeper", ["sleep", "60"])
    record = processes.recorded("sleeper")
    assert record is not None and alive(record.pid) and record.program == "sleep"
    assert processes.running() == {"sleeper": True}
    assert processes.stop("sleeper") == "stopped"
    wait_for(lambda: not alive(record.pid))


def test_a_stale_record_never_signals_the_process_that_now_has_the_pid(tmp_path: Path) -> None:
    """After a crash or reboot the recorded PID may belong to anything: here, an unrelated process of
    ours (so the test signals nothing it did not start either way) under a record of another start."""
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        processes = Processes(tmp_path)
        processes.pids.mkdir()
        stale = {"pid": unrelated.pid, "start_ticks": (start_ticks(unrelated.pid) or 0) - 1000, "boot": boot_id(),
                 "program": "etcd"}
        (processes.pids / "etcd").write_text(json.dumps(stale))
        assert processes.running() == {"etcd": False}
        outcome = processes.stop("etcd")
        assert outcome.startswith(f"pid {unrelated.pid} is now another process") and "left alone" in outcome
        time.sleep(0.3)
        assert unrelated.poll() is None, "the unrelated process was signalled"
        assert not (processes.pids / "etcd").exists()
    finally:
        unrelated.kill()
        unrelated.wait()


def test_a_record_from_another_boot_never_signals(tmp_path: Path) -> None:
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        processes = Processes(tmp_path)
        processes.pids.mkdir()
        same_tick_other_boot = {"pid": unrelated.pid, "start_ticks": start_ticks(unrelated.pid), "boot": "another-boot",
                                "program": "etcd"}
        (processes.pids / "etcd").write_text(json.dumps(same_tick_other_boot))
        assert "left alone" in processes.stop("etcd")
        time.sleep(0.3)
        assert unrelated.poll() is None
    finally:
        unrelated.kill()
        unrelated.wait()


def test_a_process_that_execs_another_program_is_still_the_one_started(tmp_path: Path) -> None:
    """OpenBao's launcher execs the server binary: the command line changes, the process does not."""
    processes = Processes(tmp_path)
    processes.start("launcher", ["sh", "-c", "exec sleep 60"])
    record = processes.recorded("launcher")
    assert record is not None
    wait_for(lambda: (Path(f"/proc/{record.pid}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"))
    assert processes.running() == {"launcher": True}
    assert processes.stop("launcher") == "stopped"
    wait_for(lambda: not alive(record.pid))


def test_a_record_of_an_older_format_is_not_trusted(tmp_path: Path) -> None:
    processes = Processes(tmp_path)
    processes.pids.mkdir()
    (processes.pids / "etcd").write_text(str(os.getpid()))  # a bare PID: which process, nobody knows
    assert processes.stop("etcd") == "no usable record: nothing signalled"


def test_a_server_gets_a_minimal_environment_not_the_callers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "caller-token-must-not-leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "caller-secret")
    processes = Processes(tmp_path)
    processes.start("printer", ["env"], env={"GIVEN": "yes"})
    wait_for(lambda: "GIVEN=yes" in processes.log("printer").read_text())
    seen = dict(line.split("=", 1) for line in processes.log("printer").read_text().splitlines() if "=" in line)
    assert set(seen) == {"PATH", "HOME", "LANG", "GIVEN"}
    assert seen["HOME"] == str(tmp_path / "home")
    processes.stop("printer")


def test_every_server_is_signalled_before_any_has_to_finish_its_graceful_stop(tmp_path: Path) -> None:
    """`make local-env-down` sends SIGTERM to all at once: the first server's graceful stop (here, one
    that lingers until the second has been told too, at most 4 s) overlaps the second's."""
    first = (f"trap 'for i in $(seq 40); do [ -e {tmp_path}/second.term ] && {{ echo together > {tmp_path}/first.out; "
             f"exit 0; }}; sleep 0.1; done; echo alone > {tmp_path}/first.out; exit 0' TERM; "
             f"touch {tmp_path}/first.ready; while :; do sleep 0.05; done")
    second = f"trap 'touch {tmp_path}/second.term; exit 0' TERM; touch {tmp_path}/second.ready; while :; do sleep 0.05; done"
    processes = Processes(tmp_path / "env")
    processes.start("first", ["bash", "-c", first])
    processes.start("second", ["bash", "-c", second])
    wait_for(lambda: (tmp_path / "first.ready").exists() and (tmp_path / "second.ready").exists())
    assert processes.stop_all(("first", "second")) == [("first", "stopped"), ("second", "stopped")]
    assert (tmp_path / "first.out").read_text().strip() == "together"
