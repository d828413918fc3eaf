"""What the local environment writes: an env file a shell sources safely whatever the paths, and
private files created private (never world-readable, not even for a moment)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tools.localenv import environment as local_env
from tools.localenv.pki import write_private

HOSTILE_PATHS = ["/tmp/it's here", "/tmp/a b/c", "/tmp/';touch PWNED;'", '/tmp/"$(touch PWNED)"', "/tmp/`id`",
                 "/tmp/back\\slash", "/tmp/new\nline"]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_the_env_file_gives_back_every_value_exactly_and_runs_nothing(tmp_path: Path, path: str) -> None:
    env = {"KUBECONFIG": path, "VAULT_TOKEN": "s.x'y", "PATH_EXTRA": path + ":/usr/bin"}
    env_file = tmp_path / "env"
    env_file.write_text(local_env.env_file(env))
    script = f". {env_file}; printf '%s\\0' \"$KUBECONFIG\" \"$VAULT_TOKEN\" \"$PATH_EXTRA\""
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, check=True).stdout
    assert out.split(b"\0")[:3] == [v.encode() for v in env.values()]
    assert not (tmp_path / "PWNED").exists()


def test_private_files_are_created_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = tmp_path / "key.pem"
        write_private(target, b"secret")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        target.chmod(0o644)
        write_private(target, b"again")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    finally:
        os.umask(old)
