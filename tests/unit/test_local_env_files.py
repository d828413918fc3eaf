"""What the local environment writes and how it serves: an env file a shell sources safely whatever
the paths, etcd only over TLS with client certificates, and private files created private (never
world-readable, not even for a moment)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from config.files import env_file, write_private
from tools.localenv import environment as local_env
from tools.localenv import layout

HOSTILE_PATHS = ["/tmp/it's here", "/tmp/a b/c", "/tmp/';touch PWNED;'", '/tmp/"$(touch PWNED)"', "/tmp/`id`",
                 "/tmp/back\\slash", "/tmp/new\nline"]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_the_env_file_gives_back_every_value_exactly_and_runs_nothing(tmp_path: Path, path: str) -> None:
    env = {"KUBECONFIG": path, "VAULT_TOKEN": "s.x'y", "PATH_EXTRA": path + ":/usr/bin"}
    written = tmp_path / "env"
    written.write_text(env_file(env))
    script = f". {written}; printf '%s\\0' \"$KUBECONFIG\" \"$VAULT_TOKEN\" \"$PATH_EXTRA\""
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


def test_etcd_serves_clients_and_peers_over_tls_with_client_certificates_and_no_cors(tmp_path: Path) -> None:
    argv = local_env.etcd_argv(tmp_path / "pki")
    urls = [a.split("=", 1)[1] for a in argv if a.split("=", 1)[0].endswith("-urls") and "metrics" not in a]
    assert urls and all(u.startswith("https://127.0.0.1:") for u in urls), urls
    assert "--client-cert-auth=true" in argv and "--peer-client-cert-auth=true" in argv
    assert f"--cors={layout.etcd_url()}" in argv  # not etcd's default, any origin
    apiserver = local_env.apiserver_argv(tmp_path / "pki")
    assert f"--etcd-servers={layout.etcd_url()}" in apiserver
    assert any(a.startswith("--etcd-certfile=") for a in apiserver)


def test_etcd_trusts_no_certificate_but_the_api_servers(tmp_path: Path) -> None:
    """etcd's own client CA: an admin's, a node's or ESO's certificate of the environment's CA is no
    etcd client (before: every leaf of the local CA was)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    from tools.localenv.pki import make_pki

    pki = tmp_path / "pki"
    make_pki(pki)
    argv = local_env.etcd_argv(pki)
    trusted = {a.split("=", 1)[1] for a in argv if a.startswith(("--trusted-ca-file=", "--peer-trusted-ca-file="))}
    assert len(trusted) == 1
    etcd_ca = x509.load_pem_x509_certificate(Path(trusted.pop()).read_bytes())

    def accepted(name: str) -> bool:
        try:
            x509.load_pem_x509_certificate((pki / f"{name}.crt").read_bytes()).verify_directly_issued_by(etcd_ca)
        except (ValueError, InvalidSignature):
            return False
        return True

    leaves = sorted(p.stem for p in pki.glob("*.crt") if not p.stem.endswith("ca"))
    assert [name for name in leaves if accepted(name)] == ["apiserver-etcd-client", "etcd"]
    apiserver = local_env.apiserver_argv(pki)
    assert f"--etcd-cafile={pki / 'etcd-ca.crt'}" in apiserver  # and the API server checks etcd by it
