"""The Vault half proven on a real OpenBao server (Vault API): the generated policy lets a token
read exactly what the ExternalSecrets reference, and nothing else; external keys are checked."""

from __future__ import annotations

import json
from collections.abc import Callable

import hvac
import hvac.exceptions
import pytest

from clients.vault import HvacVaultReader
from config.errors import ConfigError
from deploy.verify import preflight_problems
from offline.harness import Evaluation
from offline.render import kubernetes_manifest
from tests.conftest import CANARY, canary_config, ensure_kubernetes_auth, evaluate_fixture, fixture_settings, fixture_stack_config

pytestmark = pytest.mark.vault


@pytest.fixture(scope="module")
def root(openbao: dict[str, str]) -> hvac.Client:
    client = hvac.Client(url=openbao["addr"], token=openbao["token"])
    assert client.sys.is_initialized()
    return client


@pytest.fixture(scope="module")
def canary_staging() -> Evaluation:
    config, secret_keys = canary_config("staging")
    return evaluate_fixture("staging", config=config, secret_keys=secret_keys)


def remote_refs(ev: Evaluation) -> list[tuple[str, str]]:
    refs = []
    for res in ev.resources:
        obj = kubernetes_manifest(res)
        if obj and obj["kind"] == "ExternalSecret":
            refs += [(d["remoteRef"]["key"], d["remoteRef"]["property"]) for d in obj["spec"]["data"]]
    return sorted(set(refs))


def declared_writes(ev: Evaluation) -> dict[str, dict[str, str]]:
    from pulumi.runtime import rpc

    return {
        r.inputs["name"]: json.loads(rpc.unwrap_rpc_secret(r.inputs["dataJson"]))
        for r in ev.of_type("vault:kv/secretV2:SecretV2")
    }


@pytest.fixture(scope="module")
def restricted(root: hvac.Client, canary_staging: Evaluation, openbao: dict[str, str]) -> hvac.Client:
    """Load what the program declares into OpenBao, then a token holding only its policy."""
    policy = canary_staging.of_type("vault:index/policy:Policy")[0].inputs
    root.sys.create_or_update_policy(name=policy["name"], policy=policy["policy"])
    for path, data in declared_writes(canary_staging).items():
        root.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point="secret")
    root.secrets.kv.v2.create_or_update_secret(path="integration/prod/graph", secret={"database-url": "other-env"},
                                               mount_point="secret")
    root.secrets.kv.v2.create_or_update_secret(path="platform/admin", secret={"password": "nope"}, mount_point="secret")
    token = root.auth.token.create(policies=[policy["name"]], no_default_policy=True, ttl="10m")
    return hvac.Client(url=openbao["addr"], token=token["auth"]["client_token"])


def test_every_external_secret_reference_resolves_with_only_the_policy(restricted: hvac.Client,
                                                                       canary_staging: Evaluation) -> None:
    refs = remote_refs(canary_staging)
    assert len(refs) >= 10
    for key, prop in refs:
        data = restricted.secrets.kv.v2.read_secret_version(path=key, mount_point="secret",
                                                             raise_on_deleted_version=True)["data"]["data"]
        assert data[prop] == f"{CANARY}-{key.split('/')[-1]}-{prop}"


@pytest.mark.parametrize(
    "attempt",
    [
        lambda c: c.secrets.kv.v2.read_secret_version(path="integration/prod/graph", mount_point="secret",
                                                       raise_on_deleted_version=True),
        lambda c: c.secrets.kv.v2.read_secret_version(path="platform/admin", mount_point="secret",
                                                       raise_on_deleted_version=True),
        lambda c: c.secrets.kv.v2.list_secrets(path="integration/staging", mount_point="secret"),
        lambda c: c.secrets.kv.v2.create_or_update_secret(path="integration/staging/graph",
                                                          secret={"database-url": "x"}, mount_point="secret"),
        lambda c: c.secrets.kv.v2.create_or_update_secret(path="integration/staging/new", secret={"a": "b"},
                                                          mount_point="secret"),
        lambda c: c.secrets.kv.v2.read_secret_metadata(path="integration/staging/graph", mount_point="secret"),
        lambda c: c.sys.list_policies(),
    ],
    ids=["other-env", "outside-prefix", "list", "overwrite", "write-new", "metadata", "sys"],
)
def test_everything_else_is_denied(restricted: hvac.Client, attempt: Callable[[hvac.Client], object]) -> None:
    with pytest.raises(hvac.exceptions.Forbidden):
        attempt(restricted)


def self_signed_ca() -> str:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-cluster-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_the_kubernetes_auth_role_is_accepted_by_the_server(root: hvac.Client, canary_staging: Evaluation) -> None:
    role = canary_staging.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")[0].inputs
    ensure_kubernetes_auth(root, role["backend"])
    # Writing the config does not contact the API server; login (which would) needs a cluster.
    root.auth.kubernetes.configure(kubernetes_host="https://127.0.0.1:6443", disable_local_ca_jwt=True,
                                   kubernetes_ca_cert=self_signed_ca(),
                                   mount_point=role["backend"])
    root.auth.kubernetes.create_role(
        name=role["roleName"],
        bound_service_account_names=role["boundServiceAccountNames"],
        bound_service_account_namespaces=role["boundServiceAccountNamespaces"],
        policies=role["tokenPolicies"],
        audience=role["audience"],
        ttl=int(role["tokenTtl"]),
        max_ttl=int(role["tokenMaxTtl"]),
        mount_point=role["backend"],
    )
    stored = root.auth.kubernetes.read_role(role["roleName"], mount_point=role["backend"])
    assert stored["bound_service_account_names"] == ["external-secrets"]
    assert stored["bound_service_account_namespaces"] == ["external-secrets"]
    assert stored["token_policies"] == ["integration-tests-staging-read"]
    assert stored["audience"] == "vault"


def live_external_vault(client: hvac.Client) -> Callable[[str, str], list[str] | None]:
    """Answer the program's existence check from the real server's KV v2 subkeys endpoint."""

    def check(mount: str, path: str) -> list[str] | None:
        try:
            resp = client.adapter.get(f"/v1/{mount}/subkeys/{path}")
        except hvac.exceptions.InvalidPath:
            return None
        return sorted(resp["data"]["subkeys"])

    return check


def test_preview_fails_naming_a_missing_external_property(root: hvac.Client) -> None:
    config, secret_keys = fixture_stack_config("staging")
    settings = fixture_settings("staging")
    for key in settings.vault_keys:
        props = {p: "present" for p in key.properties}
        if key.name == "graph":
            props = {}
            props["unrelated"] = "x"
        root.secrets.kv.v2.create_or_update_secret(path=key.path, secret=props, mount_point="secret")
    with pytest.raises(ConfigError) as err:
        evaluate_fixture("staging", config=config, secret_keys=secret_keys, external_vault=live_external_vault(root))
    assert "secret/integration/staging/graph" in str(err.value) and "database-url" in str(err.value)

    root.secrets.kv.v2.create_or_update_secret(path="integration/staging/graph", secret={"database-url": "ok"},
                                               mount_point="secret")
    ev = evaluate_fixture("staging", config=config, secret_keys=secret_keys, external_vault=live_external_vault(root))
    assert not ev.of_type("vault:kv/secretV2:SecretV2")  # external keys are only checked, never written



def test_an_absent_external_key_fails_preview_and_the_preflight_names_it_first(root: hvac.Client,
                                                                             openbao: dict[str, str]) -> None:
    config, secret_keys = fixture_stack_config("staging")
    settings = fixture_settings("staging")
    for key in settings.vault_keys:
        root.secrets.kv.v2.create_or_update_secret(path=key.path, secret={p: "present" for p in key.properties},
                                                   mount_point="secret")
    root.secrets.kv.v2.delete_metadata_and_all_versions(path="integration/staging/threads", mount_point="secret")
    threads = next(k for k in settings.vault_keys if k.name == "threads")
    expected = ("Vault key secret/integration/staging/threads (source `external`, owned by threads) does not exist: "
                + settings.external_key_fix(threads))
    # The program lists the key's folder first and never asks for the subkeys of an absent key (the
    # real provider crashes on that read): a raw preview names the key, its owner and the fix...
    with pytest.raises(ConfigError) as err:
        evaluate_fixture("staging", config=config, secret_keys=secret_keys, external_vault=live_external_vault(root))
    assert str(err.value) == expected
    # ...in the same words as the preflight `make preview` / `make up` run before the CLI.
    assert preflight_problems(settings, HvacVaultReader(openbao["addr"], openbao["token"])) == [expected]


def test_a_stored_token_ending_within_a_day_is_said_by_the_preflight_not_one_minted_per_job(openbao) -> None:
    from clients.vault import HvacVaultReader
    from deploy.verify import token_lifetime_warning

    root = hvac.Client(url=openbao["addr"], token=openbao["token"])
    short = root.auth.token.create_orphan(policies=["default"], ttl="2h")["auth"]["client_token"]
    periodic = root.auth.token.create_orphan(policies=["default"], period="12h")["auth"]["client_token"]
    long_lived = root.auth.token.create_orphan(policies=["default"], ttl="72h")["auth"]["client_token"]
    said = token_lifetime_warning(HvacVaultReader(openbao["addr"], short).token_info)
    assert said and said.startswith("WARNING: VAULT_TOKEN expires in 2.0 h") and "mint a new one" in said
    assert "vault token renew" in (token_lifetime_warning(HvacVaultReader(openbao["addr"], periodic).token_info)
                                   or "")  # a 12 h period: renewed by use
    assert token_lifetime_warning(HvacVaultReader(openbao["addr"], long_lived).token_info) is None
    assert token_lifetime_warning({"ttl": 3600, "path": "auth/jwt/login"}) is None  # make login's, per job
