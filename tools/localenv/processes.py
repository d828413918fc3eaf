"""The local environment's processes: each started in a session of its own with a private log under
the environment's folder and a minimal environment (PATH, a HOME of its own, what it is given), its
PID recorded with the boot it ran in and the process's start time, probed until healthy; stopped by
that PID only, and only while the PID is still that process (a stale record after a crash or reboot
never signals whatever runs under the number now). The start time, not the command line, is the
identity: a started program may exec another (OpenBao's launcher does), which changes its command
line but not when it started; (boot, PID, start time) names one process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STOP_SECONDS = 5.0  # from SIGTERM to SIGKILL: each server's graceful stop gets this long, all at once


class LocalEnvError(Exception):
    """A piece of the local environment could not be started; the message says which and where to look."""


@dataclass(frozen=True)
class Recorded:
    """What identifies a started process beyond its PID, which the kernel reuses."""

    pid: int
    start_ticks: int  # /proc/<pid>/stat field 22: when it started, in clock ticks after boot
    boot: str  # /proc/sys/kernel/random/boot_id: the boot those ticks count from
    program: str  # argv[0] as started (for messages; an exec may change what runs)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            # The command name (field 2) may hold spaces and parentheses: split after the last ")".
            return fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None  # field 22, counted from field 3


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def program(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None


def is_the_started_process(record: Recorded) -> bool:
    return record.boot == boot_id() and start_ticks(record.pid) == record.start_ticks


@dataclass(frozen=True)
class Processes:
    """The processes of one environment folder (logs/ and pids/ below it)."""

    state: Path

    def log(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    def server_env(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """What a server starts with: not the caller's whole environment (tokens, cloud credentials)."""
        home = self.state / "home"
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": str(home),
                "LANG": "C.UTF-8", **(env or {})}

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.log(name).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        log = os.fdopen(os.open(self.log(name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=self.server_env(env), start_new_session=True, cwd=self.state)
        self.pids.mkdir(mode=0o700, exist_ok=True)
        record = Recorded(proc.pid, start_ticks(proc.pid) or -1, boot_id(), argv[0])
        (self.pids / name).write_text(json.dumps(record.__dict__))

    def recorded(self, name: str) -> Recorded | None:
        """The record of `name`, or None when there is none (or it is not one this module wrote)."""
        try:
            data = json.loads((self.pids / name).read_text())
            return Recorded(int(data["pid"]), int(data["start_ticks"]), str(data["boot"]), str(data["program"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def stop(self, name: str) -> str:
        """Stop `name`'s process group if its record still names the process started; what happened."""
        [(_, outcome)] = self.stop_many([name])
        return outcome

    def stop_all(self, order: tuple[str, ...]) -> list[tuple[str, str]]:
        """Stop every recorded process (reported those not in `order` first, then `order`'s)."""
        others = sorted(p.name for p in self.pids.iterdir() if p.name not in order)
        stopped = self.stop_many([name for name in (*others, *order) if (self.pids / name).exists()])
        self.pids.rmdir()
        return stopped

    def stop_many(self, names: list[str]) -> list[tuple[str, str]]:
        """SIGTERM to each named group whose record still names the process started, all at once (one
        server's graceful stop never waits for another's); SIGKILL to what runs after STOP_SECONDS."""
        outcomes, groups = [], []
        for name in names:
            record = self.recorded(name)
            (self.pids / name).unlink(missing_ok=True)
            if record is None:
                outcomes.append((name, "no usable record: nothing signalled"))
            elif alive(record.pid) and not is_the_started_process(record):
                # The number now belongs to another process (the old group is gone, or the kernel would
                # not have reused it): never signal it.
                outcomes.append((name, f"pid {record.pid} is now another process ({program(record.pid)}): left alone"))
            else:
                outcomes.append((name, "stopped"))
                groups.append(record.pid)
        signalled = [g for g in groups if _signal_group(g, signal.SIGTERM)]
        deadline = time.monotonic() + STOP_SECONDS
        # Every member exited: what is left are zombies awaiting their parent, nothing to signal.
        while time.monotonic() < deadline and any(map(group_alive, signalled)):
            time.sleep(0.1)
        for group in signalled:
            if group_alive(group):
                _signal_group(group, signal.SIGKILL)
        reaped(signalled)
        return outcomes

    def running(self) -> dict[str, bool]:
        """Each recorded process, and whether its record still names a running process it started."""
        out = {}
        for f in sorted(self.pids.iterdir()):
            record = self.recorded(f.name)
            out[f.name] = bool(record and alive(record.pid) and is_the_started_process(record))
        return out

    def wait_until(self, name: str, probe: Callable[[], bool], timeout: float = 90.0, reached: str = "is up") -> None:
        deadline = time.monotonic() + timeout
        record = self.recorded(name)
        assert record is not None, f"{name} was not started by this environment"
        pid = record.pid
        while time.monotonic() < deadline:
            if not alive(pid):
                raise LocalEnvError(f"{name} exited while starting: see {self.log(name)}")
            try:
                if probe():
                    print(f"local-env: {name} {reached}", flush=True)
                    return
            except (OSError, urllib.error.URLError, subprocess.SubprocessError, LocalEnvError):
                pass
            time.sleep(0.5)
        raise LocalEnvError(f"{name} did not become healthy in {timeout:.0f} s: see {self.log(name)}")


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False


def reaped(pgids: list[int], timeout: float = 3.0) -> None:
    """Wait until the groups are gone, zombies included: reaped by us when a leader is our own child
    (the tests start servers themselves), else by its parent (init, for an environment whose `up`
    has exited) -- so "stopped" means no PID of them answers any more."""
    deadline = time.monotonic() + timeout
    left = list(pgids)
    while left and time.monotonic() < deadline:
        for pgid in list(left):
            with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
                os.waitpid(pgid, os.WNOHANG)
            if not _signal_group(pgid, 0):
                left.remove(pgid)
        if left:
            time.sleep(0.05)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is running (not merely a zombie awaiting its parent)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
    return False


def alive(pid: int) -> bool:
    """Running, not merely not yet reaped: an exited child stays a zombie until its parent waits."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def https_ok(url: str, pki: Path, user: str = "admin", *, verify: bool = True, ca: str = "ca") -> bool:
    ctx = ssl.create_default_context(cafile=str(pki / f"{ca}.crt"))
    if not verify:  # a component's self-signed serving certificate (the scheduler's health port)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(str(pki / f"{user}.crt"), str(pki / f"{user}.key"))
    with urllib.request.urlopen(url, context=ctx, timeout=3) as r:
        return bool(r.status == 200)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as r:
        return bool(r.status == 200)


