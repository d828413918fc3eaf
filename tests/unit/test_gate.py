"""The readiness gate and what a run records: against a Vault that answers metadata as KV v2 does
and an ESO that syncs (or refuses) when its force-sync annotation changes. Runs end in their reason
code before any Job starts; a pass after an infrastructure retry is flaky; no value is ever recorded."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from runs.provenance import MANIFEST_NAME, RunManifest, SyncState, timestamp
from runs.replay import pinned_reference
from runs.runner import run_all
from tests.unit.fakes import (
    CANARY,
    GRAPH,
    PASSING,
    SYNCED_AFTER,
    WRITTEN,
    FakeESO,
    FakeVault,
    gated_runner,
    metadata,
    pod,
)


def both_keys(**graph: Any) -> dict[str, dict[str, Any] | None]:
    return {"secret/integration/x/graph": metadata(3, **graph), "secret/integration/x/shared": metadata(7)}


def test_a_secret_synced_after_the_current_versions_passes_the_gate_without_a_sync(tmp_path: Path) -> None:
    cluster = FakeESO("never", SYNCED_AFTER, results={"graph": "Complete"}, logs={"graph": PASSING})
    outcome = run_all(gated_runner(cluster, FakeVault(both_keys()), tmp_path), {"graph": GRAPH}, rerun=False)[0]
    assert outcome.passed and cluster.annotations == []
    assert outcome.record is not None and outcome.record.gate["reason"] == "READY"


def test_a_sync_older_than_the_current_version_is_forced_and_waited_for(tmp_path: Path) -> None:
    # Same second as the write: ESO stamps refreshTime before it reads Vault, so that sync may be older.
    cluster = FakeESO("syncs", "2026-12-04T10:00:00Z", results={"graph": "Complete"}, logs={"graph": PASSING})
    outcome = run_all(gated_runner(cluster, FakeVault(both_keys()), tmp_path), {"graph": GRAPH}, rerun=False)[0]
    assert outcome.passed and len(cluster.annotations) == 1 and "force-sync" in cluster.annotations[0]
    record = outcome.record
    assert record is not None and record.gate["forcedSync"] is True
    assert [(k["path"], k["version"], k["owner"]) for k in record.keys] == [
        ("secret/integration/x/graph", 3, "team-graph"), ("secret/integration/x/shared", 7, "platform-auth")]
    assert record.external_secret == {"name": "graph-int-tests-secrets", "syncedResourceVersion": "1-2",
                                      "refreshTime": "2026-12-04T10:00:05Z"}


@pytest.mark.parametrize(
    ("keys", "eso", "role", "reason", "named"),
    [
        ({"secret/integration/x/graph": None, "secret/integration/x/shared": metadata(7)}, "syncs", True,
         "SECRET_MISSING", "secret/integration/x/graph does not exist (owner: team-graph)"),
        (both_keys(v3={"destroyed": True}), "syncs", True, "SECRET_MISSING", "current version 3 is destroyed"),
        (both_keys(), "syncs", False, "VAULT_AUTH_DENIED", "Vault has no role integration-tests-x-eso"),
        (both_keys(), "denied", True, "VAULT_AUTH_DENIED", "ESO's login or read was refused"),
        (both_keys(), "missing", True, "SECRET_MISSING", "owners: platform-auth, team-graph"),
        (both_keys(), "never", True, "SECRET_NOT_SYNCED", "did not sync the current versions within 30 s"),
    ],
    ids=["key-absent", "version-destroyed", "role-revoked", "login-refused", "property-missing", "no-sync"],
)
def test_a_secret_that_cannot_be_had_ends_the_run_in_its_reason_before_any_job(
        tmp_path: Path, keys: dict[str, Any], eso: str, role: bool, reason: str, named: str) -> None:
    cluster = FakeESO(eso, "2026-12-04T09:00:00Z", results={"graph": "Complete"}, logs={"graph": PASSING})
    outcome = run_all(gated_runner(cluster, FakeVault(keys, role), tmp_path), {"graph": GRAPH}, rerun=False)[0]
    assert (outcome.verdict.cause, outcome.verdict.reason) == ("secret", reason)
    assert named in outcome.verdict.detail and "graph" in outcome.verdict.detail
    assert cluster.jobs == {}  # nothing started
    case = ET.parse(tmp_path / "graph.xml").getroot().find(".//testcase/error")
    assert case is not None and case.get("type") == reason and named in (case.get("message") or "")


def test_an_infrastructure_failure_is_retried_and_a_pass_after_it_is_flaky(tmp_path: Path) -> None:
    evicted = pod("p1", phase="Failed", state={"terminated": {"reason": "Error", "exitCode": 137}},
                  conditions=[{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}])
    cluster = FakeESO("never", SYNCED_AFTER, results={"graph": ["Failed", "Complete"]},
                      logs={"graph": [None, PASSING]}, pod_states={"graph": [evicted, pod("p2")]})
    outcome = run_all(gated_runner(cluster, FakeVault(both_keys()), tmp_path), {"graph": GRAPH}, rerun=False)[0]
    assert outcome.passed and outcome.flaky and len(cluster.jobs) == 2
    root = ET.parse(tmp_path / "graph.xml").getroot()
    flaky = root.findall(".//testcase/flakyFailure")
    assert [f.get("type") for f in flaky] == ["EVICTED"]
    assert root.find(".//failure") is None and root.find(".//error") is None  # a pass, marked flaky
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["testinfra.flaky"] == "true" and props["testinfra.attempts"] == "2"


def test_retries_are_bounded_and_a_suite_failure_is_never_retried(tmp_path: Path) -> None:
    pulling = pod("p", phase="Pending", state={"waiting": {"reason": "ImagePullBackOff"}})
    cluster = FakeESO("never", SYNCED_AFTER, results={"graph": "Running", "threads": "Failed"},
                      logs={"graph": None, "threads": PASSING.replace('failures="0"', 'failures="1"')},
                      pod_states={"graph": [pulling]})
    threads = GRAPH.model_copy(update={"cron_job": "test-threads"})
    runner = gated_runner(cluster, FakeVault(both_keys()), tmp_path, infra_retries=2, stuck_seconds=10)
    outcomes = {o.service: o for o in run_all(runner, {"graph": GRAPH, "threads": threads}, rerun=False)}
    graph = outcomes["graph"]
    assert (graph.verdict.cause, graph.verdict.reason) == ("infrastructure", "IMAGE_PULL")
    assert cluster.attempts["graph"] == 3 and len(cluster.deleted) == 3  # each stuck Job stopped, not waited out
    root = ET.parse(tmp_path / "graph.xml").getroot()
    assert [f.get("type") for f in root.findall(".//rerunFailure")] == ["IMAGE_PULL", "IMAGE_PULL"]
    assert root.find(".//testcase/error").get("type") == "IMAGE_PULL"  # type: ignore[union-attr]
    assert cluster.attempts["threads"] == 1 and outcomes["threads"].verdict.reason == "TESTS_FAILED"


def test_the_run_records_versions_image_digest_and_chart_in_junit_and_the_manifest_never_a_value(
        tmp_path: Path) -> None:
    cluster = FakeESO("never", SYNCED_AFTER, results={"graph": "Complete"}, logs={"graph": PASSING})
    job_template = cluster.get_cron_job("ns", "test-graph")
    assert job_template is not None
    runner = gated_runner(cluster, FakeVault(both_keys()), tmp_path)
    outcome = run_all(runner, {"graph": GRAPH}, rerun=False)[0]
    assert outcome.record is not None
    manifest = RunManifest("run-9", "ci", "integration-tests", "t0", "t1", 0, {"graph": outcome.record})
    written = manifest.write(tmp_path, tmp_path / "runs")
    assert written == [tmp_path / MANIFEST_NAME, tmp_path / "runs" / "run-9" / MANIFEST_NAME]
    recorded = json.loads(written[0].read_text())["services"]["graph"]
    assert recorded["imageId"] == "registry.test/suite@sha256:" + "a" * 64
    assert [k["version"] for k in recorded["keys"]] == [3, 7]
    props = {p.get("name"): p.get("value") for p in ET.parse(tmp_path / "graph.xml").getroot().iter("property")}
    assert props["testinfra.vault.secret/integration/x/graph.version"] == "3"
    assert props["testinfra.vault.secret/integration/x/shared.version"] == "7"
    assert props["testinfra.externalSecret.refreshTime"] == SYNCED_AFTER
    assert props["testinfra.image.id"].endswith("a" * 64) and props["testinfra.run.id"] == "run-9"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert CANARY[:8] not in path.read_text(errors="replace"), path


def test_with_esos_clock_2_s_ahead_a_sync_from_before_the_write_is_not_taken_for_one_after_it(tmp_path: Path) -> None:
    """ESO synced at 09:59:59.6 by Vault's clock, before the version was written at 10:00:00.12; its own
    clock, 2 s ahead, stamped 10:00:01. Compared as clocks, that sync looks later than the write."""
    skewed = "2026-12-04T10:00:01Z"
    cluster = FakeESO("never", skewed, results={"graph": "Complete"}, logs={"graph": PASSING})
    outcome = run_all(gated_runner(cluster, FakeVault(both_keys()), tmp_path), {"graph": GRAPH}, rerun=False)[0]
    assert outcome.verdict.reason == "SECRET_NOT_SYNCED" and len(cluster.annotations) == 1
    assert cluster.jobs == {}  # no suite ran on a Secret that may hold the old version

    syncing = FakeESO("syncs", skewed, results={"graph": "Complete"}, logs={"graph": PASSING})
    outcome = run_all(gated_runner(syncing, FakeVault(both_keys()), tmp_path), {"graph": GRAPH}, rerun=False)[0]
    assert outcome.passed and outcome.record is not None and outcome.record.gate["forcedSync"] is True
    assert outcome.record.external_secret["syncedResourceVersion"] == "1-2"  # the sync after the request


def test_a_forced_sync_counts_by_its_resource_version_not_by_any_clock(tmp_path: Path) -> None:
    """ESO's clock far behind Vault's: the sync the request caused still proves itself."""
    cluster = FakeESO("syncs", "2026-12-04T09:00:00Z", results={"graph": "Complete"}, logs={"graph": PASSING})
    cluster.after_sync = "2026-12-04T09:00:05Z"  # still an hour before the write, by ESO's clock
    outcome = run_all(gated_runner(cluster, FakeVault(both_keys()), tmp_path), {"graph": GRAPH}, rerun=False)[0]
    assert outcome.passed and len(cluster.annotations) == 1


def test_a_refresh_time_to_the_second_is_later_than_a_version_only_when_strictly_after() -> None:
    from runs.provenance import KeyVersion

    key = [KeyVersion("secret/a/b", 2, WRITTEN, "o")]
    sync = SyncState("es", True, "1-x", "2026-12-04T10:00:00Z", "")
    assert not sync.synced_after(key)
    assert SyncState("es", True, "1-x", "2026-12-04T10:00:01Z", "").synced_after(key)
    assert not SyncState("es", False, "1-x", "2026-12-04T10:00:01Z", "").synced_after(key)
    assert not SyncState("es", True, "1-x", "2026-12-04T10:00:05Z", "").synced_after(key, margin=5)
    assert SyncState("es", True, "1-x", "2026-12-04T10:00:06Z", "").synced_after(key, margin=5)
    assert timestamp("not a time") is None


@pytest.mark.parametrize(
    ("image", "image_id", "pinned"),
    [("registry.test/suite:2026.12", "registry.test/suite@sha256:" + "b" * 64, "registry.test/suite@sha256:" + "b" * 64),
     ("localhost:5000/suite:1", "sha256:" + "c" * 64, "localhost:5000/suite@sha256:" + "c" * 64),
     ("registry.test/suite@sha256:" + "d" * 64, "", "registry.test/suite@sha256:" + "d" * 64),
     ("registry.test/suite:1", "", None)],
    ids=["repo-digest", "port-not-a-tag", "already-pinned", "nothing-recorded"])
def test_a_replay_pins_the_image_by_the_digest_the_pod_ran(image: str, image_id: str, pinned: str | None) -> None:
    assert pinned_reference(image, image_id) == pinned


def test_an_install_time_job_is_collected_with_the_versions_written_before_its_pod_started(tmp_path: Path) -> None:
    """`make up` ran it (no gate): a key's version is the newest written before the pod started."""
    later = metadata(3, created="2026-12-04T12:00:00Z")  # v3 came after the pod started
    later["versions"]["2"]["created_time"] = "2026-12-04T10:30:00Z"
    cluster = FakeESO("never", "2026-12-04T10:31:00Z", results={"graph": "Complete"}, logs={"graph": PASSING})
    cluster.jobs["test-graph-abc"] = {"metadata": {"name": "test-graph-abc", "creationTimestamp": "2026-12-04T11:00:00Z",
                                                   "labels": {"ameide.io/service": "graph",
                                                              "helm.sh/chart": "test-job-runner-1.1.0"}},
                                      "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    cluster.attempt_of["test-graph-abc"] = 1
    started = pod("p")
    started["status"]["startTime"] = "2026-12-04T11:00:02Z"
    cluster.pod_states["graph"] = [started]
    vault = FakeVault({"secret/integration/x/graph": later, "secret/integration/x/shared": metadata(7)})
    outcome = run_all(gated_runner(cluster, vault, tmp_path), {"graph": GRAPH}, rerun=False, install_jobs=True)[0]
    assert outcome.passed and outcome.job == "test-graph-abc" and cluster.attempts == {}  # nothing started
    assert outcome.record is not None and outcome.record.chart_version == "1.1.0"
    assert [(k["path"].rpartition("/")[2], k["version"]) for k in outcome.record.keys] == [("graph", 2), ("shared", 7)]
    assert outcome.record.gate["reason"] == "NOT_GATED"
