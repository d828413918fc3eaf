"""`make drift`'s rules (deploy/drift_checks.py) on declared and live objects as the state and the API
servers give them, and its report (JUnit, summary, findings, exit status); the whole command against
the real engine, cluster, OpenBao and Helm is in tests/e2e/test_local_stack.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from junitparser import JUnitXml

from deploy import drift
from deploy import drift_checks as checks

NS = "urn:pulumi:local::testinfra::ameide:testinfra:IntegrationEnvironment$kubernetes:core/v1:Namespace::namespace"
QUOTA = "urn:pulumi:local::testinfra::x$kubernetes:core/v1:ResourceQuota::quota"
DECLARED_NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
    "name": "integration-tests", "labels": {"pod-security.kubernetes.io/enforce": "restricted", "team": "qa"}}}


def live_namespace(**labels: str) -> dict:
    base = {"kubernetes.io/metadata.name": "integration-tests", "pod-security.kubernetes.io/enforce": "restricted",
            "team": "qa"}
    base.update(labels)
    return {"metadata": {"name": "integration-tests", "labels": {k: v for k, v in base.items() if v},
                         "annotations": {"controller.example/seen": "x"}, "resourceVersion": "12"},
            "status": {"phase": "Active"}}


def test_what_the_api_server_and_controllers_add_is_no_drift() -> None:
    assert checks.kubernetes_object(NS, DECLARED_NS, live_namespace()) == []


@pytest.mark.parametrize(("labels", "path", "what"), [
    ({"by-hand": "yes"}, "metadata.labels.by-hand", "added by hand"),
    ({"pod-security.kubernetes.io/enforce": ""}, "metadata.labels.pod-security.kubernetes.io/enforce", "removed"),
    ({"team": "other"}, "metadata.labels.team", "differs"),
])
def test_a_label_added_removed_or_changed_by_hand_is_drift(labels: dict, path: str, what: str) -> None:
    [finding] = checks.kubernetes_object(NS, DECLARED_NS, live_namespace(**labels))
    assert (finding.urn, finding.path) == (NS, path) and finding.what.startswith(what) and not finding.expected


def test_every_declared_leaf_is_compared_and_a_deleted_object_is_named() -> None:
    declared = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                "spec": {"hard": {"pods": "16", "requests.cpu": "4"}}}
    live = {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "99", "requests.cpu": "4", "secrets": "5"}},
            "status": {"used": {"pods": "3"}}}
    assert [(f.path, f.what) for f in checks.kubernetes_object(QUOTA, declared, live)] == [
        ("spec.hard.pods", "differs from what the stack declares")]
    assert [f.what for f in checks.kubernetes_object(QUOTA, declared, None)] == ["deleted: the object is not in the cluster"]
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "r"}, "automountServiceAccountToken": False}
    assert [f.path for f in checks.kubernetes_object("sa", sa, {"metadata": {"name": "r"}})] == ["automountServiceAccountToken"]


def test_lists_differ_by_length_or_element() -> None:
    assert checks.differing_paths({"a": [{"x": 1}, {"x": 2}]}, {"a": [{"x": 1, "y": 0}, {"x": 3}]}) == ["a[1].x"]
    assert checks.differing_paths({"a": [1, 2]}, {"a": [1]}) == ["a"]


def test_helm_values_added_changed_or_removed_by_hand_are_drift() -> None:
    declared = {"timeoutSeconds": 600, "image": {"tag": "1"}}
    assert checks.helm_values("r", declared, declared, 1) == []
    found = checks.helm_values("r", declared, {"timeoutSeconds": 60, "image": {"tag": "1"}, "extra": True}, 2)
    assert [f.path for f in found] == ["values.extra", "values.timeoutSeconds"]
    assert "revision 2" in found[0].what
    assert [f.what for f in checks.helm_values("r", declared, None, None)] == ["deleted: Helm has no record of the release"]


def test_a_key_written_outside_pulumi_is_drift_and_an_owners_new_version_is_expected() -> None:
    assert checks.key_version("k", "3", 3) == []
    [written] = checks.key_version("k", "3", 4)
    assert written.path == "metadata.version" and "4" in written.what and not written.expected
    deployed = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    [owners] = checks.external_key("vault:secret/a", "secret/a", "team-a", 2, datetime(2026, 12, 7, 11, 0, tzinfo=UTC),
                                   deployed)
    assert owners.expected and "team-a" in owners.what
    assert checks.external_key("vault:secret/a", "secret/a", "team-a", 2, datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
                               deployed) == []
    [gone] = checks.external_key("vault:secret/a", "secret/a", "team-a", None, None, deployed)
    assert not gone.expected and "must write it" in gone.what


def test_policy_text_and_role_parameters() -> None:
    assert checks.policy_text("p", 'path "a" {}\n', 'path "a" {}') == []
    assert [f.path for f in checks.policy_text("p", 'path "a" {}', 'path "b" {}')] == ["policy"]
    declared = {"backend": "kubernetes", "roleName": "eso", "tokenTtl": 900, "tokenPolicies": ["a", "b"],
                "boundServiceAccountNames": ["eso"]}
    live = {"token_ttl": 900, "token_policies": ["b", "a"], "bound_service_account_names": ["eso"], "token_type": "default"}
    assert checks.role_parameters("r", declared, live) == []
    assert [f.path for f in checks.role_parameters("r", declared, {**live, "token_ttl": 600})] == ["tokenTtl"]


def test_the_engine_and_our_checks_seeing_one_path_give_one_finding() -> None:
    ours = checks.kubernetes_object(NS, DECLARED_NS, live_namespace(**{"pod-security.kubernetes.io/enforce": ""}))
    engine = checks.engine_steps([("update", NS, ['metadata.labels["pod-security.kubernetes.io/enforce"]']),
                                  ("delete", QUOTA, []), ("same", "x", [])])
    merged = checks.merged([*ours, *engine])
    assert [(f.urn, f.path, f.what) for f in merged] == [
        (NS, "metadata.labels.pod-security.kubernetes.io/enforce", "removed from the object"),
        (QUOTA, "", "deleted (the engine's refresh)")]


def test_the_report_has_a_case_per_resource_a_failure_per_drifted_one_and_exit_6(tmp_path: Path) -> None:
    resources = [{"urn": NS}, {"urn": QUOTA}]
    findings = [checks.Finding(QUOTA, "spec.hard.pods", "differs"),
                checks.Finding("vault:secret/a", "metadata.version", "owner's", expected=True)]
    said: list[str] = []
    assert drift.report("local", resources, findings, tmp_path, said.append) == drift.EXIT_DRIFT
    suite = next(iter(JUnitXml.fromfile(str(tmp_path / "local.xml"))))
    assert (suite.tests, suite.failures) == (3, 1)
    assert json.loads((tmp_path / "local.json").read_text())["findings"][1]["expected"] is True
    assert "1 drifted, 1 expected" in (tmp_path / "local.md").read_text()
    assert drift.report("local", resources, findings[1:], tmp_path, said.append) == 0


def test_a_stack_without_its_file_or_without_a_token_is_one_message(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert drift.main(["--stack", "nosuchstack"]) == 2
    assert "Pulumi.nosuchstack.yaml" in capsys.readouterr().err
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    assert drift.main(["--stack", "local"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("drift: VAULT_TOKEN is not set") and "Traceback" not in err
