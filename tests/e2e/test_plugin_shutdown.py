"""Our plugins stop when the engine asks, however they were started.

The CLI stops a plugin with SIGINT and kills it only after 5 s. A command started in the background
by a non-interactive shell (CI, `nohup`, a script's `&`) passes SIGINT on ignored, and a plugin that
does not ask for it back made every `pulumi preview`/`up` wait those 5 s (bench/trace.py found it).
Here each plugin is started with SIGINT ignored, as such a shell would, and must exit at once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import PROJECT_DIR

pytestmark = pytest.mark.e2e

PLUGINS = {
    "language host": [str(PROJECT_DIR / ".tools" / "e2e" / "bin" / "pulumi-language-python"), "127.0.0.1:1"],
    "stand-in vault provider": [sys.executable, "-u", "-m", "tools.toolchain.standin_providers",
                                "vault", "7.0.0"],
}


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("plugin", sorted(PLUGINS))
def test_a_plugin_started_with_sigint_ignored_still_stops_on_sigint(plugin: str) -> None:
    proc = subprocess.Popen(PLUGINS[plugin], cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ignore_sigint)
    try:
        port = proc.stdout.readline().strip() if proc.stdout else ""
        assert port.isdigit(), f"{plugin} did not start: {proc.stderr.read() if proc.stderr else ''}"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=5)
        assert time.monotonic() - started < 1.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
