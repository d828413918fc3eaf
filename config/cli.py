"""The command-line frame every product command shares (CONTRIBUTING.md, "Adding a command"): one
parser shape, the shared `--stack` flag checked by the one stack-name rule with the same default
everywhere, and one way to end -- an expected error (a TestinfraError) is `prog: message` on stderr
and exit 2, never a traceback. `ci/pr_comment.py` alone keeps its own frame: it runs on any Python
(the standard library only), where this module's imports are not installed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from config.errors import TestinfraError
from config.naming import is_stack_name

DEFAULT_STACK = "local"  # as `make`'s STACK
EXIT_INPUT = 2  # an expected error: unusable input, configuration or endpoint (one message)


def stack_name(value: str) -> str:
    """argparse type of `--stack`: a stack name by config.naming's rule."""
    if not is_stack_name(value):
        raise argparse.ArgumentTypeError(f"{value[:40]!r} is not a stack name: lower-case letters, digits and '-' "
                                         "(local, staging, prod, pr-<n>)")
    return value


def parser(module: str, doc: str | None, *, epilog: str | None = None) -> argparse.ArgumentParser:
    """The parser of `python -m <module>`: its docstring's first line as the description."""
    return argparse.ArgumentParser(prog=f"python -m {module}", description=(doc or module).splitlines()[0],
                                   epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_stack(ap: argparse.ArgumentParser, *, default: str | None = DEFAULT_STACK, also: tuple[str, ...] = (),
              help: str | None = None) -> None:
    """`--stack`, checked by the stack-name rule; `also`: words the command accepts besides (diff's `all`)."""
    def checked(value: str) -> str:
        return value if value in also else stack_name(value)

    shown = f" (default {default})" if default else ""
    ap.add_argument("--stack", type=checked, default=default, metavar="STACK",
                    help=(help or "the stack: a Pulumi.<stack>.yaml of this project") + shown)


def run(prog: str, body: Callable[[], int]) -> int:
    """`body()`'s exit status; an expected error is one line, `prog: message`, and exit 2."""
    try:
        return body()
    except TestinfraError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_INPUT
