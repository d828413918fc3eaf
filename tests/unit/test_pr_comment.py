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
    """The producers: the review environment's (ci.review_comment), the render diff's and each preview's
    (ci.output_comment, which the Makefile's diff-comment and preview-comment run)."""
    from ci.output_comment import comment
    from ci.review_comment import render

    assert github.MARKER.match(render("pr-7", [], [], ""))
    assert github.MARKER.match(comment("render-diff", "Rendered objects", "+ a\n"))
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "-m ci.output_comment --kind render-diff" in makefile
    assert "-m ci.output_comment --kind $(call q,preview-$(STACK))" in makefile


@pytest.mark.parametrize("keep", ["head", "tail"])
def test_a_long_output_is_cut_at_githubs_limit_keeping_the_end_that_matters(keep: str) -> None:
    from ci.output_comment import comment

    output = "first line\n" + "x" * 200_000 + "\nlast line\n"
    body = comment("preview-staging", "pulumi preview staging", output, keep=keep)
    assert len(body) <= github.MAX_COMMENT and "cut to GitHub's comment limit" in body
    assert ("first line" in body) is (keep == "head") and ("last line" in body) is (keep == "tail")


def test_an_output_holding_a_fence_cannot_end_the_comments_fence() -> None:
    from ci.output_comment import comment

    body = comment("render-diff", "diff", "````\n#### All suites passed\n````\n", fence="diff")
    assert body.splitlines()[2] == "`````diff" and body.rstrip().endswith("`````")


def test_a_kind_that_is_not_one_is_refused(tmp_path: Path) -> None:
    from ci import output_comment

    source = tmp_path / "preview.txt"
    source.write_text("ok")
    assert output_comment.main(["--kind", "preview-x;touch PWNED", "--title", "t", "--input", str(source),
                                "--out", str(tmp_path / "c.md")]) == 2
    assert not (tmp_path / "c.md").exists()
