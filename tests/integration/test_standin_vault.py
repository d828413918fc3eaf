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
from tools.toolchain import standin_kinds
from tools.toolchain import standin_providers as standin

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
        "from types import SimpleNamespace; from tools.toolchain import standin_providers as s\n"
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

    from tools.localenv.pki import issue_server_cert, make_pki

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


# --------------------------------------------------------------------------- mounts, imports, previews


def kind_of(token: str) -> standin_kinds.Kind:
    return standin.KINDS["vault"][token]


def diff(provider: standin.StandinProvider, token: str, olds: dict, news: dict):
    request = SimpleNamespace(urn=f"urn:pulumi:s::p::{token}::x", old_inputs=standin.to_struct(olds), olds=None,
                              news=standin.to_struct(news))
    return provider.Diff(request, SimpleNamespace(abort=abort))


def test_a_mount_path_change_remounts_in_place_and_the_old_id_then_reads_as_gone(
        provider: standin.StandinProvider, openbao: dict[str, str]) -> None:
    """resource_mount.go: `path` is not ForceNew; updateMount calls sys/remount, then tunes. The engine keeps
    the ID through an update (pulumi/pulumi#3729), so a refresh reads the old path and drops the mount."""
    token = "vault:index/mount:Mount"
    ins = {"path": "standin-kv-a", "type": "kv", "options": {"version": "2"}, "description": "d"}
    assert not list(diff(provider, token, ins, {**ins, "path": "standin-kv-b"}).replaces)
    mount = kind_of(token)
    id_, outs = mount.create(provider, ins)
    client = hvac.Client(url=openbao["addr"], token=openbao["token"])
    client.secrets.kv.v2.create_or_update_secret(path="k", secret={"v": "1"}, mount_point="standin-kv-a")
    moved = mount.update(provider, id_, outs, {**ins, "path": "standin-kv-b"})
    assert moved["path"] == "standin-kv-b" and moved["accessor"] == outs["accessor"]  # the same mount, moved
    assert client.secrets.kv.v2.read_secret_version(path="k", mount_point="standin-kv-b",
                                                    raise_on_deleted_version=True)["data"]["data"] == {"v": "1"}
    assert mount.read(provider, id_, moved) is None


def test_a_mount_refresh_reads_type_and_options_back_and_an_id_alone_imports_it(
        provider: standin.StandinProvider, openbao: dict[str, str]) -> None:
    mount = kind_of("vault:index/mount:Mount")  # readMount: type, description, options, TTLs, accessor
    id_, _ = mount.create(provider, {"path": "standin-kv-import", "type": "kv", "options": {"version": "2"}})
    imported = mount.read(provider, id_, {})
    assert imported["path"] == "standin-kv-import" and imported["type"] == "kv"
    assert imported["options"] == {"version": "2"} and imported["accessor"].startswith("kv_")
    hvac.Client(url=openbao["addr"], token=openbao["token"]).sys.disable_secrets_engine("standin-kv-import")
    assert mount.read(provider, id_, imported) is None  # a 400 "No secret engine mount at": dropped


def test_an_auth_path_with_a_slash_fails_the_check() -> None:
    backend = kind_of("vault:index/authBackend:AuthBackend")  # provider.ValidateNoLeadingTrailingSlashes
    assert backend.check({"type": "kubernetes", "path": "k8s/"}) != []
    assert backend.check({"type": "kubernetes", "path": "/k8s"}) != []
    assert backend.check({"type": "kubernetes", "path": "k8s"}) == []


def test_an_auth_path_change_remounts_and_a_missing_auth_mount_is_dropped(
        provider: standin.StandinProvider, openbao: dict[str, str]) -> None:
    """resource_auth_backend.go authBackendUpdate -> util.Remount (auth/<old> to auth/<new>); authBackendRead
    drops a mount Vault no longer has and exposes its accessor."""
    token = "vault:index/authBackend:AuthBackend"
    ins = {"type": "kubernetes", "path": "standin-auth-a", "description": "d"}
    assert not list(diff(provider, token, ins, {**ins, "path": "standin-auth-b"}).replaces)
    backend = kind_of(token)
    id_, outs = backend.create(provider, ins)
    assert outs["accessor"].startswith("auth_kubernetes_")
    moved = backend.update(provider, id_, outs, {**ins, "path": "standin-auth-b"})
    methods = hvac.Client(url=openbao["addr"], token=openbao["token"]).sys.list_auth_methods()["data"]
    assert "standin-auth-b/" in methods and "standin-auth-a/" not in methods
    assert moved["accessor"] == outs["accessor"]
    assert backend.read(provider, id_, outs) is None
    assert backend.read(provider, "standin-auth-b", {})["type"] == "kubernetes"  # import by ID


def test_an_id_alone_imports_a_secret_and_a_role_whole(provider: standin.StandinProvider, openbao: dict[str, str]) -> None:
    secret = kind_of("vault:kv/secretV2:SecretV2")  # kvSecretV2Read: mount and name parsed from the ID
    imported = secret.read(provider, "secret/data/standin/here/graph", {})
    assert (imported["mount"], imported["name"]) == ("secret", "standin/here/graph") and "dataJson" not in imported
    client = hvac.Client(url=openbao["addr"], token=openbao["token"])
    if "standin-k8s/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("kubernetes", path="standin-k8s")
    role = kind_of("vault:kubernetes/authBackendRole:AuthBackendRole")
    id_, _ = role.create(provider, {"backend": "standin-k8s", "roleName": "imported", "boundServiceAccountNames": ["a"],
                                    "boundServiceAccountNamespaces": ["n"]})
    got = role.read(provider, id_, {})
    assert (got["backend"], got["roleName"], got["boundServiceAccountNames"]) == ("standin-k8s", "imported", ["a"])


def test_an_import_returns_inputs_read_from_vault(provider: standin.StandinProvider) -> None:
    request = SimpleNamespace(urn="urn:pulumi:s::p::vault:index/policy:Policy::x", id="standin-imported",
                              properties=standin.to_struct({}), inputs=standin.to_struct({}))
    kind_of("vault:index/policy:Policy").create(provider, {"name": "standin-imported", "policy": 'path "a" {}'})
    response = provider.Read(request, SimpleNamespace(abort=abort))
    assert standin.to_dict(response.inputs) == {"name": "standin-imported", "policy": 'path "a" {}'}


def test_a_preview_of_a_create_leaves_what_vault_decides_unknown(provider: standin.StandinProvider) -> None:
    request = SimpleNamespace(urn="urn:pulumi:s::p::vault:kv/secretV2:SecretV2::x", preview=True,
                              properties=standin.to_struct({"mount": "secret", "name": "n", "dataJson": "{}"}))
    outs = standin.to_dict(provider.Create(request, SimpleNamespace(abort=abort)).properties)
    assert outs["metadata"] == outs["data"] == outs["path"] == standin_kinds.UNKNOWN and outs["name"] == "n"


def test_a_role_update_sends_cleared_fields_and_the_config_sends_disable_local_ca_jwt(
        provider: standin.StandinProvider, openbao: dict[str, str], tmp_path) -> None:
    """kubernetesAuthBackendRoleUpdate sends every field, a cleared one as empty; kubernetesAuthBackendConfig
    sends disable_local_ca_jwt (resource_kubernetes_auth_backend_{role,config}.go)."""
    client = hvac.Client(url=openbao["addr"], token=openbao["token"])
    if "standin-k8s/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("kubernetes", path="standin-k8s")
    role = kind_of("vault:kubernetes/authBackendRole:AuthBackendRole")
    ins = {"backend": "standin-k8s", "roleName": "cleared", "boundServiceAccountNames": ["a"],
           "boundServiceAccountNamespaces": ["n"], "tokenPolicies": ["p"]}
    id_, outs = role.create(provider, ins)
    role.update(provider, id_, outs, {k: v for k, v in ins.items() if k != "tokenPolicies"})
    assert client.adapter.get(f"/v1/{id_}")["data"]["token_policies"] == []
    config = kind_of("vault:kubernetes/authBackendConfig:AuthBackendConfig")
    from tools.localenv.pki import make_pki

    make_pki(tmp_path / "pki")
    config.create(provider, {"backend": "standin-k8s", "kubernetesHost": "https://127.0.0.1:6443",
                             "kubernetesCaCert": (tmp_path / "pki" / "ca.crt").read_text(), "disableLocalCaJwt": True})
    assert client.adapter.get("/v1/auth/standin-k8s/config")["data"]["disable_local_ca_jwt"] is True
