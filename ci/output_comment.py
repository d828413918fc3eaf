"""`make diff-comment` and `make preview-comment` (`python -m ci.output_comment`): a command's output as
a pull request's comment -- its kind's marker, a title, the output fenced, cut to GitHub's limit
(ci/github.py): the render diff keeps its head (the first objects changed), a preview its tail (the
summary and the error come last).

Exit 0 when written; 2 with one message (an unreadable input, a kind that is not one).
"""

from __future__ import annotations

import re
from pathlib import Path

from ci.github import MAX_COMMENT, CommentError, marker
from config import cli
from config.errors import TestinfraError

CUT_NOTE = "(cut to GitHub's comment limit: the job's log has all of it)"


class OutputCommentError(TestinfraError):
    """The output cannot be made into a comment; the message says why."""


def comment(kind: str, title: str, output: str, *, fence: str = "", keep: str = "head") -> str:
    """The comment's body: marker, title, the output in a fence longer than any in it, within the limit."""
    try:
        head = f"{marker(kind)}\n### {' '.join(title.split())[:200]}\n"
    except CommentError as exc:
        raise OutputCommentError(str(exc)) from None
    ticks = "`" * max(3, max((len(run) for run in re.findall(r"`+", output)), default=0) + 1)
    room = MAX_COMMENT - len(head) - 2 * len(ticks) - len(fence) - len(CUT_NOTE) - 8
    shown = output if len(output) <= room else (output[:room] if keep == "head" else output[-room:])
    cut = f"\n{CUT_NOTE}\n" if len(shown) < len(output) else ""
    return f"{head}{ticks}{fence}\n{shown.rstrip()}\n{ticks}\n{cut}"


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("ci.output_comment", __doc__)
    ap.add_argument("--kind", required=True, help="the comment's kind (its marker): render-diff, preview-<stack>")
    ap.add_argument("--title", required=True)
    ap.add_argument("--input", type=Path, required=True, help="the command's output")
    ap.add_argument("--fence", default="", help="the fence's info string (diff)")
    ap.add_argument("--keep", choices=("head", "tail"), default="head", help="which end of a long output to keep")
    ap.add_argument("--out", type=Path, default=Path("build/pr-comment.md"))
    args = ap.parse_args(argv)
    return cli.run("output-comment", lambda: write(args.kind, args.title, args.input, args.fence, args.keep, args.out))


def write(kind: str, title: str, source: Path, fence: str, keep: str, out: Path) -> int:
    try:
        output = source.read_text(errors="replace")
    except OSError as exc:
        raise OutputCommentError(f"{source}: cannot be read ({exc.strerror})") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(comment(kind, title, output, fence=fence, keep=keep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
