"""components/vault_objects.py registers exactly what pulumi_vault's and pulumi_random's generated
classes register: each kind, the provider and the two KV reads the program uses are declared both ways
under the SDK's mocks and the requests (RegisterResource, Invoke) are compared whole."""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_random as random
import pulumi_vault as vault
import pytest

from components import vault_objects as vo
from tests.program.conftest import registered

OPTS = pulumi.ResourceOptions(protect=True, retain_on_delete=True)
CASES: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
    "Mount": (
        lambda: vault.Mount("kv", path="secret", type="kv", options={"version": "2"}, description="d", opts=OPTS),
        lambda: vo.BridgedResource(vo.MOUNT, "kv", {"path": "secret", "type": "kv", "options": {"version": "2"},
                                                    "description": "d"}, OPTS),
    ),
    "AuthBackend": (
        lambda: vault.AuthBackend("k", type="kubernetes", path="kubernetes", description="d"),
        lambda: vo.BridgedResource(vo.AUTH_BACKEND, "k", {"type": "kubernetes", "path": "kubernetes",
                                                          "description": "d"}),
    ),
    "Policy": (
        lambda: vault.Policy("p", name="read", policy='path "x" { capabilities = ["read"] }'),
        lambda: vo.BridgedResource(vo.POLICY, "p", {"name": "read", "policy": 'path "x" { capabilities = ["read"] }'}),
    ),
    "AuthBackendRole": (
        lambda: vault.kubernetes.AuthBackendRole(
            "r", backend="kubernetes", role_name="eso", bound_service_account_names=["sa"],
            bound_service_account_namespaces=["ns"], audience="vault", token_policies=["read"], token_ttl=900,
            token_max_ttl=1800, token_no_default_policy=True),
        lambda: vo.BridgedResource(vo.AUTH_BACKEND_ROLE, "r", {
            "backend": "kubernetes", "roleName": "eso", "boundServiceAccountNames": ["sa"],
            "boundServiceAccountNamespaces": ["ns"], "audience": "vault", "tokenPolicies": ["read"],
            "tokenTtl": 900, "tokenMaxTtl": 1800, "tokenNoDefaultPolicy": True}),
    ),
    "AuthBackendConfig": (
        lambda: vault.kubernetes.AuthBackendConfig("c", backend="kubernetes", kubernetes_host="https://k:6443",
                                                    kubernetes_ca_cert="PEM", disable_local_ca_jwt=True),
        lambda: vo.BridgedResource(vo.AUTH_BACKEND_CONFIG, "c", {
            "backend": "kubernetes", "kubernetesHost": "https://k:6443", "kubernetesCaCert": "PEM",
            "disableLocalCaJwt": True}),
    ),
    "SecretV2": (
        lambda: vault.kv.SecretV2("s", mount="secret", name="integration/local/k", data_json='{"a":"b"}',
                                  opts=pulumi.ResourceOptions(additional_secret_outputs=["dataJson", "data"])),
        lambda: vo.BridgedResource(vo.SECRET_V2, "s", {"mount": "secret", "name": "integration/local/k",
                                                       "dataJson": '{"a":"b"}'},
                                   pulumi.ResourceOptions(additional_secret_outputs=["dataJson", "data"])),
    ),
    "RandomPassword": (
        lambda: random.RandomPassword("g", length=32, special=False),
        lambda: vo.BridgedResource(vo.RANDOM_PASSWORD, "g", {"length": 32, "special": False}),
    ),
    "Provider": (
        lambda: vault.Provider("vault", address="https://vault:8200", skip_child_token=True),
        lambda: vo.VaultProvider("vault", "https://vault:8200", skip_child_token=True),
    ),
    "getSecretSubkeysV2": (
        lambda: vault.kv.get_secret_subkeys_v2_output(mount="secret", name="a/b",
                                                      opts=pulumi.InvokeOutputOptions(depends_on=[])),
        lambda: vo.invoke(vo.KV_SUBKEYS_V2, {"mount": "secret", "name": "a/b"},
                          pulumi.InvokeOutputOptions(depends_on=[])),
    ),
    "getSecretsListV2": (
        lambda: vault.kv.get_secrets_list_v2_output(mount="secret", name="a", opts=pulumi.InvokeOutputOptions()),
        lambda: vo.invoke(vo.KV_LIST_V2, {"mount": "secret", "name": "a"}, pulumi.InvokeOutputOptions()),
    ),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_untyped_registration_is_the_generated_classes(kind: str) -> None:
    generated, untyped = CASES[kind]
    assert registered(untyped) == registered(generated)


@pytest.mark.parametrize("environment", [
    {},
    {"TERRAFORM_VAULT_MAX_TTL": "600", "VAULT_MAX_RETRIES": "5", "VAULT_SKIP_VERIFY": "true"},
    {"TERRAFORM_VAULT_MAX_TTL": "soon", "VAULT_MAX_RETRIES": "", "VAULT_SKIP_VERIFY": "0"},
    {"VAULT_SKIP_VERIFY": "yes"},
])
def test_the_provider_takes_the_generated_classs_defaults_from_the_environment(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TERRAFORM_VAULT_MAX_TTL", "VAULT_MAX_RETRIES", "VAULT_SKIP_VERIFY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    generated, untyped = CASES["Provider"]
    assert registered(untyped) == registered(generated)


def test_the_comparison_sees_a_difference() -> None:
    """The checks above could fail: a missing secret output, version or property is a different request."""
    typed = registered(CASES["RandomPassword"][0])
    plain = vo.BridgedKind("random", vo.RANDOM_PASSWORD.token, outputs=vo.RANDOM_PASSWORD.outputs)
    assert registered(lambda: vo.BridgedResource(plain, "g", {"length": 32, "special": False})) != typed
    assert registered(lambda: vo.BridgedResource(vo.RANDOM_PASSWORD, "g", {"length": 32})) != typed
    other = vo.BridgedKind("vault", vo.RANDOM_PASSWORD.token, vo.RANDOM_PASSWORD.outputs, (), ("bcryptHash", "result"))
    assert registered(lambda: vo.BridgedResource(other, "g", {"length": 32, "special": False})) != typed


def test_the_program_imports_neither_generated_package() -> None:
    """The point of the module: the program's components load without pulumi_vault or pulumi_random."""
    import subprocess
    import sys

    from tests.conftest import PROJECT_DIR

    probe = ("import sys, components.integration_environment; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi_vault', 'pulumi_random')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
