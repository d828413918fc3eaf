"""`make pr-comment`: each kind of comment (review environment, render diff, each stack's preview) is
found by its hidden marker and its author and edited by id -- the four bot comments never overwrite
each other, and nobody else's comment is edited. Against a stand-in `gh` that answers as GitHub's REST
API does and records what it was asked."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from ci import github, pr_comment

FAKE_GH = """#!{python}
import json, os, sys
log = os.environ["FAKE_GH_LOG"]
with open(log, "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
if "--paginate" in sys.argv:
    for c in json.load(open(os.environ["FAKE_GH_COMMENTS"])):
        print(json.dumps({{"id": c["id"], "author": c["user"], "head": c["body"][:200]}}))
"""


@pytest.fixture
def gh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "gh"
    script.write_text(FAKE_GH.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GH_LOG", str(tmp_path / "gh.log"))
    monkeypatch.setenv("FAKE_GH_COMMENTS", str(tmp_path / "comments.json"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/testinfra")
    (tmp_path / "comments.json").write_text(json.dumps([
        {"id": 11, "user": "github-actions[bot]", "body": "<!-- testinfra:render-diff -->\n### Rendered"},
        {"id": 12, "user": "github-actions[bot]", "body": "<!-- testinfra:preview-staging -->\n### preview"},
        {"id": 13, "user": "mallory", "body": "<!-- testinfra:review-pr-7 -->\nforged by a person"},
        {"id": 14, "user": "github-actions[bot]", "body": "an unrelated bot comment, the newest"},
    ]))
    return tmp_path


def calls(gh: Path) -> list[list[str]]:
    return [json.loads(line) for line in (gh / "gh.log").read_text().splitlines()]


def body(gh: Path, kind: str) -> Path:
    path = gh / "comment.md"
    path.write_text(f"{github.marker(kind)}\n### something\n")
    return path


@pytest.mark.parametrize(("kind", "edited"), [("render-diff", 11), ("preview-staging", 12)])
def test_a_comment_of_a_kind_edits_that_kinds_comment_by_id(gh: Path, kind: str, edited: int) -> None:
    assert pr_comment.main(["--pr", "7", "--body", str(body(gh, kind))]) == 0
    writes = [c for c in calls(gh) if "-X" in c]
    assert writes == [["api", "-X", "PATCH", f"repos/acme/testinfra/issues/comments/{edited}", "-F",
                       f"body=@{gh / 'comment.md'}"]]


def test_a_new_kind_posts_and_anothers_forged_marker_is_never_edited(gh: Path) -> None:
    assert pr_comment.main(["--pr", "7", "--body", str(body(gh, "review-pr-7"))]) == 0
    writes = [c for c in calls(gh) if "-X" in c]
    assert writes == [["api", "-X", "POST", "repos/acme/testinfra/issues/7/comments", "-F",
                       f"body=@{gh / 'comment.md'}"]]


def test_a_body_without_a_marker_is_refused_and_nothing_is_written(gh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = gh / "plain.md"
    plain.write_text("### no marker\n")
    assert pr_comment.main(["--pr", "7", "--body", str(plain)]) == 2
    assert "not a comment marker" in capsys.readouterr().err
    assert not (gh / "gh.log").exists()


@pytest.mark.parametrize("pr", ["0", "7;id", "../1", ""])
def test_a_pull_request_that_is_not_a_number_is_refused(gh: Path, pr: str) -> None:
    assert pr_comment.main(["--pr", pr, "--body", str(body(gh, "render-diff"))]) == 2
    assert not (gh / "gh.log").exists()


def test_every_comment_the_project_writes_starts_with_a_marker() -> None:
    """The producers: the review summary (live), the render diff and the previews (the Makefile)."""
    from ci.review_comment import render

    assert github.MARKER.match(render("pr-7", [], [], ""))
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "echo '<!-- testinfra:render-diff -->'" in makefile
    assert "echo '<!-- testinfra:preview-'$(call q,$(STACK))' -->'" in makefile
