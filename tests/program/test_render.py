"""`make render`: the offline render a new user runs first, and what it writes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from config.naming import RELEASE_TYPE
from offline import manifests_yaml, render
from tests.conftest import (
    CANARY,
    PROJECT_DIR,
    STACKS,
    canary_config,
    fixture_project,
    fixture_settings,
    overlay_fixture_files,
    strict_schema,
)

ESO_KINDS = {"ExternalSecret", "SecretStore", "ClusterSecretStore"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("render")
    return {stack: render.render(stack, out, fixture_project()) for stack in STACKS}


def manifests(folder: Path) -> list[dict]:
    docs = []
    for path in sorted((folder / "manifests").glob("*.yaml")):
        docs += manifests_yaml.load_all(path.read_text())
    return docs


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_json_is_exactly_the_stack_outputs(rendered, evaluations, outputs_schema, stack: str) -> None:
    written = json.loads((rendered[stack] / "outputs.json").read_text())
    assert written == evaluations[stack].outputs
    jsonschema.validate(written, strict_schema(outputs_schema))
    assert set(written["services"]) == {svc.name for svc in fixture_settings(stack).services}


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_object_passes_strict_validation(rendered, stack: str) -> None:
    docs = manifests(rendered[stack])
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "ServiceAccount", "Job",
            "CronJob", "ExternalSecret"} <= kinds
    version = "1.35.0"  # the stacks' kubernetesVersion
    for doc in docs:
        if doc["kind"] in ESO_KINDS:
            continue  # CRDs: validated against the ESO schemas in test_external_secrets.py
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("stack", STACKS)
def test_each_release_is_rendered_by_helm_with_the_program_values(rendered, evaluations, stack: str) -> None:
    for release in evaluations[stack].of_type(RELEASE_TYPE):
        docs = manifests_yaml.load_all((rendered[stack] / "manifests" / f"release-{release.inputs['name']}.yaml").read_text())
        jobs = [d for d in docs if d and d["kind"] == "Job"]
        expected = evaluations[stack].outputs["services"][release.name]["job"]
        assert [j["metadata"]["name"] for j in jobs] == ([expected] if expected else [])


def test_plan_lists_type_name_parent_dependencies_and_protect(rendered) -> None:
    plan = (rendered["prod"] / "plan.txt").read_text()
    assert "+ kubernetes:core/v1:Namespace namespace  [protect]" in plan
    graph_release = next(line for line in plan.splitlines() if "kubernetes:helm.sh/v3:Release graph" in line)
    assert "ameide-core-proto" in graph_release and "graph" in graph_release.split("dependsOn=")[1]


def test_vault_folder_has_policy_and_keys_without_values(rendered) -> None:
    vault = rendered["staging"] / "vault"
    policy = (vault / "policy-integration-tests-staging-read.hcl").read_text()
    assert 'path "secret/data/integration/staging/*"' in policy  # its folder: stable across catalog changes
    keys = json.loads((vault / "keys.json").read_text())
    token = next(k for k in keys if k["name"] == "integration-test-bearer-token")
    assert token == {"name": "integration-test-bearer-token", "mount": "secret",
                     "path": "integration/staging/integration-test-bearer-token", "properties": ["token"],
                     "source": "external", "owner": "platform-auth"}


def test_canaries_never_reach_the_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, secret_keys = canary_config("staging")
    monkeypatch.setattr(render, "stack_config", lambda stack, **_: (config, secret_keys))
    folder = render.render("staging", tmp_path, fixture_project())
    assert (folder / "vault" / "keys.json").exists()
    for path in folder.rglob("*"):
        if path.is_file():
            assert CANARY not in path.read_text(), path


def copy_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns(".venv", ".tools", "build", ".git", "tests"))
    return overlay_fixture_files(project)


def run_render(project: Path, stack: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offline.render", "--stack", stack, "--out", str(out), "--project-dir", str(project)],
        capture_output=True, text=True, cwd=PROJECT_DIR,
    )


def test_broken_stack_config_exits_nonzero_with_the_message_and_writes_nothing(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    with (project / "Pulumi.staging.yaml").open("a") as fh:
        fh.write("  testinfra:namespase: x\n")
    proc = run_render(project, "staging", tmp_path / "out")
    assert proc.returncode == 2
    assert "Pulumi.staging.yaml" in proc.stderr and "config.testinfra:namespase: unknown field" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "staging").exists()


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (("runner: jest", "runner: jest\n    flavour: x"), "services.transformation.flavour: unknown field"),
        (("timeoutSeconds: 100", "timeoutSeconds: fast"), "services.graph.timeoutSeconds"),
        (("    runner: pytest\n    image: ghcr.io/ameideio/inference-", "    image: ghcr.io/ameideio/inference-"),
         "services.inference.runner: missing: add it"),
    ],
    ids=["unknown-field", "wrong-type", "missing-field"],
)
def test_broken_catalog_exits_nonzero_naming_file_and_field(tmp_path: Path, broken, expected: str) -> None:
    project = copy_project(tmp_path)
    text = (project / "catalog.yaml").read_text()
    assert broken[0] in text
    (project / "catalog.yaml").write_text(text.replace(broken[0], broken[1], 1))
    out = tmp_path / "out"
    proc = run_render(project, "staging", out)
    assert proc.returncode == 2
    assert "catalog.yaml" in proc.stderr and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_render_of_an_unknown_stack(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "offline.render", "--stack", "nosuch", "--out", str(tmp_path)],
        capture_output=True, text=True, cwd=PROJECT_DIR,
    )
    assert proc.returncode == 2
    assert "Pulumi.nosuch.yaml: no such stack file" in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stack", STACKS)
def test_two_renders_are_identical_byte_for_byte(rendered, tmp_path: Path, stack: str) -> None:
    first = rendered[stack]  # the module's render, made earlier in another folder
    second = render.render(stack, tmp_path / "again", fixture_project())
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_plan_marks_the_vault_keys_a_stack_writes_as_retained(rendered) -> None:
    plan = (rendered["local"] / "plan.txt").read_text().splitlines()
    written = [line for line in plan if "vault:kv/secretV2:SecretV2" in line]
    assert written and all("retainOnDelete" in line for line in written)
    assert not [line for line in plan if "retainOnDelete" in line and "SecretV2" not in line]


def test_a_render_prints_one_summary_line_and_a_failed_one_removes_the_earlier_render(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    out = tmp_path / "out"
    proc = run_render(project, "staging", out)
    assert proc.returncode == 0 and (out / "staging" / "plan.txt").exists(), proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and " resources; " in lines[0]
    assert "integration/staging/integration-test-bearer-token (platform-auth)" in lines[0]
    with (project / "Pulumi.staging.yaml").open("a") as fh:
        fh.write("  testinfra:namespase: x\n")
    proc = run_render(project, "staging", out)
    assert proc.returncode == 2 and "removed the earlier render" in proc.stderr
    assert not (out / "staging").exists()


def test_a_render_validates_the_settings_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """render, its harness and the program it runs all ask for the settings; they are resolved once."""
    from config import loading

    resolved: list[str] = []
    original = loading.resolve
    monkeypatch.setattr(loading, "resolve", lambda *a, **k: resolved.append(k["environment"]) or original(*a, **k))
    loading._load_settings.cache_clear()
    render.render("staging", tmp_path, fixture_project())
    assert resolved == ["staging"]
