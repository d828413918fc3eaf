"""The local suite: what a service's integration suite must be able to rely on inside its pod.

- every variable the catalog lists as `requiredEnv` (the chart passes their names in
  INTEGRATION_TEST_REQUIRED_ENV) is set and not empty; when one is not, the suite stops at once and
  names it;
- each has the shape its name promises: `*_URL` parses as a URL with a scheme and a host,
  `*_ADDRESS` is host:port;
- the suite runs as a non-root user on a read-only root filesystem with a writable HOME;
- it finishes within INTEGRATION_TEST_TIMEOUT (a test still running then fails, and the JUnit is written).

No value is ever printed: each test records the SHA-256 of the value it saw as a JUnit property, so a
pipeline can compare it with the value in Vault without either appearing anywhere.
SUITE_FAULT (set only by a test's own stack copy) makes the suite fail (`fail`), run past its own
timeout ignoring it (`overrun`), or sleep N seconds within it (`sleep:N`).
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from urllib.parse import urlsplit

import pytest

REQUIRED = [n for n in os.environ.get("INTEGRATION_TEST_REQUIRED_ENV", "").split(",") if n]
MISSING = [n for n in REQUIRED if not os.environ.get(n)]
FAULT = os.environ.get("SUITE_FAULT", "")


class SuiteTimeout(Exception):
    """The suite ran past INTEGRATION_TEST_TIMEOUT."""


def _on_alarm(signum: int, frame: object) -> None:
    raise SuiteTimeout(f"the suite ran past INTEGRATION_TEST_TIMEOUT={os.environ['INTEGRATION_TEST_TIMEOUT']} s")


if os.environ.get("INTEGRATION_TEST_TIMEOUT", "").isdigit():
    # A few seconds before the deadline, so the report is still written.
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(max(1, int(os.environ["INTEGRATION_TEST_TIMEOUT"]) - 3))


def _fingerprint(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


@pytest.mark.parametrize("name", REQUIRED or ["(none)"])
def test_required_variable_is_set(name: str, record_property) -> None:
    if name == "(none)":
        pytest.skip("the service lists no requiredEnv")
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is missing or empty: the Secret or its Vault property does not provide it", pytrace=False)
    record_property(name, _fingerprint(value))


@pytest.mark.parametrize("name", REQUIRED or ["(none)"])
def test_variable_has_the_promised_shape(name: str) -> None:
    if MISSING:
        pytest.skip(f"not checked: {', '.join(MISSING)} missing")
    if name == "(none)":
        pytest.skip("the service lists no requiredEnv")
    value = os.environ[name]
    if name.endswith("_URL"):
        parts = urlsplit(value)
        if not (parts.scheme and parts.hostname):
            pytest.fail(f"{name} is not a URL with a scheme and a host", pytrace=False)
    elif name.endswith("_ADDRESS"):
        host, _, port = value.rpartition(":")
        if not (host and port.isdigit()):
            pytest.fail(f"{name} is not host:port", pytrace=False)


def test_runs_unprivileged_on_a_read_only_root() -> None:
    if MISSING:
        pytest.skip(f"not checked: {', '.join(MISSING)} missing")
    if os.getuid() == 0:
        pytest.fail("the suite runs as root", pytrace=False)
    if os.access("/app", os.W_OK) or _writable("/app"):
        pytest.fail("the root filesystem is writable", pytrace=False)
    home = os.environ.get("HOME", "")
    if not _writable(home):
        pytest.fail(f"HOME ({home or 'unset'}) is not writable", pytrace=False)


def _writable(folder: str) -> bool:
    try:
        with open(os.path.join(folder, ".suite-probe"), "w") as fh:
            fh.write("x")
        os.unlink(os.path.join(folder, ".suite-probe"))
        return True
    except OSError:
        return False


def test_injected_fault() -> None:
    if not FAULT:
        pytest.skip("no SUITE_FAULT")
    if FAULT == "fail":
        pytest.fail("SUITE_FAULT=fail: a failing test case on purpose", pytrace=False)
    if FAULT == "overrun":
        signal.signal(signal.SIGALRM, signal.SIG_IGN)  # a hung suite: only activeDeadlineSeconds stops it
        while True:
            time.sleep(1)
    if FAULT.startswith("sleep:"):
        time.sleep(int(FAULT.split(":", 1)[1]))
