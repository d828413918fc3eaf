"""tools/localenv/rehearse.py: a rehearsal changes only a stack file's connection facts, in a copy, and runs
with an environment that carries nothing of the caller's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_DIR
from tools.localenv import rehearse
from tools.localenv.pki import make_pki

CONNECTION_FACTS = {"kubeContext", "vaultAddress", "vaultClusterAddress", "vaultCaBundle", "suiteImage"}
SUITE = {"repository": "testinfra.invalid/integration-suite", "digest": "sha256:" + "cd" * 32}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pki") / "pki"
    make_pki(path)
    return path


@pytest.mark.parametrize("stack", rehearse.REHEARSED)
def test_only_the_connection_facts_of_the_stack_file_change(stack: str, tmp_path: Path, pki: Path) -> None:
    shutil.copy(PROJECT_DIR / f"Pulumi.{stack}.yaml", tmp_path / f"Pulumi.{stack}.yaml")
    said = rehearse.swapped_stack_file(stack, tmp_path, pki, SUITE)
    before = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())
    after = yaml.safe_load((tmp_path / f"Pulumi.{stack}.yaml").read_text())
    changed = {k for k in set(before["config"]) | set(after["config"])
               if before["config"].get(k) != after["config"].get(k)}
    assert changed <= {f"testinfra:{k}" for k in CONNECTION_FACTS}
    assert {line.split(":", 1)[0] for line in said} == CONNECTION_FACTS  # every swap is printed
    assert after["config"]["testinfra:vaultAddress"].startswith("https://127.0.0.1:")
    assert {k: v for k, v in after.items() if k != "config"} == {k: v for k, v in before.items() if k != "config"}


def test_the_rehearsal_environment_carries_nothing_of_the_callers(tmp_path: Path, pki: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"PULUMI_ACCESS_TOKEN": "pul-caller", "VAULT_TOKEN": "hvs.caller", "AWS_PROFILE": "prod",
                        "PULUMI_BACKEND_URL": "https://api.pulumi.com", "KUBECONFIG": "/home/me/.kube/config"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(rehearse, "REHEARSAL", tmp_path)
    vault = rehearse.Vault("https://127.0.0.1:8210", pki / "ca.crt")
    vault.token = "rehearsal-token"
    env = rehearse.rehearsal_env("staging", {"PULUMI_BACKEND_URL": "s3://pulumi-state?endpoint=x"}, vault, pki)
    assert "PULUMI_ACCESS_TOKEN" not in env and "AWS_PROFILE" not in env
    assert env["VAULT_TOKEN"] == "rehearsal-token" and env["PULUMI_BACKEND_URL"].startswith("s3://")
    assert env["KUBECONFIG"] == str(tmp_path / "admin.kubeconfig") and env["HOME"] == str(tmp_path / "home")
    assert "caller" not in " ".join(env.values())
