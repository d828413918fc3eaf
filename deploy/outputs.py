"""`make outputs STACK=<env>` (`python -m deploy.outputs`): save a stack's outputs and check them
against the contract's reader, or check a saved file (`python -m deploy.outputs FILE`).

Exit 0 when the outputs are the 1.x contract; 2 with one message otherwise.
"""

from __future__ import annotations

from pathlib import Path

from clients.pulumi import stack_output_json
from config import cli
from config.outputs import OutputsProblem, read_file


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("deploy.outputs", __doc__)
    ap.add_argument("file", nargs="?", type=Path, help="a saved `pulumi stack output --json`")
    cli.add_stack(ap, default=None, help="read this stack's outputs with the Pulumi CLI")
    ap.add_argument("--save", type=Path, help="with --stack: where to save them (default build/outputs-STACK.json)")
    args = ap.parse_args(argv)
    return cli.run("outputs", lambda: check(args.file, args.stack, args.save))


def check(file: Path | None, stack: str | None, save: Path | None) -> int:
    if (file is None) == (stack is None):
        raise OutputsProblem("name one saved outputs FILE, or --stack STACK")
    path = file
    if stack is not None:
        path = save or Path("build") / f"outputs-{stack}.json"
        text = stack_output_json(stack)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text)
    assert path is not None
    outputs = read_file(path)
    print(f"outputs: {path}: contract {outputs.schema_version}, {len(outputs.services)} services, "
          f"namespace {outputs.namespace}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
