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
    assert {p.name for p in WORKFLOWS} == {"preview.yml", "deploy.yml", "review.yml", "review-provision.yml",
                                          "drift.yml"}
    preview = (PROJECT_DIR / ".github/workflows/preview.yml").read_text()
    assert "stack: [staging, prod]" in preview and "run: make test" in preview
    assert "make preview-comment" in preview and "make diff-comment" in preview
    assert "make up STACK" in (PROJECT_DIR / ".github/workflows/deploy.yml").read_text()


ALLOWED_ACTIONS = ("actions/checkout@", "pulumi/actions@", "actions/upload-artifact@", "actions/cache@",
                   "aws-actions/configure-aws-credentials@")


@pytest.mark.parametrize("workflow", ["preview.yml", "deploy.yml", "drift.yml"])
def test_every_step_is_a_make_target_so_a_laptop_runs_what_ci_runs(workflow: str) -> None:
    """The YAML only wires credentials: each `run` is one make target; the only actions are checkout,
    the Pulumi CLI's installer (no command), the artifact upload, the install cache and the state
    backend's role assumption (OIDC)."""
    for name, job in jobs(workflow).items():
        for step in job["steps"]:
            if "run" in step:
                assert step["run"].startswith("make ") and "\n" not in step["run"].strip(), (name, step["run"])
            else:
                assert str(step["uses"]).startswith(ALLOWED_ACTIONS), (name, step["uses"])
                if str(step["uses"]).startswith("pulumi/actions@"):
                    assert set(step["with"]) == {"pulumi-version"}, step["with"]  # installs the CLI, runs nothing


def test_ci_installs_the_pulumi_cli_the_toolchain_builds() -> None:
    import tomllib

    version = tomllib.loads((PROJECT_DIR / "tools/toolchain/toolchain.toml").read_text())["binaries"]["pulumi"]["version"]
    for workflow in ("preview.yml", "deploy.yml", "drift.yml"):
        installs = [step["with"]["pulumi-version"] for job in jobs(workflow).values() for step in job["steps"]
                    if str(step.get("uses", "")).startswith("pulumi/actions@")]
        assert installs and set(installs) == {version.removeprefix("v")}, (workflow, installs, version)


def jobs(workflow: str) -> dict[str, dict]:
    return yaml.safe_load((PROJECT_DIR / ".github/workflows" / workflow).read_text())["jobs"]


def test_pull_requests_get_only_read_only_credentials_from_per_stack_environments() -> None:
    for name, job in jobs("preview.yml").items():
        text = yaml.safe_dump(job)
        secrets = set(re.findall(r"secrets\.([A-Z_]+)", text))
        if not secrets:
            continue
        assert job.get("environment") == "preview-${{ matrix.stack }}", name
        assert secrets <= {"VAULT_PREVIEW_TOKEN", "KUBECONFIG_PREVIEW", "PULUMI_READ_TOKEN", "PULUMI_BACKEND_URL",
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


def test_the_pull_request_comments_are_edited_in_place_by_marker_and_id() -> None:
    """(tests/unit/test_pr_comment.py checks what it asks GitHub for.)"""
    planned = subprocess.run(["make", "-n", "pr-comment", "PR=12"], cwd=PROJECT_DIR, capture_output=True, text=True,
                             check=True).stdout
    assert "-m ci.pr_comment --pr='12' --body build/pr-comment.md" in planned and "--edit-last" not in planned


def test_make_lint_runs_actionlint_and_zizmor_over_the_workflows() -> None:
    planned = subprocess.run(["make", "-n", "lint"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True).stdout
    assert "actionlint" in planned and "zizmor --offline" in planned and ".github/workflows" in planned


def test_the_daily_drift_check_reads_with_the_preview_identity_alone() -> None:
    """Scheduled (and by hand), per stack, in the stack's preview environment: the preview identity's
    read-only credentials and nothing else; the findings in the job summary (make drift) and an artifact."""
    workflow = yaml.safe_load((PROJECT_DIR / ".github/workflows/drift.yml").read_text())
    assert set(workflow[True]) == {"schedule", "workflow_dispatch"} and workflow["permissions"] == {}
    [job] = workflow["jobs"].values()
    assert job["environment"] == "preview-${{ matrix.stack }}" and job["strategy"]["matrix"]["stack"] == ["staging", "prod"]
    assert set(job["permissions"]) == {"contents", "id-token"} and job["permissions"]["contents"] == "read"
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs == ['make login STACK="$STACK" ROLE=preview', 'make drift STACK="$STACK" LOGIN=preview']
    assert set(re.findall(r"secrets\.([A-Z_]+)", yaml.safe_dump(job))) <= {
        "PULUMI_READ_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"}


def test_deploys_run_only_from_main_in_their_environment() -> None:
    workflow = yaml.safe_load((PROJECT_DIR / ".github/workflows/deploy.yml").read_text())
    triggers = workflow[True]  # YAML reads the key `on` as true
    assert triggers["push"] == {"branches": ["main"]} and not (triggers["workflow_dispatch"] or {}).get("inputs")
    up = workflow["jobs"]["up"]
    assert up["if"] == "github.ref == 'refs/heads/main'"
    assert up["environment"] == "${{ github.event_name == 'workflow_dispatch' && 'prod' || 'staging' }}"


@pytest.mark.parametrize("target", ["preview-comment", "up"])
def test_the_vault_preflight_runs_before_pulumi_in_the_make_targets_ci_calls(target: str) -> None:
    planned = subprocess.run(["make", "-n", target, "STACK=staging"], cwd=PROJECT_DIR, capture_output=True,
                             text=True, check=True).stdout
    assert "-m deploy.stack" in planned
    command = (PROJECT_DIR / "deploy" / "stack.py").read_text()
    body = command[command.index("def hand_over"):]
    assert body.index("preflight(stack, action)") < body.index("os.execvp(")


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


def test_ci_kubeconfig_lives_in_a_private_file_for_one_command_only(tmp_path: Path) -> None:
    probe = 'stat -c %a "$KUBECONFIG"; cat "$KUBECONFIG"; echo "data=${KUBECONFIG_DATA:-unset}"; echo "$KUBECONFIG"'
    ran = subprocess.run([str(PROJECT_DIR / "tools/deploy/kubeconfig.sh"), "sh", "-c", probe], capture_output=True,
                         text=True, check=True, env={"PATH": "/usr/bin:/bin", "KUBECONFIG_DATA": "kind: Config",
                                                     "TMPDIR": str(tmp_path)}).stdout.splitlines()
    assert ran[:3] == ["600", "kind: Config", "data=unset"]
    assert ran[3].startswith(str(tmp_path)) and not list(tmp_path.iterdir())  # removed when the command ended


def workflow_of(name: str) -> dict:
    return yaml.safe_load((PROJECT_DIR / ".github/workflows" / name).read_text())


def test_review_environments_go_to_same_repository_prs_and_nothing_is_ever_cancelled() -> None:
    for name in ("review.yml", "review-provision.yml"):
        workflow = workflow_of(name)
        assert workflow["concurrency"]["cancel-in-progress"] is False
        for job_name, job in workflow["jobs"].items():
            if job_name != "sweep":
                assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"], job_name


def test_no_job_that_runs_a_pull_requests_code_holds_a_stored_credential() -> None:
    """review.yml runs the pull request's code: its only credential is the OIDC token (id-token: write);
    no secret -- Vault token, kubeconfig, passphrase, backend key -- is handed to any of its jobs."""
    workflow = workflow_of("review.yml")
    assert set(workflow[True]) == {"pull_request"}
    text = yaml.safe_dump(workflow)
    assert "secrets." not in text
    for word in ("VAULT_TOKEN:", "KUBECONFIG_DATA", "PULUMI_CONFIG_PASSPHRASE", "AWS_SECRET_ACCESS_KEY"):
        assert word not in text, word
    (job,) = workflow["jobs"].values()
    assert job["permissions"]["id-token"] == "write" and "environment" not in job


def test_the_provisioner_runs_only_the_base_branchs_code() -> None:
    """review-provision.yml holds the platform's credentials: pull_request_target and schedule take the
    workflow and the checkout from the base branch; no step may check out or run the pull request."""
    workflow = workflow_of("review-provision.yml")
    assert set(workflow[True]) == {"pull_request_target", "schedule"}
    for job in workflow["jobs"].values():
        assert job["environment"] == "review-provision"
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert "ref" not in (step.get("with") or {}), step  # the default: the base branch
            assert "pull_request.head" not in yaml.safe_dump(step), step
            run = step.get("run", "")
            assert "review-login" not in run and "review-up" not in run, run  # the pull request's commands


def test_a_review_token_lives_no_longer_than_the_job_that_holds_it() -> None:
    from config.loading import stack_settings
    from deploy.review import LONGEST_RUN

    access = stack_settings("review", project_dir=PROJECT_DIR).stack.review_access
    assert access is not None
    minutes = workflow_of("review.yml")["jobs"]["up"]["timeout-minutes"]
    assert access.token_minutes <= minutes and LONGEST_RUN.total_seconds() == minutes * 60


@pytest.mark.parametrize("workflow", [p.name for p in WORKFLOWS])
def test_every_job_has_a_timeout_so_a_hung_up_never_holds_the_runner_and_the_lock_for_hours(workflow: str) -> None:
    for name, job in jobs(workflow).items():
        assert 0 < int(job.get("timeout-minutes", 0)) <= 60, (workflow, name)


def test_the_render_diff_that_runs_a_forks_code_writes_nothing_but_its_job_summary() -> None:
    job = jobs("preview.yml")["render-diff"]
    assert job["permissions"] == {"contents": "read"}
    assert [s["run"] for s in job["steps"] if "run" in s] == ['make diff-comment BASE="origin/$BASE_REF"']
    makefile = (PROJECT_DIR / "Makefile").read_text()
    recipe = makefile[makefile.index("\ndiff-comment:"):].split("\n\n", 1)[0]
    assert 'cat build/pr-comment.md >> "$$GITHUB_STEP_SUMMARY"' in recipe


def test_dependabot_moves_the_action_pins_and_the_python_requirements() -> None:
    config = yaml.safe_load((PROJECT_DIR / ".github" / "dependabot.yml").read_text())
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(ecosystems) == {"github-actions", "pip"}
    assert all(u["directory"] == "/" and u["schedule"]["interval"] for u in ecosystems.values())
