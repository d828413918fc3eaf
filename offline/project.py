"""A working copy of the project in another folder (the end-to-end tests and bench/real.py deploy from
one, so stack-config changes they make never touch the checkout): every tracked or new file, with
the checkout's .venv and .tools linked rather than copied."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from offline import PROJECT_DIR

SHARED = (".venv", ".tools")


def copy_project(target: Path, *, skip: tuple[str, ...] = ()) -> Path:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=PROJECT_DIR,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in files:
        src = PROJECT_DIR / rel
        if not src.is_file() or rel.startswith(skip):
            continue
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target / rel)  # keeps mtimes: make sees the shared .venv as up to date
    link_shared(target)
    return target


def link_shared(target: Path, project_dir: Path = PROJECT_DIR) -> None:
    """Link the checkout's virtualenv and tools (interpreter, helm, the e2e toolchain) into `target`."""
    for shared in SHARED:
        if (project_dir / shared).exists() and not (target / shared).exists():
            (target / shared).symlink_to(project_dir / shared)
