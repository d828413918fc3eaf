"""The committed catalog.yaml and Pulumi.<stack>.yaml, on what they say: each stack loads, renders,
and everything it declares is valid (Kubernetes API schemas, ESO v1 CRDs, the outputs contract, the
policy pack). Nothing here pins a value a team may change -- except the tests named `committed_...`,
which pin a decision on purpose and say so when they fail."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pulumi_policy import EnforcementLevel

from config.loading import stack_settings
from config.naming import ENVIRONMENTS
from offline import manifests_yaml, render
from offline.harness import evaluate
from policy import rules
from tests.conftest import strict_schema
from tests.program.policy_pack import violations

ESO_KINDS = {"ExternalSecret", "SecretStore", "ClusterSecretStore"}


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("committed")
    return {stack: render.render(stack, out) for stack in ENVIRONMENTS}


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_each_committed_stack_declares_only_valid_objects(committed, eso_validators, stack: str) -> None:
    settings = stack_settings(stack)
    version = f"{settings.stack.kubernetes_version}.0"
    docs = [d for path in sorted((committed[stack] / "manifests").glob("*.yaml"))
            for d in manifests_yaml.load_all(path.read_text())]
    assert docs
    for doc in docs:
        if doc["kind"] in ESO_KINDS:
            eso_validators[doc["kind"]].validate(doc)
        else:
            kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_each_committed_stack_honours_the_outputs_contract(committed, outputs_schema, stack: str) -> None:
    outputs = json.loads((committed[stack] / "outputs.json").read_text())
    jsonschema.validate(outputs, strict_schema(outputs_schema))  # the producer adds nothing unpublished
    assert set(outputs["services"]) == {svc.name for svc in stack_settings(stack).services}


@pytest.mark.parametrize("stack", ENVIRONMENTS)
def test_each_committed_stack_passes_the_policy_pack(stack: str) -> None:
    rules.catalog.cache_clear()  # the committed catalog.yaml, as the pack reads it under the CLI
    # Mandatory rules only: a stack may disable a service (the advisory rule then names it).
    assert violations(evaluate(stack), EnforcementLevel.MANDATORY) == []


def test_committed_prod_protects_its_state() -> None:
    assert stack_settings("prod").stack.protect, (
        "Pulumi.prod.yaml no longer sets testinfra:protect: true -- a decision, not a detail: the policy pack "
        "requires protected state in prod; change this test only if that decision changed")


def test_every_config_key_the_project_declares_without_a_default_is_set_by_every_stack() -> None:
    """The CLI refuses a stack that lacks a declared key with no default ("missing configuration
    value") before the program runs -- which the mock tier never sees: checked here, on the files."""
    from config.files import PROJECT_DIR
    from config.naming import PROJECT, REVIEW_TEMPLATE

    declared = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text()).get("config") or {}
    required = sorted(k for k, d in declared.items() if isinstance(d, dict) and "default" not in d)
    for stack in (*ENVIRONMENTS, REVIEW_TEMPLATE):
        config = (yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text()) or {}).get("config") or {}
        missing = [k for k in required if f"{PROJECT}:{k}" not in config]
        assert not missing, (stack, missing)
