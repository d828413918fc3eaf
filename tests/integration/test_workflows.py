"""The CI workflows are valid GitHub workflows and pass zizmor's security audit, offline."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_DIR

WORKFLOWS = sorted((PROJECT_DIR / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not installed: run `make install`")
    return found


def check_schema(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
                          capture_output=True, text=True)


def audit(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("zizmor"), "--offline", "--no-progress", "--persona", "auditor", *map(str, paths)],
                          capture_output=True, text=True)


def test_there_are_preview_and_deploy_workflows() -> None:
    assert {p.name for p in WORKFLOWS} == {"preview.yml", "deploy.yml"}
    preview = (PROJECT_DIR / ".github/workflows/preview.yml").read_text()
    assert "stack: [staging, prod]" in preview and "comment-on-pr: true" in preview
    assert "policyPacks: policy" in preview and "run: make test" in preview and "make -s diff" in preview


def jobs(workflow: str) -> dict[str, dict]:
    return yaml.safe_load((PROJECT_DIR / ".github/workflows" / workflow).read_text())["jobs"]


def test_pull_requests_get_only_read_only_credentials_from_per_stack_environments() -> None:
    for name, job in jobs("preview.yml").items():
        text = yaml.safe_dump(job)
        secrets = set(re.findall(r"secrets\.([A-Z_]+)", text))
        if not secrets:
            continue
        assert job.get("environment") == "preview-${{ matrix.stack }}", name
        assert secrets <= {"VAULT_SUBKEYS_TOKEN", "PULUMI_READ_TOKEN", "PULUMI_BACKEND_URL",
                           "PULUMI_CONFIG_PASSPHRASE"}, secrets


def test_secrets_reach_pull_request_code_only_through_a_reviewed_environment() -> None:
    """The gate GitHub enforces (an environment's required reviewers), not an `if:` the pull request can
    edit: every job that names a secret runs in a preview environment, and no secret is a repository
    secret (docs/ci.md lists them per environment). Fork pull requests get no such job."""
    workflow = yaml.safe_load((PROJECT_DIR / ".github/workflows/preview.yml").read_text())
    assert set(workflow[True]) == {"pull_request"}  # YAML reads `on` as true; no pull_request_review
    for name, job in workflow["jobs"].items():
        secrets = set(re.findall(r"secrets\.([A-Z_]+)", yaml.safe_dump(job)))
        if not secrets:
            continue
        assert str(job.get("environment", "")).startswith("preview-"), name
        assert job.get("if") == "github.event.pull_request.head.repo.full_name == github.repository", name
    ci = (PROJECT_DIR / "docs" / "ci.md").read_text()
    assert "required reviewers" in ci and "prevent self-review" in ci.lower()


def test_the_render_diff_is_one_comment_edited_in_place() -> None:
    step = next(s for s in jobs("preview.yml")["render-diff"]["steps"] if "gh pr comment" in str(s.get("run", "")))
    assert "--edit-last" in step["run"]


def test_deploys_run_only_from_main_in_their_environment() -> None:
    workflow = yaml.safe_load((PROJECT_DIR / ".github/workflows/deploy.yml").read_text())
    triggers = workflow[True]  # YAML reads the key `on` as true
    assert triggers["push"] == {"branches": ["main"]} and not (triggers["workflow_dispatch"] or {}).get("inputs")
    up = workflow["jobs"]["up"]
    assert up["if"] == "github.ref == 'refs/heads/main'"
    assert up["environment"] == "${{ github.event_name == 'workflow_dispatch' && 'prod' || 'staging' }}"


@pytest.mark.parametrize("workflow", ["preview.yml", "deploy.yml"])
def test_the_vault_preflight_runs_before_pulumi(workflow: str) -> None:
    steps = [step for job in yaml.safe_load((PROJECT_DIR / ".github/workflows" / workflow).read_text())["jobs"].values()
             for step in job["steps"]]
    runs = [str(step.get("run", "")) + str(step.get("uses", "")) for step in steps]
    preflight = next(i for i, r in enumerate(runs) if "live.verify" in r and "--preflight" in r)
    pulumi = next(i for i, r in enumerate(runs) if r.startswith("pulumi/actions@"))
    assert preflight < pulumi
    assert "VAULT_TOKEN" in steps[preflight]["env"]


def test_workflows_match_the_github_workflow_schema() -> None:
    proc = check_schema(*WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflows_pass_the_security_audit() -> None:
    proc = audit(*WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_unsafe_workflow_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\n"
        "jobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v4\n      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    proc = audit(bad)
    assert proc.returncode != 0
    assert "unpinned-uses" in proc.stdout + proc.stderr and "template-injection" in proc.stdout + proc.stderr


def test_a_malformed_workflow_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    assert check_schema(bad).returncode != 0
