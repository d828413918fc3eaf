"""Review stacks: the pull request number, the stack derived from the template, expiry and sweep."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from clients.pulumi import PulumiCliError, PulumiDriver
from config import naming
from config.identities import DEPLOY, identity
from config.loading import stack_settings
from deploy import review
from deploy.review_stack_file import write_stack_file
from tests.conftest import PROJECT_DIR

HOSTILE = ["../staging", "1;id", "0", "", "staging", "prod", "-1", "1e3", "0001", "1000000", " 1", "1\n", "$(id)"]


@pytest.mark.parametrize("value", HOSTILE)
def test_anything_but_a_pull_request_number_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not a pull request number"):
        naming.review_stack(value)


def test_a_hostile_pr_stops_every_review_command_before_anything_runs() -> None:
    before = sorted(PROJECT_DIR.glob("Pulumi.*.yaml"))
    for command in ("up", "down", "stack-file"):
        proc = subprocess.run([sys.executable, "-m", "deploy.review", command, "../staging"], cwd=PROJECT_DIR,
                              capture_output=True, text=True, check=False, env={"PATH": "/nonexistent"})
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(PROJECT_DIR.glob("Pulumi.*.yaml")) == before  # no stack file written; no CLI on PATH to run


def test_a_review_stack_is_staging_with_its_own_namespace_paths_policy_and_role(review_project: Path) -> None:
    write_stack_file("pr-7", project=review_project)
    s = stack_settings("pr-7", project_dir=review_project)
    assert s.namespace == "integration-tests-pr-7"
    assert (s.vault_policy_name, s.vault_role_name) == ("integration-tests-pr-7-read", "integration-tests-pr-7-eso")
    external = [k for k in s.vault_keys if k.source == "external"]
    written = [k for k in s.vault_keys if k.source != "external"]
    # Read where their owners keep review (test-only) values: never staging's, never copied.
    assert external and all(k.path.startswith("integration/review/") for k in external)
    assert written and all(k.path.startswith("integration/pr-7/") for k in written)
    assert not [w for w in s.vault_key_writes if w.key.source == "external"]


def test_the_stack_file_keeps_its_encryption_lines_and_can_be_rebuilt_from_the_tags(review_project: Path) -> None:
    path = write_stack_file("pr-7", project=review_project)
    text = yaml.safe_load(path.read_text())
    text.update({"secretsprovider": "hashivault://k?engine=transit", "encryptedkey": "dmF1bHQ6djE6YWJj"})
    path.write_text(yaml.safe_dump(text))
    kept = yaml.safe_load(write_stack_file("pr-7", project=review_project).read_text())
    assert (kept["secretsprovider"], kept["encryptedkey"]) == ("hashivault://k?engine=transit", "dmF1bHQ6djE6YWJj")
    path.unlink()
    rebuilt = write_stack_file("pr-7", encryption={"secretsprovider": "hashivault://k?engine=transit",
                                                   "encryptedkey": "from-tag", "other": "x"}, project=review_project)
    assert yaml.safe_load(rebuilt.read_text())["encryptedkey"] == "from-tag"
    assert "other" not in yaml.safe_load(rebuilt.read_text())


def test_only_a_review_stacks_deploy_identity_may_remove_its_keys_every_version(review_project: Path) -> None:
    write_stack_file("pr-7", project=review_project)
    grants = identity(stack_settings("pr-7", project_dir=review_project), DEPLOY).vault
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


class RecordingCli(PulumiDriver):
    """The backend's answers as listed (each stack's expiry; `tags` adds others); every call recorded as
    (verb, stack); `destroy` of `failing` fails; the tags of `unreadable` cannot be read."""

    def __init__(self, stacks: dict[str, str | None], failing: str = "", unreadable: str = "",
                 tags: dict[str, dict[str, str]] | None = None) -> None:
        super().__init__(project_dir=Path("/nonexistent"), env={})
        self.expiry, self.failing, self.unreadable = dict(stacks), failing, unreadable
        self.calls: list[tuple[str, str]] = []
        self.extra_tags = tags or {}

    def stacks(self) -> list[str]:
        self.calls.append(("stack ls", ""))
        return sorted([*self.expiry, "staging"])

    def tags(self, stack: str) -> dict[str, str]:
        self.calls.append(("tags", stack))
        if stack == self.unreadable:
            raise PulumiCliError(f"could not read the tags of {stack}: the backend timed out; left as it is")
        expiry = self.expiry.get(stack)
        return {**({review.EXPIRES_TAG: expiry} if expiry else {}), **self.extra_tags.get(stack, {})}

    def set_tag(self, stack: str, name: str, value: str) -> None:
        self.calls.append(("set_tag", stack))

    def cancel(self, stack: str) -> None:
        self.calls.append(("cancel", stack))

    def refresh(self, stack: str, *, clear_pending_creates: bool = False, run_program: bool = False) -> None:
        assert clear_pending_creates and run_program  # the program configures the providers, not the state
        self.calls.append(("refresh", stack))

    def destroy(self, stack: str, *, continue_on_error: bool = False, run_program: bool = False) -> None:
        assert run_program
        self.calls.append(("destroy", stack))
        if stack == self.failing:
            raise review.ReviewError("destroy failed: the API server refused")

    def remove(self, stack: str) -> None:
        self.calls.append(("remove", stack))
        self.expiry.pop(stack)

    def commands(self, stack: str) -> list[str]:
        return [verb for verb, on in self.calls if on == stack]


@pytest.fixture
def no_stack_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(review, "write_stack_file", lambda *a, **k: Path("/nonexistent/x"))


def test_a_sweep_removes_what_is_due_reports_what_is_left_and_never_touches_staging(no_stack_files) -> None:
    cli = RecordingCli({"pr-1": "2026-12-01T00:00:00Z", "pr-2": "2026-12-09T00:00:00Z",
                        "pr-3": "2026-12-09T00:00:00Z", "pr-4": "2026-12-01T00:00:00Z"}, failing="pr-4")
    report = review.sweep(cli, None, closed={3}, now=NOW)
    assert [r.split()[0] for r in report.removed] == ["pr-1", "pr-3"]
    assert report.kept == ["pr-2"] and [s for s, _ in report.left] == ["pr-4"]
    assert "LEFT pr-4: destroy failed" in report.text()
    assert set(cli.expiry) == {"pr-2", "pr-4"}  # pr-4 stays listed: the next sweep finishes it
    touched = {stack for _, stack in cli.calls}
    assert "staging" not in touched
    # Teardown order: pending operations first, destroy, and the stack removed last.
    pr1 = [c for c in cli.commands("pr-1") if c not in ("tags", "set_tag")]
    assert pr1 == ["refresh", "destroy", "remove"]


def test_a_stack_whose_tags_cannot_be_read_is_left_and_reported_never_torn_down(no_stack_files) -> None:
    """Before: a failed tag read counted as "no expiry", and the open, unexpired stack was torn down."""
    cli = RecordingCli({"pr-5": "2026-12-09T00:00:00Z", "pr-6": "2026-12-01T00:00:00Z"}, unreadable="pr-5")
    report = review.sweep(cli, None, closed=set(), now=NOW)
    assert [s for s, _ in report.left] == ["pr-5"] and "could not read the tags of pr-5" in report.text()
    assert cli.commands("pr-5") == ["tags"]  # no cancel, no refresh, no destroy
    assert [r.split()[0] for r in report.removed] == ["pr-6"]


@pytest.mark.parametrize(("operation_began", "cancelled"), [
    ("2026-12-04T11:50:00Z", False),  # 10 min ago: the pull request's own job may hold the lock
    ("2026-12-04T11:15:01Z", False),  # just under LONGEST_RUN
    ("2026-12-04T10:00:00Z", True),  # 2 h ago: a killed run's lock
    (None, False),  # not known: never cancelled
])
def test_a_lock_is_cancelled_only_when_older_than_the_longest_run(no_stack_files, operation_began, cancelled) -> None:
    tags = {"pr-7": {review.OPERATION_TAG: operation_began}} if operation_began else {}
    cli = RecordingCli({"pr-7": "2026-12-01T00:00:00Z"}, tags=tags)
    review.sweep(cli, None, closed=set(), now=NOW)
    assert ("cancel" in cli.commands("pr-7")) is cancelled


def test_the_longest_run_is_the_review_workflows_timeout() -> None:
    minutes = 0
    for name in ("review.yml", "review-provision.yml"):
        workflow = yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / name).read_text())
        minutes = max(minutes, *(job["timeout-minutes"] for job in workflow["jobs"].values()))
    assert review.LONGEST_RUN.total_seconds() == minutes * 60


def test_closed_pull_requests_are_numbers_and_a_bad_line_is_skipped_and_reported(tmp_path: Path) -> None:
    listed = tmp_path / "closed"
    listed.write_text("3\n5,8\n")
    assert review.closed_numbers(["13"], listed) == ({3, 5, 8, 13}, [])
    listed.write_text("3\n../staging\n9\n")
    numbers, skipped = review.closed_numbers([], listed)
    assert numbers == {3, 9} and len(skipped) == 1
    assert skipped[0].startswith(f"{listed}:2: ") and "not a pull request number" in skipped[0]


def test_a_bad_line_in_the_closed_file_does_not_stop_the_sweep(no_stack_files, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    cli = RecordingCli({"pr-3": "2026-12-09T00:00:00Z"})
    monkeypatch.setattr(review, "PulumiDriver", lambda **_: cli)
    listed = tmp_path / "closed"
    listed.write_text("garbage\n3\n")
    assert review.main(["sweep", "--closed-file", str(listed)]) == 1
    out = capsys.readouterr().out
    assert "removed pr-3" in out and "SKIPPED" in out and ":1:" in out


def test_review_up_refuses_a_backend_that_holds_staging_and_creates_nothing(no_stack_files) -> None:
    cli = RecordingCli({"pr-1": "2026-12-09T00:00:00Z"})  # lists staging beside it
    with pytest.raises(review.ReviewError, match="backend holds staging"):
        review.up("7", cli)
    assert [verb for verb, _ in cli.calls] == ["stack ls"]
