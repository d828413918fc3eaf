"""The real __main__.py for each stack under Pulumi's mocks: what it declares, in which order."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pulumi.runtime import rpc

from config.naming import RELEASE_TYPE as RELEASE
from offline.harness import OFFLINE_CLUSTER_CA, Evaluation
from tests.conftest import (
    CANARY,
    PROJECT_DIR,
    STACKS,
    canary_config,
    evaluate_fixture,
    fixture_settings,
    stack_config_with,
    strict_schema,
)

EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
NAMESPACE = "kubernetes:core/v1:Namespace"


def only(ev: Evaluation, type_: str, name: str | None = None):
    found = [r for r in ev.of_type(type_) if name is None or r.name == name]
    assert len(found) == 1, f"expected one {type_} {name}, got {[r.name for r in found]}"
    return found[0]


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_validate_against_the_contract_schema(evaluations, outputs_schema, stack: str) -> None:
    outputs = evaluations[stack].outputs
    jsonschema.validate(outputs, strict_schema(outputs_schema))  # the producer adds nothing unpublished
    assert outputs["environment"] == stack
    assert set(outputs["services"]) == {svc.name for svc in fixture_settings(stack).services}
    assert evaluations[stack].secret_output_names == []


@pytest.mark.parametrize("stack", STACKS)
def test_namespace_is_restricted_and_protected_only_in_prod(evaluations, stack: str) -> None:
    ns = only(evaluations[stack], NAMESPACE)
    labels = ns.inputs["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert ns.protect is (stack == "prod")


def test_namespace_has_default_deny_dns_and_configured_egress(evaluations) -> None:
    policies = {r.name: r.inputs["spec"] for r in evaluations["staging"].of_type(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert {p["port"] for p in policies["allow-dns"]["egress"][0]["ports"]} == {53}
    assert any(rule["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}] for rule in policies["allow-suite-egress"]["egress"])
    assert "allow-suite-egress" not in {r.name for r in evaluations["local"].of_type(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy")}


def test_runner_service_account_has_no_token_and_no_rbac(evaluations) -> None:
    ev = evaluations["staging"]
    sa = [r for r in ev.of_type("kubernetes:core/v1:ServiceAccount") if r.name == "runner"][0]
    assert sa.inputs["automountServiceAccountToken"] is False
    assert not ev.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
    assert {r.inputs["values"]["serviceAccount"]["automountToken"] for r in ev.of_type(RELEASE)} == {False}


def test_runner_rbac_grants_the_role_and_gives_the_suites_a_token_to_use_it() -> None:
    rule = {"apiGroups": ["", "apps"], "resources": ["pods", "deployments"], "verbs": ["get", "list"]}
    config, secret_keys = stack_config_with("staging", runnerRbac=[rule])
    ev = evaluate_fixture("staging", config=config, secret_keys=secret_keys)
    role = only(ev, "kubernetes:rbac.authorization.k8s.io/v1:Role")
    assert role.inputs["rules"] == [rule]
    binding = only(ev, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert binding.inputs["subjects"][0]["name"] == binding.inputs["roleRef"]["name"] == "integration-test-runner"
    for release in ev.of_type(RELEASE):
        assert release.inputs["values"]["serviceAccount"] == {"name": "integration-test-runner", "automountToken": True}


def test_a_services_own_rbac_gets_its_own_account_and_only_its_pods_a_token() -> None:
    """One service's needs no longer hand every suite a token: graph alone runs as its own account."""
    rule = {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list"]}
    config, secret_keys = stack_config_with("staging", serviceOverrides={"graph": {"runnerRbac": [rule]}})
    ev = evaluate_fixture("staging", config=config, secret_keys=secret_keys)
    role = only(ev, "kubernetes:rbac.authorization.k8s.io/v1:Role")
    assert role.inputs["metadata"]["name"] == "integration-test-runner-graph" and role.inputs["rules"] == [rule]
    binding = only(ev, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert binding.inputs["subjects"][0]["name"] == "integration-test-runner-graph"
    accounts = {r.inputs["metadata"]["name"]: r.inputs["automountServiceAccountToken"]
                for r in ev.of_type("kubernetes:core/v1:ServiceAccount") if r.name.startswith("runner")}
    assert accounts == {"integration-test-runner": False, "integration-test-runner-graph": False}
    accounts_of = {r.inputs["name"]: r.inputs["values"]["serviceAccount"] for r in ev.of_type(RELEASE)}
    assert accounts_of.pop("test-graph") == {"name": "integration-test-runner-graph", "automountToken": True}
    assert {a["name"] for a in accounts_of.values()} == {"integration-test-runner"}
    assert not any(a["automountToken"] for a in accounts_of.values())


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_resource_uses_the_explicit_provider(evaluations, stack: str) -> None:
    ev = evaluations[stack]
    provider = only(ev, "pulumi:providers:kubernetes")
    assert provider.inputs["context"] == ev.outputs["kubeContext"]
    for res in ev.resources:
        if res.type.startswith("kubernetes:") and res.custom:
            assert res.provider.startswith(provider.urn + "::"), res.name
        if res.type.startswith("vault:"):
            assert res.provider.startswith(only(ev, "pulumi:providers:vault").urn + "::"), res.name


@pytest.mark.parametrize("stack", STACKS)
def test_each_release_waits_for_its_external_secret_and_the_proto_stack(evaluations, stack: str) -> None:
    ev = evaluations[stack]
    proto = only(ev, "pulumi:pulumi:StackReference")
    assert proto.inputs["name"] == ev.outputs["prerequisites"]["protoStack"]
    secrets = {r.name: r.urn for r in ev.of_type(EXTERNAL_SECRET)}
    for release in ev.of_type(RELEASE):
        deps = set(release.dependencies)
        assert proto.urn in deps, release.name
        if ev.outputs["services"][release.name]["secretName"]:
            assert secrets[release.name] in deps, release.name
        else:
            assert release.name not in secrets
        assert "prerequisite offline-render" in release.inputs["description"]


def test_releases_without_secrets_reference_no_secret(evaluations) -> None:
    for release in evaluations["staging"].of_type(RELEASE):
        if release.name in ("inference-gateway", "www-ameide"):
            assert release.inputs["values"]["secretEnv"] == []
        else:
            assert release.inputs["values"]["secretEnv"]


@pytest.mark.parametrize("stack", STACKS)
def test_two_evaluations_declare_identical_resources(evaluations, stack: str) -> None:
    again = evaluate_fixture(stack)

    def canon(ev: Evaluation) -> list[str]:
        return sorted(json.dumps([r.type, r.urn, r.parent, sorted(r.dependencies), r.protect, r.inputs],
                                 sort_keys=True, default=str) for r in ev.resources)

    assert canon(again) == canon(evaluations[stack])
    assert again.outputs == evaluations[stack].outputs


def test_canary_secrets_stay_secret_everywhere() -> None:
    config, secret_keys = canary_config("staging")
    ev = evaluate_fixture("staging", config=config, secret_keys=secret_keys)
    written = ev.of_type("vault:kv/secretV2:SecretV2")
    assert len(written) == len({k.split("/")[-1] for s in ev.outputs["services"].values() for k in s["vaultKeys"]})
    everything_but_vault_writes = json.dumps(
        [[r.type, r.name, r.inputs] for r in ev.resources if r.type != "vault:kv/secretV2:SecretV2"], default=str)
    assert CANARY not in everything_but_vault_writes
    assert CANARY not in json.dumps(ev.outputs)
    assert CANARY not in "\n".join(ev.logs)
    for res in written:
        # The value reaches Vault only as a Pulumi secret, and stays one in state.
        assert rpc.is_rpc_secret(res.inputs["dataJson"]), res.name
        assert CANARY in rpc.unwrap_rpc_secret(res.inputs["dataJson"])
        assert "dataJson" in res.secret_outputs


def test_prod_protects_stateful_resources(evaluations) -> None:
    ev = evaluations["prod"]
    assert only(ev, NAMESPACE).protect
    assert only(ev, "kubernetes:external-secrets.io/v1:ClusterSecretStore").protect
    config, secret_keys = canary_config("prod")
    written = evaluate_fixture("prod", config=config, secret_keys=secret_keys).of_type("vault:kv/secretV2:SecretV2")
    assert written and all(r.protect for r in written)


def test_external_keys_are_never_written(evaluations) -> None:
    for stack in ("staging", "prod"):
        assert not evaluations[stack].of_type("vault:kv/secretV2:SecretV2")
    local_written = {r.inputs["name"] for r in evaluations["local"].of_type("vault:kv/secretV2:SecretV2")}
    assert "integration/local/integration-test-bearer-token" in local_written


def test_written_keys_are_retained_when_they_leave_the_program(evaluations) -> None:
    # A key switched to `external` (its owner writes it now) or a destroyed stack keeps the value.
    written = evaluations["local"].of_type("vault:kv/secretV2:SecretV2")
    assert written and all(r.retain_on_delete for r in written)
    assert not [r.name for r in evaluations["local"].resources
                if r.retain_on_delete and r.type != "vault:kv/secretV2:SecretV2"]


def test_generated_urls_reach_vault_as_secrets(evaluations) -> None:
    graph = next(r for r in evaluations["local"].of_type("vault:kv/secretV2:SecretV2") if r.name == "graph")
    assert rpc.is_rpc_secret(graph.inputs["dataJson"])
    data = json.loads(rpc.unwrap_rpc_secret(graph.inputs["dataJson"]))
    assert data["database-url"].startswith("postgresql://graph:")


def test_a_generated_key_is_coherent_url_username_and_password_agree(evaluations) -> None:
    key = next(r for r in evaluations["local"].of_type("vault:kv/secretV2:SecretV2") if r.name == "transformation")
    data = json.loads(rpc.unwrap_rpc_secret(key.inputs["dataJson"]))
    assert data["db-username"] == "transformation" and len(data["db-password"]) == 32
    assert data["db-url"].startswith(f"postgresql://{data['db-username']}:{data['db-password']}@")
    randoms = [r.name for r in evaluations["local"].of_type("random:index/randomPassword:RandomPassword")]
    assert sorted(randoms) == sorted(f"{k.name}-generated" for k in fixture_settings("local").vault_keys)


def test_a_managed_auth_backend_trusts_the_cluster_ca_and_lets_eso_review_tokens(evaluations) -> None:
    local = evaluations["local"]
    config = only(local, "vault:kubernetes/authBackendConfig:AuthBackendConfig")
    assert config.inputs["kubernetesHost"] == "https://127.0.0.1:16443"
    assert config.inputs["kubernetesCaCert"] == OFFLINE_CLUSTER_CA
    assert config.inputs["disableLocalCaJwt"] is True
    binding = only(local, "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
    assert binding.inputs["roleRef"]["name"] == "system:auth-delegator"
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": "external-secrets-vault", "namespace": "integration-tests"}]
    for stack in ("staging", "prod"):  # the platform owns the auth method there
        assert not evaluations[stack].of_type("vault:kubernetes/authBackendConfig:AuthBackendConfig")
        assert not evaluations[stack].of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")


def test_a_later_minor_that_adds_fields_still_validates_for_a_1_0_consumer(evaluations, outputs_schema) -> None:
    outputs = json.loads(json.dumps(evaluations["staging"].outputs))
    outputs["schemaVersion"] = "1.1"
    outputs["addedIn11"] = {"anything": True}
    outputs["vault"]["namespace"] = "admin"
    for svc in outputs["services"].values():
        svc["retries"] = 2
    jsonschema.validate(outputs, outputs_schema)
    outputs["schemaVersion"] = "2.0"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(outputs, outputs_schema)


def test_the_published_schema_is_what_the_contracts_model_generates() -> None:
    """schemas/stack-outputs.schema.json is generated (`make schema`); a hand edit, or a model change
    without regenerating, is drift."""
    from config.contract import SCHEMA_FILE
    from offline.schema import schema_text

    assert (PROJECT_DIR / SCHEMA_FILE).read_text() == schema_text(), "run `make schema` and commit the file"


def test_the_readers_view_and_the_producers_contract_agree_on_every_output(evaluations) -> None:
    """The lenient reader (config/outputs.py) reads what the strict producer wrote, for every fixture stack."""
    from config.outputs import parse

    for ev in evaluations.values():
        read = parse(json.dumps(ev.outputs), "fixture")
        assert set(read.services) == set(ev.outputs["services"]) and read.vault is not None


@pytest.mark.parametrize(("configured", "referenced"), [
    ("ameide-core-proto/staging", "organization/ameide-core-proto/staging"),  # the stack's own organisation
    ("ameide/ameide-core-proto/staging", "ameide/ameide-core-proto/staging"),  # as written
])
def test_the_proto_stack_resolves_in_the_stacks_own_organisation_unless_one_is_named(configured, referenced) -> None:
    config, secret_keys = stack_config_with("staging", protoStack=configured)
    ev = evaluate_fixture("staging", config=config, secret_keys=secret_keys)
    (proto,) = ev.of_type("pulumi:pulumi:StackReference")
    assert proto.inputs["name"] == referenced
