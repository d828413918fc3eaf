"""The local environment's processes: each started in a session of its own with a private log under
the environment's folder, its PID recorded, probed until healthy; stopped by that PID only.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class LocalEnvError(Exception):
    """A piece of the local environment could not be started; the message says which and where to look."""


@dataclass(frozen=True)
class Processes:
    """The processes of one environment folder (logs/ and pids/ below it)."""

    state: Path

    def log(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.log(name).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        log = os.fdopen(os.open(self.log(name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, start_new_session=True, cwd=self.state)
        (self.state / "pids").mkdir(exist_ok=True)
        (self.state / "pids" / name).write_text(str(proc.pid))

    def wait_until(self, name: str, probe: Callable[[], bool], timeout: float = 90.0, reached: str = "is up") -> None:
        deadline = time.monotonic() + timeout
        pid = int((self.state / "pids" / name).read_text())
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


def alive(pid: int) -> bool:
    """Running, not merely not yet reaped: an exited child stays a zombie until its parent waits."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def https_ok(url: str, pki: Path, user: str = "admin", *, verify: bool = True) -> bool:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if not verify:  # a component's self-signed serving certificate (the scheduler's health port)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(str(pki / f"{user}.crt"), str(pki / f"{user}.key"))
    with urllib.request.urlopen(url, context=ctx, timeout=3) as r:
        return bool(r.status == 200)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as r:
        return bool(r.status == 200)


