"""GitHub's limits and our comments' markers: the one place that says how long a comment may be and
how each kind of comment of ours is recognised (`<!-- testinfra:<kind> -->` on its first line).
Standard library only (ci/pr_comment.py runs on any Python).
"""

from __future__ import annotations

import re

MAX_COMMENT = 65_535  # GitHub's limit on an issue comment's body
MARKER = re.compile(r"<!-- testinfra:([a-z0-9][a-z0-9-]{0,80}) -->")


class CommentError(Exception):
    """The comment could not be posted; the message says why."""


def marker(kind: str) -> str:
    text = f"<!-- testinfra:{kind} -->"
    if not MARKER.fullmatch(text):
        raise CommentError(f"{kind[:80]!r}: not a comment kind (lower-case letters, digits and '-')")
    return text
