"""`make recover`: what a killed `up` left in a checkpoint, and the order the recovery settles it in --
lock, pending creates of releases adopted only when Helm installed them, the rest refreshed, the state
read back (fakes for the Pulumi CLI and Helm's record; tests/e2e kills a 100-service `up` for real)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from config.naming import EXTERNAL_SECRET_TYPE, RELEASE_TYPE
from deploy.recover import RecoveryProblem, plan, recover

ENV = "urn:pulumi:local::testinfra::ameide:testinfra:IntegrationEnvironment::integration-tests"
PROVIDER = ("urn:pulumi:local::testinfra::ameide:testinfra:IntegrationEnvironment$pulumi:providers:kubernetes"
            "::kubernetes::0c4e")


def pending(kind: str, type_: str, name: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": kind, "resource": {
        "urn": f"urn:pulumi:local::testinfra::ameide:testinfra:IntegrationEnvironment${type_}::{name}",
        "type": type_, "inputs": inputs or {}, "parent": ENV, "provider": PROVIDER}}


def release(name: str) -> dict[str, Any]:
    return pending("creating", RELEASE_TYPE, name, {"name": f"test-{name}", "namespace": "integration-tests"})


KILLED = {"resources": [{"urn": ENV}], "pending_operations": [
    release("graph"), release("threads"),
    pending("creating", EXTERNAL_SECRET_TYPE, "svc-1", {"metadata": {"name": "svc-1-secrets"}}),
    pending("updating", RELEASE_TYPE, "platform"),
]}


class HelmRecord:
    """Release name -> the status of its newest revision, as deploy.verify reads Helm's record."""

    def __init__(self, releases: dict[str, str]) -> None:
        self.releases = releases

    def helm_releases(self, namespace: str) -> dict[str, str]:
        assert namespace == "integration-tests"
        return self.releases


class FakePulumi:
    """Answers `stack export` from the states it is given in order; records every command."""

    def __init__(self, *states: dict[str, Any], fail: str = "") -> None:
        self.states = list(states)
        self.calls: list[list[str]] = []
        self.imported: dict[str, Any] = {}
        self.fail = fail

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        if args[0] == self.fail:
            return subprocess.CompletedProcess(list(args), 255, "", "error: the backend refused\n")
        if args[0] == "import":
            self.imported = json.loads(Path(args[args.index("--file") + 1]).read_text())
        out = json.dumps({"deployment": self.states.pop(0)}) if args[:2] == ["stack", "export"] else ""
        return subprocess.CompletedProcess(list(args), 0, out, "")


def test_an_installed_release_is_adopted_one_never_installed_is_left_to_be_created() -> None:
    recovery = plan(KILLED, HelmRecord({"test-graph": "deployed"}))
    assert [(a.create.name, a.id) for a in recovery.adopt] == [("graph", "integration-tests/test-graph")]
    assert [c.name for c in recovery.create_again] == ["threads", "svc-1"]
    assert recovery.other_pending == 1 and not recovery.blocked


def test_a_failed_release_is_adopted_and_an_install_cut_off_blocks_with_the_command_that_clears_it() -> None:
    assert plan(KILLED, HelmRecord({"test-graph": "failed"})).adopt[0].status == "failed"
    recovery = plan(KILLED, HelmRecord({"test-threads": "pending-install"}))
    assert recovery.blocked == ["release test-threads in integration-tests is `pending-install` in Helm's record "
                                "(its install was cut off with the run): `helm uninstall test-threads -n "
                                "integration-tests`, then make recover again"]


def test_the_import_file_puts_each_release_under_its_parent_and_provider_urn() -> None:
    spec = plan(KILLED, HelmRecord({"test-graph": "deployed", "test-threads": "deployed"})).import_file()
    table = spec["nameTable"]
    assert sorted(table.values()) == sorted([ENV, PROVIDER.rsplit("::", 1)[0]])
    assert [(r["name"], r["id"], table[r["parent"]], table[r["provider"]]) for r in spec["resources"]] == [
        ("graph", "integration-tests/test-graph", ENV, PROVIDER.rsplit("::", 1)[0]),
        ("threads", "integration-tests/test-threads", ENV, PROVIDER.rsplit("::", 1)[0])]


def test_recovery_cancels_refreshes_then_adopts_and_checks_nothing_is_left_pending() -> None:
    pulumi = FakePulumi(KILLED, {"resources": [{"urn": ENV}]})
    said: list[str] = []
    assert recover("local", pulumi, HelmRecord({"test-graph": "deployed"}), said.append) == 0
    assert [c[0] for c in pulumi.calls] == ["cancel", "stack", "refresh", "import", "stack"]
    assert "--clear-pending-creates" in pulumi.calls[2] and "--protect=false" in pulumi.calls[3]
    assert [r["name"] for r in pulumi.imported["resources"]] == ["graph"]
    assert said[-1].startswith("settled: 1 update/delete(s) read back, 1 release(s) adopted, 2 create(s) left")


def test_a_release_cut_off_mid_install_changes_nothing_but_the_lock() -> None:
    pulumi = FakePulumi(KILLED)
    said: list[str] = []
    assert recover("local", pulumi, HelmRecord({"test-graph": "pending-install"}), said.append) == 1
    assert [c[0] for c in pulumi.calls] == ["cancel", "stack"]
    assert said[-1].startswith("needs a hand first: release test-graph")


def test_a_state_with_nothing_in_flight_is_left_alone() -> None:
    pulumi = FakePulumi({"resources": [{"urn": ENV}]})
    assert recover("local", pulumi, HelmRecord({}), lambda _: None) == 0
    assert [c[0] for c in pulumi.calls] == ["cancel", "stack"]


def test_a_refresh_that_fails_is_one_message_naming_the_step() -> None:
    with pytest.raises(RecoveryProblem, match=r"settling the pending operations \(`pulumi refresh`\) failed: "
                                              r"error: the backend refused"):
        recover("local", FakePulumi(KILLED, fail="refresh"), HelmRecord({}), lambda _: None)


def test_operations_still_pending_after_the_refresh_are_reported_not_hidden() -> None:
    with pytest.raises(RecoveryProblem, match="1 operation.s. still pending"):
        recover("local", FakePulumi(KILLED, {"pending_operations": [release("graph")]}), HelmRecord({}),
                lambda _: None)
