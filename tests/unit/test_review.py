"""Review stacks: the pull request number, the stack derived from the template, expiry and sweep."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from config import naming
from config.identities import DEPLOY, identity
from config.loading import stack_settings
from live import review
from tests.conftest import PROJECT_DIR

HOSTILE = ["../staging", "1;id", "0", "", "staging", "prod", "-1", "1e3", "0001", "1000000", " 1", "1\n", "$(id)"]


@pytest.mark.parametrize("value", HOSTILE)
def test_anything_but_a_pull_request_number_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not a pull request number"):
        naming.review_stack(value)


def test_a_hostile_pr_stops_every_review_command_before_anything_runs() -> None:
    before = sorted(PROJECT_DIR.glob("Pulumi.*.yaml"))
    for command in ("up", "down", "stack-file"):
        proc = subprocess.run([sys.executable, "-m", "live.review", command, "../staging"], cwd=PROJECT_DIR,
                              capture_output=True, text=True, check=False, env={"PATH": "/nonexistent"})
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(PROJECT_DIR.glob("Pulumi.*.yaml")) == before  # no stack file written; no CLI on PATH to run


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.review.yaml", "catalog.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    shutil.copytree(PROJECT_DIR / "charts", tmp_path / "charts")
    return tmp_path


def test_a_review_stack_is_staging_with_its_own_namespace_paths_policy_and_role(project: Path) -> None:
    review.write_stack_file("pr-7", project=project)
    s = stack_settings("pr-7", project_dir=project)
    assert s.namespace == "integration-tests-pr-7"
    assert (s.vault_policy_name, s.vault_role_name) == ("integration-tests-pr-7-read", "integration-tests-pr-7-eso")
    external = [k for k in s.vault_keys if k.source == "external"]
    written = [k for k in s.vault_keys if k.source != "external"]
    assert external and all(k.path.startswith("integration/staging/") for k in external)  # read, not copied
    assert written and all(k.path.startswith("integration/pr-7/") for k in written)
    assert not [w for w in s.vault_key_writes if w.key.source == "external"]


def test_the_stack_file_keeps_its_encryption_salt_and_can_be_rebuilt_from_the_tag(project: Path) -> None:
    path = review.write_stack_file("pr-7", project=project)
    text = yaml.safe_load(path.read_text())
    text["encryptionsalt"] = "v1:abc"
    path.write_text(yaml.safe_dump(text))
    assert yaml.safe_load(review.write_stack_file("pr-7", project=project).read_text())["encryptionsalt"] == "v1:abc"
    path.unlink()
    rebuilt = review.write_stack_file("pr-7", salt="v1:from-tag", project=project)
    assert yaml.safe_load(rebuilt.read_text())["encryptionsalt"] == "v1:from-tag"


def test_only_a_review_stacks_deploy_identity_may_remove_its_keys_every_version(project: Path) -> None:
    review.write_stack_file("pr-7", project=project)
    grants = identity(stack_settings("pr-7", project_dir=project), DEPLOY).vault
    deletes = [g.path for g in grants if "/metadata/" in g.path and "delete" in g.capabilities]
    assert deletes == ["secret/metadata/integration/pr-7/integration-test-bearer-token"]
    staging = identity(stack_settings("staging", project_dir=PROJECT_DIR), DEPLOY).vault
    assert not [g for g in staging if "/metadata/" in g.path and "delete" in g.capabilities]


NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("stack", "expires", "closed", "removed_because"), [
    ("pr-3", "2026-12-05T00:00:00Z", {3}, "closed"),
    ("pr-3", "2026-12-04T11:59:59Z", set(), "expired"),
    ("pr-3", "2026-12-04T12:00:01Z", set(), None),
    ("pr-3", None, set(), "no expiry"),
    ("pr-3", "soon", set(), "not a time"),
])
def test_a_review_stack_is_due_when_closed_expired_or_unfinished(stack, expires, closed, removed_because) -> None:
    why = review.due(stack, expires, closed, NOW)
    assert (why is None) if removed_because is None else (removed_because in (why or ""))


class RecordingCli(review.Cli):
    """The backend's answers as listed; every command recorded; `destroy` of `failing` fails."""

    def __init__(self, stacks: dict[str, str | None], failing: str = "") -> None:
        super().__init__(project=Path("/nonexistent"), env={})
        self.stacks, self.failing, self.calls = dict(stacks), failing, []

    def run(self, *args, check=True, stack_env=None):
        self.calls.append(args)
        if args[:3] == ("pulumi", "stack", "ls"):
            out = "[" + ",".join(f'{{"name": "{n}"}}' for n in [*self.stacks, "staging"]) + "]"
            return subprocess.CompletedProcess(args, 0, out, "")
        if args[:4] == ("pulumi", "stack", "tag", "get"):
            value = self.stacks.get(args[args.index("--stack") + 1]) if args[4] == review.EXPIRES_TAG else None
            return subprocess.CompletedProcess(args, 0 if value else 1, value or "", "")
        if args[1] == "destroy" and self.failing in args:
            raise review.ReviewError("destroy failed: the API server refused")
        if args[1:3] == ("stack", "rm"):
            self.stacks.pop(args[-2])  # ... --remove-backups <stack> --non-interactive
        return subprocess.CompletedProcess(args, 0, "", "")


def test_a_sweep_removes_what_is_due_reports_what_is_left_and_never_touches_staging(monkeypatch) -> None:
    monkeypatch.setattr(review, "write_stack_file", lambda *a, **k: Path("/nonexistent/x"))
    cli = RecordingCli({"pr-1": "2026-12-01T00:00:00Z", "pr-2": "2026-12-09T00:00:00Z",
                        "pr-3": "2026-12-09T00:00:00Z", "pr-4": "2026-12-01T00:00:00Z"}, failing="pr-4")
    report = review.sweep(cli, None, closed={3}, now=NOW)
    assert [r.split()[0] for r in report.removed] == ["pr-1", "pr-3"]
    assert report.kept == ["pr-2"] and [s for s, _ in report.left] == ["pr-4"]
    assert "LEFT pr-4: destroy failed" in report.text()
    assert set(cli.stacks) == {"pr-2", "pr-4"}  # pr-4 stays listed: the next sweep finishes it
    touched = {a[a.index("--stack") + 1] for a in cli.calls if "--stack" in a}
    assert "staging" not in touched
    # Teardown order: the lock and pending operations first, destroy, and the stack removed last.
    pr1 = [a[1] for a in cli.calls if "pr-1" in a and a[1] != "stack"] + ["stack rm"]
    assert pr1[:3] == ["cancel", "refresh", "destroy"]


def test_closed_pull_requests_are_numbers_whatever_the_file_holds(tmp_path: Path) -> None:
    listed = tmp_path / "closed"
    listed.write_text("3\n5,8\n")
    assert review.closed_numbers(["13"], listed) == {3, 5, 8, 13}
    listed.write_text("3\n../staging\n")
    with pytest.raises(ValueError, match="not a pull request number"):
        review.closed_numbers([], listed)
