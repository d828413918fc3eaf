"""The stand-in Vault provider's reads follow terraform-provider-vault v5.11.0, on a real OpenBao:
the list data source fails cleanly on an absent folder (kvListRequest, vault/kv_helpers.go), and the
subkeys data source dies on an absent key as the real one panics (kvSecretSubkeysDataSourceRead,
vault/data_source_kv_subkeys_v2.go) -- so the e2e tier would catch a program that asked for it."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import hvac
import pytest

from tests.conftest import PROJECT_DIR

sys.path.insert(0, str(PROJECT_DIR / "tools" / "e2e"))

import standin_kinds
import standin_providers as standin

pytestmark = pytest.mark.vault


class Aborted(Exception):
    pass


def abort(code: object, message: str) -> None:
    raise Aborted(message)


@pytest.fixture
def provider(openbao: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> standin.StandinProvider:
    monkeypatch.setenv("VAULT_ADDR", openbao["addr"])
    monkeypatch.setenv("VAULT_TOKEN", openbao["token"])
    client = hvac.Client(url=openbao["addr"], token=openbao["token"])
    client.secrets.kv.v2.create_or_update_secret(path="standin/here/graph", secret={"url": "x"}, mount_point="secret")
    return standin.StandinProvider("vault", "7.14.0")


def invoke(provider: standin.StandinProvider, token: str, **args: str) -> dict:
    request = SimpleNamespace(tok=token, args=standin.to_struct(args))
    response = provider.Invoke(request, SimpleNamespace(abort=abort))
    return standin.to_dict(getattr(response, "return"))


def test_listing_a_folder_names_its_keys(provider: standin.StandinProvider) -> None:
    listed = invoke(provider, "vault:kv/getSecretsListV2:getSecretsListV2", mount="secret", name="standin/here")
    assert listed["names"] == ["graph"] and listed["path"] == "secret/metadata/standin/here"


def test_listing_an_absent_folder_fails_cleanly_as_the_real_provider(provider: standin.StandinProvider) -> None:
    with pytest.raises(Aborted, match='^no secrets found at "secret/metadata/standin/nowhere"$'):
        invoke(provider, "vault:kv/getSecretsListV2:getSecretsListV2", mount="secret", name="standin/nowhere")


def test_subkeys_of_a_present_key_are_its_property_names(provider: standin.StandinProvider) -> None:
    found = invoke(provider, "vault:kv/getSecretSubkeysV2:getSecretSubkeysV2", mount="secret", name="standin/here/graph")
    assert found["dataJson"] == '{"url": null}'


def test_subkeys_of_an_absent_key_kill_the_plugin_as_the_real_one_panics(openbao: dict[str, str]) -> None:
    script = (
        "import sys; sys.path.insert(0, 'tools/e2e'); from types import SimpleNamespace; import standin_providers as s\n"
        "p = s.StandinProvider('vault', '7.14.0')\n"
        "p.Invoke(SimpleNamespace(tok='vault:kv/getSecretSubkeysV2:getSecretSubkeysV2', "
        "args=s.to_struct({'mount': 'secret', 'name': 'standin/absent'})), SimpleNamespace(abort=None))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60,
                          env={"VAULT_ADDR": openbao["addr"], "VAULT_TOKEN": openbao["token"], "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "panic: runtime error" in proc.stderr


# --------------------------------------------------------------------------- resources, as upstream


def test_a_written_secret_outputs_empty_data_and_its_metadata(provider: standin.StandinProvider) -> None:
    kind = standin.KINDS["vault"]["vault:kv/secretV2:SecretV2"]  # kvSecretV2Read, resource_kv_secret_v2.go
    id_, outs = kind.create(provider, {"mount": "secret", "name": "standin/written", "dataJson": '{"a": "s3cr3t"}'})
    assert id_ == "secret/data/standin/written" and outs["data"] == {} and outs["metadata"]["version"] == "1"
    assert "s3cr3t" not in json.dumps({k: v for k, v in outs.items() if k != "dataJson"})


def test_refresh_drops_a_secret_deleted_in_vault_and_delete_keeps_its_metadata(
        provider: standin.StandinProvider, openbao: dict[str, str]) -> None:
    kind = standin.KINDS["vault"]["vault:kv/secretV2:SecretV2"]
    ins = {"mount": "secret", "name": "standin/gone", "dataJson": '{"a": "b"}'}
    id_, outs = kind.create(provider, ins)
    assert kind.read(provider, id_, outs) is not None
    kind.delete(provider, id_, outs)  # kvSecretV2Delete: the latest version only
    client = hvac.Client(url=openbao["addr"], token=openbao["token"])
    assert client.secrets.kv.v2.read_secret_metadata(path="standin/gone", mount_point="secret")["data"]["versions"]
    assert kind.read(provider, id_, outs) is None  # kvSecretV2Read: "not found, removing from state"


def test_invalid_data_json_fails_the_check_once_it_is_known() -> None:
    kind = standin.KINDS["vault"]["vault:kv/secretV2:SecretV2"]
    assert kind.check({"dataJson": "{oops"}) == ["dataJson: not valid JSON"]
    assert kind.check({"dataJson": standin_kinds.UNKNOWN}) == []  # a preview of a value computed later


def test_policy_drift_shows_on_refresh(provider: standin.StandinProvider, openbao: dict[str, str]) -> None:
    kind = standin.KINDS["vault"]["vault:index/policy:Policy"]  # policyRead, resource_policy.go
    id_, outs = kind.create(provider, {"name": "standin-drift", "policy": 'path "a" { capabilities = ["read"] }'})
    hvac.Client(url=openbao["addr"], token=openbao["token"]).sys.create_or_update_policy(
        name="standin-drift", policy='path "b" { capabilities = ["read"] }')
    assert 'path "b"' in kind.read(provider, id_, outs)["policy"]


def test_a_role_deleted_in_vault_is_dropped_on_refresh(provider: standin.StandinProvider, openbao: dict[str, str]) -> None:
    client = hvac.Client(url=openbao["addr"], token=openbao["token"])
    if "standin-k8s/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("kubernetes", path="standin-k8s")
    kind = standin.KINDS["vault"]["vault:kubernetes/authBackendRole:AuthBackendRole"]
    id_, outs = kind.create(provider, {"backend": "standin-k8s", "roleName": "r", "boundServiceAccountNames": ["a"],
                                       "boundServiceAccountNamespaces": ["n"], "tokenPolicies": ["p"]})
    assert kind.read(provider, id_, outs)["boundServiceAccountNames"] == ["a"]
    client.adapter.delete(f"/v1/{id_}")
    assert kind.read(provider, id_, outs) is None  # kubernetesAuthBackendRoleRead


def test_replacements_create_before_they_delete(provider: standin.StandinProvider) -> None:
    request = SimpleNamespace(urn="urn:pulumi:s::p::vault:index/policy:Policy::x", old_inputs=standin.to_struct(
        {"name": "a", "policy": "x"}), olds=None, news=standin.to_struct({"name": "b", "policy": "x"}))
    diff = provider.Diff(request, SimpleNamespace(abort=abort))
    assert list(diff.replaces) == ["name"] and diff.deleteBeforeReplace is False


def test_an_https_vault_is_trusted_through_vault_cacert_as_the_real_provider_does(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """internal/provider/meta.go: the CA is `ca_cert_file`, else env VAULT_CACERT; without it, a Vault
    whose certificate a private CA signed is refused."""
    import http.server
    import ssl
    import threading

    sys.path.insert(0, str(PROJECT_DIR / "tools"))
    from local_pki import issue_server_cert, make_pki

    pki = tmp_path / "pki"
    make_pki(pki)
    issue_server_cert(pki, "vault", ["127.0.0.1"])

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"initialized": true}')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "vault.crt", pki / "vault.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("VAULT_ADDR", f"https://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("VAULT_TOKEN", "t")
        monkeypatch.delenv("VAULT_CACERT", raising=False)
        with pytest.raises(standin_kinds.VaultAPIError, match="CERTIFICATE_VERIFY_FAILED|unreachable"):
            standin.StandinProvider("vault", "7.14.0").vault("GET", "sys/init")
        monkeypatch.setenv("VAULT_CACERT", str(pki / "ca.crt"))
        assert standin.StandinProvider("vault", "7.14.0").vault("GET", "sys/init") == {"initialized": True}
    finally:
        server.shutdown()
