"""`make rotate`: the drill's order -- new version, consumers run on it, overlap window, old version
destroyed -- and that it keeps the old version when anything still used it (fakes for the Pulumi CLI,
Vault's metadata and ESO; tests/e2e runs it for real)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from config.vault_keys import VaultKey
from runs.rotate import Drill, DrillProblem, owner_procedure, random_password_urn
from tests.unit.fakes import GRAPH, PASSING, FakeESO, FakeVault, gated_runner, metadata

KEY = VaultKey("shared", "secret", "integration/x/shared", ("token",), "generated", "platform-auth")
URN = ("urn:pulumi:x::testinfra::testinfra:index:VaultIntegrationSecrets$random:index/randomPassword:RandomPassword"
       "::shared-generated")


class RotatingVault(FakeVault):
    def __init__(self) -> None:
        super().__init__({"secret/integration/x/graph": metadata(3),
                          "secret/integration/x/shared": metadata(1, created="2026-12-04T09:00:00Z")})
        self.destroyed: list[tuple[str, list[int]]] = []

    def destroy_versions(self, mount: str, path: str, versions: list[int]) -> None:
        self.destroyed.append((f"{mount}/{path}", versions))


def drill(tmp_path: Path, vault: RotatingVault, *, sleep: Any = None) -> tuple[Drill, list[list[str]], list[str]]:
    calls: list[list[str]] = []
    said: list[str] = []
    # ESO syncs on request, at a time after the new version is written.
    cluster = FakeESO("syncs", "2026-12-04T09:00:00Z", results={"graph": "Complete"}, logs={"graph": PASSING})

    def pulumi(args: list[str]) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        if args[0] == "stack":
            return subprocess.CompletedProcess(args, 0, json.dumps(
                {"deployment": {"resources": [{"type": "random:index/randomPassword:RandomPassword", "urn": URN}]}}), "")
        vault.keys["secret/integration/x/shared"] = metadata(2, created="2026-12-04T10:00:00.5Z")
        return subprocess.CompletedProcess(args, 0, "", "")

    runner = gated_runner(cluster, vault, tmp_path / "junit")
    (tmp_path / "junit").mkdir()
    assert runner.gate is not None
    return Drill("x", KEY, {"graph": GRAPH}, vault, runner.gate, runner, tmp_path / "runs", 5, pulumi,
                 say=said.append, sleep=sleep or (lambda _: None)), calls, said


def test_the_old_version_is_destroyed_only_after_every_consumer_ran_on_the_new_one(tmp_path: Path) -> None:
    vault = RotatingVault()
    the_drill, calls, said = drill(tmp_path, vault)
    assert the_drill.run() == 0
    assert calls[1] == ["up", "--yes", "--skip-preview", "--replace", URN, "--target", URN, "--target-dependents"]
    assert any(line.startswith("rotate: graph") and "used version 2" in line for line in said), said
    assert vault.destroyed == [("secret/integration/x/shared", [1])]
    recorded = json.loads(next((tmp_path / "runs").glob("*/run-manifest.json")).read_text())
    assert [k["version"] for k in recorded["services"]["graph"]["keys"]] == [3, 2]


def test_a_run_that_used_the_old_version_after_the_window_fails_the_drill_and_keeps_it(tmp_path: Path) -> None:
    vault = RotatingVault()

    def a_late_run_meanwhile(_: float) -> None:
        late = tmp_path / "runs" / "ci-4711" / "run-manifest.json"
        late.parent.mkdir(parents=True)
        late.write_text(json.dumps({"runId": "ci-4711", "startedAt": "2999-01-01T00:00:00Z", "services": {
            "threads": {"keys": [{"path": "secret/integration/x/shared", "version": 1}]}}}))

    the_drill, _, said = drill(tmp_path, vault, sleep=a_late_run_meanwhile)
    assert the_drill.run() == 1
    assert vault.destroyed == []
    assert "run ci-4711 (threads) used version 1 after the window" in said[-1] and "version 1 is kept" in said[-1]


def test_an_external_key_is_its_owners_to_rotate_and_a_key_not_in_the_state_is_named() -> None:
    external = VaultKey("token", "secret", "integration/x/token", ("token",), "external", "platform-auth")
    text = owner_procedure(external, ["threads", "inference"], "staging")
    assert "platform-auth owns it" in text and "vault kv patch secret/integration/x/token" in text
    assert "make run STACK=staging SERVICE=<each of threads, inference>" in text
    with pytest.raises(DrillProblem, match="no generated value for shared"):
        random_password_urn({"deployment": {"resources": []}}, KEY)
