"""`make verify` and the preflight against a Vault that misbehaves: every answer that is not Vault's
becomes one message and exit 2 ("cannot check"), never a traceback or exit 1 ("something is missing").

The misbehaving server is a small HTTP server of the test's own on loopback."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.vault import EndpointError, HvacVaultReader
from tests.conftest import PROJECT_DIR, project_with_stack

BEHAVIOURS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "500": (500, {"Content-Type": "application/json"}, b'{"errors":["internal error"]}'),
    "502-html": (502, {"Content-Type": "text/html"}, b"<html><body>Bad Gateway</body></html>"),
    "429": (429, {"Content-Type": "application/json"}, b'{"errors":["rate limit quota exceeded"]}'),
    "503-sealed": (503, {"Content-Type": "application/json"}, b'{"errors":["Vault is sealed"]}'),
    "redirect": (307, {"Location": "http://127.0.0.1:9/v1/auth/token/lookup-self"}, b""),
    "204": (204, {}, b""),
    "200-not-json": (200, {"Content-Type": "text/plain"}, b"hello, I am not Vault"),
    "slow": (200, {"Content-Type": "application/json"}, b"{}"),
}


class Handler(http.server.BaseHTTPRequestHandler):
    behaviour = "500"

    def do_GET(self) -> None:
        status, headers, body = BEHAVIOURS[self.server.behaviour]  # type: ignore[attr-defined]
        if self.server.behaviour == "slow":  # type: ignore[attr-defined]
            time.sleep(3)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815 - http.server's name

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
def test_each_misbehaviour_is_one_clear_endpoint_error(server, behaviour: str) -> None:
    server.behaviour = behaviour
    address = f"http://127.0.0.1:{server.server_address[1]}"
    started = time.monotonic()
    with pytest.raises(EndpointError) as err:
        HvacVaultReader(address, "token", timeout=1)
    assert time.monotonic() - started < 5
    assert str(err.value).startswith(f"Vault at {address}")
    assert "token" not in str(err.value).split(":")[0]


def test_the_cli_says_cannot_check_with_exit_2(server, tmp_path: Path) -> None:
    server.behaviour = "503-sealed"
    address = f"http://127.0.0.1:{server.server_address[1]}"
    project = project_with_stack(tmp_path / "project", vaultAddress=address)
    proc = subprocess.run([sys.executable, "-m", "deploy.verify", "--stack", "local", "--preflight"], cwd=project,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "VAULT_TOKEN": "x"})
    assert proc.returncode == 2, proc.stderr
    assert "sealed or not ready (503)" in proc.stderr and "Traceback" not in proc.stderr


class Recorder(http.server.BaseHTTPRequestHandler):
    """Where a redirect points: records every request and the headers it carried."""

    def _record(self) -> None:
        self.server.seen.append((self.command, self.path, dict(self.headers)))  # type: ignore[attr-defined]
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = _record  # noqa: N815 - http.server's names

    def log_message(self, *args: object) -> None:
        pass


class Redirector(http.server.BaseHTTPRequestHandler):
    def _redirect(self) -> None:
        self.send_response(307)
        self.send_header("Location", f"{self.server.target}{self.path}")  # type: ignore[attr-defined]
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = _redirect  # noqa: N815 - http.server's names

    def log_message(self, *args: object) -> None:
        pass


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_the_review_cleanup_never_follows_a_redirect_with_the_token(tmp_path: Path) -> None:
    """`make review-down`'s Vault cleanup against a Vault that redirects every request elsewhere: the
    token reaches no other server, and the cleanup is not taken for done."""
    from deploy.review import VaultCleanup

    recorder, redirector = _serve(Recorder), _serve(Redirector)
    recorder.seen = []  # type: ignore[attr-defined]
    redirector.target = f"http://127.0.0.1:{recorder.server_address[1]}"  # type: ignore[attr-defined]
    try:
        project = project_with_stack(tmp_path / "project", vaultAddress=f"http://127.0.0.1:{redirector.server_address[1]}")
        with pytest.raises(EndpointError, match="redirect is not followed|HTTP 307"):
            VaultCleanup("canary-token-7f3a", None).remove("local", project)
        assert recorder.seen == []  # type: ignore[attr-defined]
    finally:
        recorder.shutdown()
        redirector.shutdown()


def test_without_a_ca_given_the_reader_verifies_with_vault_cacert_as_the_vault_cli_does(tmp_path: Path) -> None:
    """The preflight of a TLS Vault with a private CA (the rehearsal's) trusts VAULT_CACERT; a CA given
    (the review cleanup's) wins. Once, verify=True was passed and VAULT_CACERT was ignored. (hvac reads
    the variable when it is imported: a process of its own.)"""
    probe = ("import sys\nfrom clients.vault import HvacVaultReader\n"
             "HvacVaultReader._call = lambda self, fn, what, login=False: {}  # no server: the client alone\n"
             "for ca in (None, sys.argv[1]):\n"
             "    reader = HvacVaultReader('https://vault.test:8200', 'token', ca=ca)\n"
             "    print(reader.client.adapter.session.verify)\n")
    env = {"PATH": "/usr/bin:/bin", "VAULT_CACERT": str(tmp_path / "ca.pem")}
    proc = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "given.pem")], cwd=PROJECT_DIR, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(tmp_path / "ca.pem"), str(tmp_path / "given.pem")]
