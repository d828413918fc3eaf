"""`make pr-comment PR=<n>` (`python -m ci.pr_comment`): post a pull request's comment, or edit the
one this workflow posted before -- found by its hidden marker and its author, edited by its id.

Every comment of ours starts with its kind's marker (ci/github.py: the review environment's, the
render diff's, each stack's preview), so the comments of different jobs never overwrite each other
(`gh pr comment --edit-last` edits the author's last comment, whichever it was). Another author's
comment carrying our marker is never edited. Standard library and the `gh` CLI only (GH_TOKEN, GITHUB_REPOSITORY).

Exit 0 when posted or edited; 2 with one message when the body has no marker or gh failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from ci.github import MARKER, MAX_COMMENT, CommentError

DEFAULT_AUTHOR = "github-actions[bot]"  # whom GITHUB_TOKEN posts as


def gh(*args: str) -> str:
    try:
        proc = subprocess.run(["gh", *args], capture_output=True, text=True, timeout=120, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise CommentError("the GitHub CLI (gh) is not installed") from None
    except subprocess.TimeoutExpired:
        raise CommentError(f"`gh {args[0]} {args[-1][:80]}` did not answer within 120 s") from None
    if proc.returncode != 0:
        raise CommentError(f"`gh {' '.join(args[:3])[:120]}` failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    return proc.stdout


def existing(repository: str, pull_request: str, tag: str, author: str) -> int | None:
    """The id of `author`'s comment on the pull request that starts with `tag`, if there is one."""
    listed = gh("api", "--paginate", f"repos/{repository}/issues/{pull_request}/comments",
                "--jq", ".[] | {id: .id, author: .user.login, head: .body[0:200]}")
    for line in listed.splitlines():
        try:
            comment = json.loads(line)
        except ValueError:
            continue
        if comment.get("author") == author and str(comment.get("head") or "").startswith(tag):
            return int(comment["id"])
    return None


def post(body_file: Path, pull_request: str, repository: str, author: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]{0,6}", pull_request):
        raise CommentError(f"PR={pull_request[:20]!r}: not a pull request number")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise CommentError(f"GITHUB_REPOSITORY={repository[:100]!r}: not owner/name")
    try:
        body = body_file.read_text()
    except OSError as exc:
        raise CommentError(f"{body_file}: cannot be read ({exc.strerror})") from None
    tag = MARKER.match(body)
    if tag is None:
        raise CommentError(f"{body_file}: the first line is not a comment marker `<!-- testinfra:<kind> -->`: "
                           "every comment of ours carries one, so it is edited in place and never another")
    if len(body) > MAX_COMMENT:
        raise CommentError(f"{body_file}: {len(body)} characters, over GitHub's {MAX_COMMENT}")
    found = existing(repository, pull_request, tag.group(0), author)
    if found is None:
        gh("api", "-X", "POST", f"repos/{repository}/issues/{pull_request}/comments", "-F", f"body=@{body_file}")
        return f"pr-comment: posted {tag.group(1)} on #{pull_request}"
    gh("api", "-X", "PATCH", f"repos/{repository}/issues/comments/{found}", "-F", f"body=@{body_file}")
    return f"pr-comment: edited {tag.group(1)} (comment {found}) on #{pull_request}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ci.pr_comment", description=__doc__.splitlines()[0])
    ap.add_argument("--pr", required=True, help="the pull request number")
    ap.add_argument("--body", type=Path, default=Path("build/pr-comment.md"))
    ap.add_argument("--author", default=os.environ.get("PR_COMMENT_AUTHOR", DEFAULT_AUTHOR),
                    help=f"whose comment may be edited (default {DEFAULT_AUTHOR}, GITHUB_TOKEN's)")
    args = ap.parse_args(argv)
    try:
        print(post(args.body, args.pr, os.environ.get("GITHUB_REPOSITORY", ""), args.author))
    except CommentError as exc:
        print(f"pr-comment: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
