"""`make outputs STACK=<env>` (`python -m deploy.outputs`): save a stack's outputs and check them
against the contract's reader, or check a saved file (`python -m deploy.outputs FILE`).

Exit 0 when the outputs are the 1.x contract; 2 with one message otherwise.
"""

from __future__ import annotations

from pathlib import Path

from clients.pulumi import stack_output_json
from config.outputs import OutputsProblem, read_file


def main(argv: list[str] | None = None) -> int:
    """`python -m deploy.outputs FILE` (whether a saved outputs file is one this reader can use), or
    `--stack S --save FILE` (`make outputs`: save the stack's outputs there, then check them)."""
    import argparse
    import sys

    from config.naming import is_stack_name

    ap = argparse.ArgumentParser(prog="python -m deploy.outputs",
                                 description="check a saved outputs file, or save a stack's outputs and check them")
    ap.add_argument("file", nargs="?", type=Path, help="a saved `pulumi stack output --json`")
    ap.add_argument("--stack", help="read this stack's outputs with the Pulumi CLI")
    ap.add_argument("--save", type=Path, help="with --stack: where to save them (default build/outputs-STACK.json)")
    args = ap.parse_args(argv)
    try:
        if (args.file is None) == (args.stack is None):
            raise OutputsProblem("name one saved outputs FILE, or --stack STACK")
        path = args.file
        if args.stack is not None:
            if not is_stack_name(args.stack):
                raise OutputsProblem(f"STACK={args.stack[:40]!r}: not a stack name (lower-case letters, digits and "
                                     "'-'): use local, staging, prod or pr-<n>")
            path = args.save or Path("build") / f"outputs-{args.stack}.json"
            text = stack_output_json(args.stack)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text)
        outputs = read_file(path)
    except OutputsProblem as exc:
        print(f"outputs: {exc}", file=sys.stderr)
        return 2
    print(f"outputs: {path}: contract {outputs.schema_version}, {len(outputs.services)} services, "
          f"namespace {outputs.namespace}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
