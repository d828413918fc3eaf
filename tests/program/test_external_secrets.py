"""The store and ExternalSecrets the stacks declare: valid against the real ESO v1 CRDs (strict),
and every reference points at a Vault key and property the Vault component declares."""

from __future__ import annotations

import jsonschema
import pytest

from config.naming import RELEASE_TYPE
from offline.render import kubernetes_manifest
from tests.conftest import STACKS, evaluate_fixture, fixture_settings, fixture_stack_config

ESO_KINDS = ("ExternalSecret", "SecretStore", "ClusterSecretStore")

def eso_objects(ev):
    for res in ev.resources:
        obj = kubernetes_manifest(res)
        if obj and obj["kind"] in ESO_KINDS:
            yield obj

@pytest.mark.parametrize("stack", STACKS)
def test_eso_objects_validate_strictly_against_the_v1_crds(evaluations, eso_validators, stack: str) -> None:
    objects = list(eso_objects(evaluations[stack]))
    assert {o["kind"] for o in objects} >= {"ExternalSecret"}
    for obj in objects:
        assert obj["apiVersion"] == "external-secrets.io/v1"
        eso_validators[obj["kind"]].validate(obj)

def test_strict_mode_rejects_a_misspelled_field(evaluations, eso_validators) -> None:
    obj = next(o for o in eso_objects(evaluations["staging"]) if o["kind"] == "ExternalSecret")
    obj["spec"]["target"]["creationPolicyy"] = "Owner"
    with pytest.raises(jsonschema.ValidationError, match="creationPolicyy"):
        eso_validators["ExternalSecret"].validate(obj)

@pytest.mark.parametrize("stack", STACKS)
def test_every_remote_ref_is_a_declared_vault_key_and_property(evaluations, stack: str) -> None:
    settings = fixture_settings(stack)
    declared = {k.path: set(k.properties) for k in settings.vault_keys}
    store = next(o for o in eso_objects(evaluations[stack]) if o["kind"] != "ExternalSecret")
    assert store["spec"]["provider"]["vault"]["path"] == settings.stack.vault_mount
    assert store["spec"]["provider"]["vault"]["auth"]["kubernetes"]["role"] == settings.vault_role_name
    for obj in eso_objects(evaluations[stack]):
        if obj["kind"] != "ExternalSecret":
            continue
        assert obj["metadata"]["namespace"] == settings.namespace
        assert obj["spec"]["secretStoreRef"] == {"kind": store["kind"], "name": store["metadata"]["name"]}
        assert obj["spec"]["refreshInterval"] not in ("0", "0s")
        for entry in obj["spec"]["data"]:
            ref = entry["remoteRef"]
            assert ref["key"] in declared, ref
            assert ref["property"] in declared[ref["key"]], ref

@pytest.mark.parametrize("stack", STACKS)
def test_required_env_is_provided_inline_or_by_the_external_secret(evaluations, stack: str) -> None:
    settings = fixture_settings(stack)
    externals = {o["metadata"]["name"]: o for o in eso_objects(evaluations[stack]) if o["kind"] == "ExternalSecret"}
    releases = {r.name: r.inputs["values"] for r in evaluations[stack].of_type(RELEASE_TYPE)}
    for svc in settings.services:
        values = releases[svc.name]
        provided = {e["name"] for e in values["env"]}
        for ref in values["secretEnv"]:
            target = externals[ref["secretName"]]
            assert ref["key"] in {d["secretKey"] for d in target["spec"]["data"]}
            provided.add(ref["name"])
        assert set(svc.required_env) <= provided, svc.name

def test_wait_for_ready_annotation_follows_the_stack(evaluations) -> None:
    staging = next(o for o in eso_objects(evaluations["staging"]) if o["kind"] == "ExternalSecret")
    assert staging["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Ready"}
    config, secret_keys = fixture_stack_config("local")
    config["testinfra:waitForSecrets"] = "false"
    local = evaluate_fixture("local", config=config, secret_keys=secret_keys)
    no_wait = next(o for o in eso_objects(local) if o["kind"] == "ExternalSecret")
    assert no_wait["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
