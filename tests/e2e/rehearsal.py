"""The rehearsal's environment as the e2e tests reach it: its folder, each identity's credentials, and
commands run as one of them (`make rehearse` writes them: tools/localenv/rehearse.py)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import hvac

from tests.e2e.conftest import LOCAL_ENV
from tools.localenv.stacks import read_env_file

REHEARSAL = LOCAL_ENV / "rehearsal"


def rehearsal_env(who: str = "env") -> dict[str, str]:
    """`env`: the deploy identity's; `preview.env`: the preview identity's; `admin.env`: the platform
    team's root token and admin kubeconfig, for what the tests check behind the identities' backs."""
    return read_env_file(REHEARSAL / who)


def in_rehearsal(*argv: str, timeout: float = 600, extra: dict[str, str] | None = None,
                 who: str = "env") -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=REHEARSAL / "project", env={**rehearsal_env(who), **(extra or {})},
                          capture_output=True,
                          text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def kube(*args: str) -> dict[str, Any]:
    proc = in_rehearsal("kubectl", *args, "-o", "json", timeout=60, who="admin.env")
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def vault_as(who: str) -> hvac.Client:
    env = rehearsal_env(who)
    return hvac.Client(url=env["VAULT_ADDR"], token=env["VAULT_TOKEN"], verify=env["VAULT_CACERT"])


def refused_by_vault(attempt: Any) -> bool:
    try:
        attempt()
    except hvac.exceptions.Forbidden:
        return True
    return False


def refused_by_kubernetes(who: str, *args: str) -> str:
    """Runs kubectl as `who`; the refusal it printed (the assertion fails if it was allowed)."""
    proc = in_rehearsal("kubectl", *args, timeout=60, who=who)
    assert proc.returncode != 0 and "forbidden" in proc.stderr.lower(), (args, proc.stdout, proc.stderr)
    return proc.stderr


def refused_or_absent(read: Any) -> bool:
    try:
        return read() is None
    except hvac.exceptions.InvalidPath:
        return True
