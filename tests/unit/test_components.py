"""Components alone, from their narrow args: the objects they declare (no whole program)."""

from __future__ import annotations

from components.service_external_secret import SecretItem, ServiceExternalSecretArgs, external_secret_manifest
from components.vault_secret_store import VaultSecretStoreArgs, secret_store_manifest


def store(kind: str) -> VaultSecretStoreArgs:
    return VaultSecretStoreArgs(
        kind=kind, name="vault-x", namespace="integration-tests", labels={"a": "b"}, vault_server="https://v:8200",
        vault_mount="secret", auth_mount="kubernetes", role_name="r", service_account="eso",
        service_account_namespace="eso-ns", audience="vault", ca_bundle="", protect=False)


def test_a_cluster_store_is_limited_to_the_integration_namespace() -> None:
    manifest = secret_store_manifest(store("ClusterSecretStore"))
    assert "namespace" not in manifest["metadata"]
    assert manifest["spec"]["conditions"] == [{"namespaces": ["integration-tests"]}]
    sa_ref = manifest["spec"]["provider"]["vault"]["auth"]["kubernetes"]["serviceAccountRef"]
    assert sa_ref == {"name": "eso", "audiences": ["vault"], "namespace": "eso-ns"}
    assert "caBundle" not in manifest["spec"]["provider"]["vault"]


def test_a_namespaced_store_lives_in_the_namespace_and_names_no_other() -> None:
    manifest = secret_store_manifest(store("SecretStore"))
    assert manifest["metadata"]["namespace"] == "integration-tests"
    assert "conditions" not in manifest["spec"]
    assert "namespace" not in manifest["spec"]["provider"]["vault"]["auth"]["kubernetes"]["serviceAccountRef"]


def test_an_external_secret_maps_each_property_and_waits_only_when_asked() -> None:
    args = ServiceExternalSecretArgs(
        name="graph-int-tests-secrets", namespace="integration-tests", labels={}, store_kind="SecretStore",
        store_name="vault-x", refresh_interval="1h", wait_for_ready=True,
        items=(SecretItem("GRAPH_DATABASE_URL", "integration/staging/graph", "database-url"),))
    manifest = external_secret_manifest(args)
    assert manifest["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Ready"}
    assert manifest["spec"]["data"][0]["remoteRef"]["key"] == "integration/staging/graph"
    assert manifest["spec"]["target"] == {"name": "graph-int-tests-secrets", "creationPolicy": "Owner",
                                          "deletionPolicy": "Retain"}
    no_wait = external_secret_manifest(ServiceExternalSecretArgs(**{**args.__dict__, "wait_for_ready": False}))
    assert no_wait["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
