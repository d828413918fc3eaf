"""The CrossGuard rules, called without the Pulumi CLI on the resources each stack declares."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from pulumi_policy import (
    EnforcementLevel,
)

from offline.harness import Evaluation
from policy import rules
from tests.conftest import STACKS, evaluate_fixture, fixture_project, stack_config_with
from tests.program.policy_pack import findings, violations


@pytest.fixture(autouse=True)
def fixture_catalog(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The pack reads the project's catalog.yaml (cached); these tests evaluate the fixture project."""
    monkeypatch.setattr(rules, "CATALOG", fixture_project() / "catalog.yaml")
    rules.catalog.cache_clear()
    yield
    rules.catalog.cache_clear()


def test_the_pack_declares_every_rule() -> None:
    names = {p.name for p in rules.policies()}
    assert names == {"no-inline-credentials", "unified-entrypoint", "external-secrets-use-the-store",
                     "every-service-has-a-release", "prod-state-protected", "only-known-resource-types",
                     "egress-off-the-cluster-and-metadata", "rbac-within-the-runner-set"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_program_passes_every_rule(evaluations, stack: str) -> None:
    assert violations(evaluations[stack]) == []


def test_a_disabled_service_is_only_an_advisory_finding() -> None:
    config, secret_keys = stack_config_with("staging", serviceOverrides={"graph": {"enabled": False}})
    ev = evaluate_fixture("staging", config=config, secret_keys=secret_keys)
    assert violations(ev, EnforcementLevel.MANDATORY) == []
    assert [(name, message) for name, level, message in findings(ev) if level == EnforcementLevel.ADVISORY] == [
        ("every-service-has-a-release", "catalog service graph has no release test-graph: its suite is not wired "
                                         "into the runner")]


def mutated(ev: Evaluation, type_: str, change) -> Evaluation:
    resources = []
    for r in ev.resources:
        if r.type == type_:
            r = copy.deepcopy(r)
            change(r)
        resources.append(r)
    return Evaluation(ev.stack, resources, ev.outputs, ev.secret_output_names)


@pytest.mark.parametrize(
    ("stack", "type_", "change", "expected"),
    [
        ("staging", rules.RELEASE, lambda r: r.inputs["values"]["env"].append({"name": "DB_PASSWORD", "value": "x"}),
         "DB_PASSWORD is inline"),
        ("staging", rules.RELEASE, lambda r: r.inputs["values"]["env"].append(
            {"name": "DB", "value": "postgres://user:pw@db:5432/x"}), "looks like a credential (a password in a URL)"),
        ("staging", rules.RELEASE, lambda r: r.inputs["values"]["env"].append(
            {"name": "CI_LOGIN", "value": "ghp_" + "x1Y2z3" * 6}), "looks like a credential (a GitHub token)"),
        ("staging", rules.RELEASE, lambda r: r.inputs["values"].update(entrypoint="/bin/true"), "shared entrypoint"),
        ("staging", rules.EXTERNAL_SECRET, lambda r: r.inputs["spec"]["secretStoreRef"].update(name="other"),
         "is not this stack's store"),
        ("staging", rules.EXTERNAL_SECRET, lambda r: r.inputs["metadata"].update(namespace="default"),
         "integration namespace"),
        ("prod", "kubernetes:core/v1:Namespace", lambda r: object.__setattr__(r, "protect", False),
         "must be protected in prod"),
        ("staging", rules.RELEASE, lambda r: r.inputs.update(name=r.inputs["name"] + "-renamed"),
         "has no release test-"),
    ],
    ids=["secret-name", "url-credentials", "token-format", "entrypoint", "store", "namespace", "prod-protect", "missing-release"],
)
def test_each_rule_reports_its_violation(evaluations, stack, type_, change, expected: str) -> None:
    found = violations(mutated(evaluations[stack], type_, change))
    assert found and all(expected in v for v in found[:1]), found


def retyped(ev: Evaluation, type_: str, new_type: str, change=lambda r: None) -> Evaluation:
    """The evaluation with every resource of `type_` registered under `new_type` instead (and changed)."""
    resources = []
    for r in ev.resources:
        if r.type == type_:
            r = copy.deepcopy(r)
            object.__setattr__(r, "type", new_type)
            change(r)
        resources.append(r)
    return Evaluation(ev.stack, resources, ev.outputs, ev.secret_output_names)


def test_a_kind_under_another_api_version_is_refused_and_still_checked(evaluations) -> None:
    """An ExternalSecret registered as v1beta1 once got no violation at all: the rules matched one type."""
    ev = retyped(evaluations["staging"], rules.EXTERNAL_SECRET, "kubernetes:external-secrets.io/v1beta1:ExternalSecret",
                 lambda r: r.inputs["spec"]["secretStoreRef"].update(name="other"))
    found = violations(ev, EnforcementLevel.MANDATORY)
    assert any("not a type this program declares" in v for v in found)
    assert any("is not this stack's store" in v for v in found)


def test_a_helm_chart_instead_of_a_release_is_refused_and_its_env_still_checked(evaluations) -> None:
    ev = retyped(evaluations["staging"], rules.RELEASE, "kubernetes:helm.sh/v4:Chart",
                 lambda r: r.inputs["values"]["env"].append({"name": "DB_PASSWORD", "value": "x"}))
    found = violations(ev, EnforcementLevel.MANDATORY)
    assert any("kubernetes:helm.sh/v4:Chart" in v and "not a type this program declares" in v for v in found)
    assert any("DB_PASSWORD is inline" in v for v in found)


NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"


@pytest.mark.parametrize(
    ("egress", "expected"),
    [
        ({"to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}], "ports": [{"port": 80}]}, "cloud metadata address"),
        ({"to": [{"ipBlock": {"cidr": "168.63.129.16/32"}}], "ports": [{"port": 80}]}, "cloud metadata address"),
        ({"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
          "ports": [{"port": 443}]}, "reaches namespace kube-system beyond DNS"),
        ({"to": [{"ipBlock": {"cidr": "10.0.0.0/16"}}], "ports": [{"port": 10250}]}, "control-plane port"),
    ],
    ids=["imds", "wireserver", "kube-system", "kubelet"],
)
def test_the_pack_refuses_egress_the_config_would_refuse(evaluations, egress: dict, expected: str) -> None:
    def add(r) -> None:
        r.inputs["spec"].setdefault("egress", []).append(egress)
    ev = mutated(evaluations["staging"], NETWORK_POLICY, add)
    assert any(expected in v for v in violations(ev, EnforcementLevel.MANDATORY))


def test_the_pack_refuses_rbac_beyond_the_runners_set() -> None:
    config, secret_keys = stack_config_with(
        "staging", runnerRbac=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])
    ev = evaluate_fixture("staging", config=config, secret_keys=secret_keys)
    assert any(r.type == ROLE for r in ev.resources)
    assert violations(ev, EnforcementLevel.MANDATORY) == []
    widened = mutated(ev, ROLE, lambda r: r.inputs["rules"].append(
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}))
    assert any("beyond the runner's set" in v for v in violations(widened, EnforcementLevel.MANDATORY))
    writes = mutated(ev, ROLE, lambda r: r.inputs["rules"].append(
        {"apiGroups": [""], "resources": ["services"], "verbs": ["create"]}))
    assert any("beyond the runner's set" in v for v in violations(writes, EnforcementLevel.MANDATORY))


def test_a_platform_owned_namespace_is_read_not_declared_and_the_rules_still_hold() -> None:
    """manageNamespace: false -- the program reads the namespace (a read never reaches a policy pack),
    declares everything else in it, and prod's protection and the store's namespace are still checked."""
    config, secret_keys = stack_config_with("prod", manageNamespace=False)
    ev = evaluate_fixture("prod", config=config, secret_keys=secret_keys)
    namespaces = ev.of_type("kubernetes:core/v1:Namespace")
    assert [r.read_id for r in namespaces] == ["integration-tests"]
    assert all(r.inputs["metadata"]["namespace"] == "integration-tests"
               for r in ev.of_type(rules.EXTERNAL_SECRET))
    assert violations(ev) == []
    unprotected = mutated(ev, "kubernetes:external-secrets.io/v1:ClusterSecretStore",
                          lambda r: object.__setattr__(r, "protect", False))
    assert any("must be protected in prod" in v for v in violations(unprotected))
    moved = mutated(ev, rules.EXTERNAL_SECRET, lambda r: r.inputs["metadata"].update(namespace="default"))
    assert any("integration namespace" in v for v in violations(moved))
