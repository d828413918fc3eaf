"""What the local environment leaves where others could read it: the token OpenBao prints is dead,
no token is on a command line or in ~/.vault-token, private files are 0600, and ESO works with the
RBAC its own chart grants (not system:masters)."""

from __future__ import annotations

import http.client
import os
import re
import ssl
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import hvac
import pytest

from tests.e2e.conftest import LOCAL_ENV, LocalStack
from tools.localenv import layout
from tools.localenv.processes import Processes

pytestmark = pytest.mark.e2e


def test_the_root_token_in_openbaos_log_is_revoked(local_stack: LocalStack) -> None:
    log = (LOCAL_ENV / "logs" / "openbao.log").read_text()
    printed = re.findall(r"Root Token: (\S+)", log)
    assert printed, "OpenBao's dev banner names its root token"
    for token in printed:
        assert token != local_stack.env["VAULT_TOKEN"]
        assert not hvac.Client(url=local_stack.env["VAULT_ADDR"], token=token, timeout=10).is_authenticated()
    assert local_stack.vault.is_authenticated()


def test_no_token_on_a_command_line_and_none_in_home(local_stack: LocalStack) -> None:
    token = local_stack.env["VAULT_TOKEN"]
    processes = Processes(LOCAL_ENV)
    for name in processes.running():
        record = processes.recorded(name)
        assert record is not None, name
        cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes().decode(errors="replace")
        assert token not in cmdline and "root-token" not in cmdline, name
    home_token = Path(os.path.expanduser("~")) / ".vault-token"
    assert not home_token.exists() or token not in home_token.read_text()


def test_private_files_are_0600(local_stack: LocalStack) -> None:
    private = [LOCAL_ENV / "env", LOCAL_ENV / "env.json", LOCAL_ENV / "kubeconfig",
               *(LOCAL_ENV / "pki").glob("*.key"), *(LOCAL_ENV / "logs").glob("*.log")]
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_eso_is_not_a_cluster_admin(local_stack: LocalStack) -> None:
    kubeconfig = str(LOCAL_ENV / "external-secrets.kubeconfig")

    def can(*args: str) -> str:
        return subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", "auth", "can-i", *args],
                              env=local_stack.env, capture_output=True, text=True, timeout=60).stdout.strip()

    assert can("list", "externalsecrets.external-secrets.io", "--all-namespaces") == "yes"
    assert can("create", "serviceaccounts", "--subresource=token", "-n", "integration-tests") == "yes"
    assert can("create", "clusterrolebindings") == "no"
    assert can("create", "pods", "-n", "kube-system") == "no"


def test_the_suite_image_built_here_is_the_one_the_local_stack_pins(local_stack: LocalStack) -> None:
    """A reproducible build: this machine's bytes give the digest committed in Pulumi.local.yaml."""
    import json

    import yaml

    built = json.loads((LOCAL_ENV / "images.json").read_text())["integration-suite"]
    pinned = yaml.safe_load((local_stack.project / "Pulumi.local.yaml").read_text())["config"]["testinfra:suiteImage"]
    assert built["digest"] == pinned["digest"]
    assert built["reference"] == f"{pinned['repository']}@{pinned['digest']}"


def test_etcd_answers_only_the_api_servers_certificate(local_stack: LocalStack) -> None:
    """etcd is where every object lives: a local user or a web page that reached it would write past RBAC
    and admission. Without a client certificate the TLS handshake fails, and so it does with any other
    certificate of the environment (the admin's, here: etcd trusts its own CA only); with the API
    server's, a foreign Origin is not echoed as allowed."""
    pki = LOCAL_ENV / "pki"
    url = f"{layout.etcd_url()}/version"
    anonymous = ssl.create_default_context(cafile=str(pki / "etcd-ca.crt"))
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url, context=anonymous, timeout=5)
    admin = ssl.create_default_context(cafile=str(pki / "etcd-ca.crt"))
    admin.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url, context=admin, timeout=5)
    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        urllib.request.urlopen(url.replace("https", "http"), timeout=5)
    client = ssl.create_default_context(cafile=str(pki / "etcd-ca.crt"))
    client.load_cert_chain(str(pki / "apiserver-etcd-client.crt"), str(pki / "apiserver-etcd-client.key"))
    request = urllib.request.Request(url, headers={"Origin": "https://evil.example"})
    with urllib.request.urlopen(request, context=client, timeout=5) as answer:
        assert answer.status == 200
        assert answer.headers.get("Access-Control-Allow-Origin") in (None, "")


def test_the_environment_folder_is_its_owners_alone(local_stack: LocalStack) -> None:
    assert stat.S_IMODE(LOCAL_ENV.stat().st_mode) == 0o700
