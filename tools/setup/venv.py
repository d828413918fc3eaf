"""The project's virtualenv (.venv) with one requirements file installed, made by the right Python.

Owns: refusing a Python older than 3.11 with one message; rebuilding a .venv made by another Python
(a different minor, or one that no longer runs) instead of reusing it; installing a requirements
file's lock (`requirements*.lock` beside it: every package pinned with its hashes, pip's
--require-hashes) only when it changed since the last install (a stamp per file in .venv). Standard
library only: it runs before anything is installed. `make lock` writes the locks.

Usage: python -m tools.setup.venv REQUIREMENTS_FILE [...]   (installs each one's .lock)
Exit 0 when the virtualenv is ready; 2 with one message when this Python cannot make it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
MINIMUM = (3, 11)


def venv_python_version() -> tuple[int, int] | None:
    python = VENV / "bin" / "python"
    if not python.exists():
        return None
    proc = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:2])"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return None
    major, minor = proc.stdout.split()
    return int(major), int(minor)


def main(argv: list[str]) -> int:
    if sys.version_info[:2] < MINIMUM:
        print(f"Python {'.'.join(map(str, MINIMUM))} or newer is needed; {sys.executable} is "
              f"{sys.version.split()[0]}. Install a newer one and run e.g. `make test PYTHON=python3.12`.",
              file=sys.stderr)
        return 2
    have = venv_python_version()
    if VENV.is_symlink():
        # A working copy sharing its checkout's .venv (offline/project.py): that one belongs to the
        # checkout; it is used as it is when it runs a Python new enough, and never removed from here.
        if have is None or have < MINIMUM:
            print(f".venv links to {VENV.resolve()}, which does not run Python {'.'.join(map(str, MINIMUM))}+: "
                  "run `make install` in the checkout it links to, or remove the link", file=sys.stderr)
            return 2
    elif VENV.exists() and have != sys.version_info[:2]:
        made_by = f"Python {have[0]}.{have[1]}" if have else "a Python that no longer runs"
        print(f"ensure_venv: .venv was made by {made_by}; rebuilding it with {sys.version.split()[0]}", flush=True)
        shutil.rmtree(VENV)
    if not VENV.exists():
        proc = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"cannot create .venv with {sys.executable}: {proc.stderr.strip()[-300:]} "
                  "(on Debian: apt-get install python3-venv)", file=sys.stderr)
            return 2
        subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                       check=True)
    for name in argv:
        requirements = ROOT / name
        lock = lock_of(requirements)
        stamp = VENV / f".installed-{requirements.name}"
        inputs = [*_with_includes(requirements), lock]
        if stamp.exists() and stamp.stat().st_mtime >= max(p.stat().st_mtime for p in inputs if p.exists()):
            continue
        if not lock.exists():
            print(f"{lock.name} is missing: run `make lock` and commit it", file=sys.stderr)
            return 2
        pinned = sum(1 for line in lock.read_text().splitlines() if "==" in line and not line.startswith((" ", "#")))
        print(f"ensure_venv: installing {lock.name} into .venv ({pinned} pinned packages; about a minute the "
              "first time, nothing after)", flush=True)
        started = time.monotonic()
        subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--require-hashes",
                        "-r", str(lock)], check=True)
        stamp.touch()
        print(f"ensure_venv: {lock.name} installed in {time.monotonic() - started:.0f} s; .venv is now "
              f"{footprint_mb(VENV)} MB (`make distclean` removes it)", flush=True)
    return 0


def footprint_mb(folder: Path) -> int:
    """What a folder takes on disk, in MB (its files' sizes; links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return round(total / 2**20)


def lock_of(requirements: Path) -> Path:
    """requirements-dev.txt -> requirements-dev.lock: what is installed, with every package's hashes."""
    return requirements.with_suffix(".lock")


def _with_includes(requirements: Path) -> list[Path]:
    """The file and every file it pulls in with `-r` (a change to either means reinstalling)."""
    files = [requirements]
    for line in requirements.read_text().splitlines():
        if line.startswith("-r "):
            files += _with_includes(requirements.parent / line[3:].strip())
    return files


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except subprocess.CalledProcessError as exc:
        print(f"ensure_venv: `{' '.join(map(str, exc.cmd))}` failed (exit {exc.returncode}); see above",
              file=sys.stderr)
        sys.exit(2)
