"""The stand-in Vault provider's reads follow terraform-provider-vault v5.11.0, on a real OpenBao:
the list data source fails cleanly on an absent folder (kvListRequest, vault/kv_helpers.go), and the
subkeys data source dies on an absent key as the real one panics (kvSecretSubkeysDataSourceRead,
vault/data_source_kv_subkeys_v2.go) -- so the e2e tier would catch a program that asked for it."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import hvac
import pytest

from tests.conftest import PROJECT_DIR

sys.path.insert(0, str(PROJECT_DIR / "tools" / "e2e"))

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
