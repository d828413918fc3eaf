"""`make schema` (`python -m offline.schema`): write schemas/stack-outputs.schema.json from the contract's
one typed model (config/contract.py); `--check` says whether the committed file is what the model
generates (run by `make test`), without writing.

Exit 0 written or current; 1 with --check when the file differs (run `make schema` and commit it).
"""

from __future__ import annotations

import json
from pathlib import Path

from config import cli
from config.contract import SCHEMA_FILE, published_schema
from config.files import PROJECT_DIR


def schema_text() -> str:
    return json.dumps(published_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("offline.schema", __doc__)
    ap.add_argument("--check", action="store_true", help="only compare the committed file with the model")
    args = ap.parse_args(argv)
    return cli.run("schema", lambda: write_or_check(PROJECT_DIR / SCHEMA_FILE, check=args.check))


def write_or_check(path: Path, *, check: bool) -> int:
    text = schema_text()
    if check:
        current = path.read_text() if path.exists() else ""
        if current != text:
            print(f"schema: {path.name} is not what config/contract.py generates: run `make schema` and commit it")
            return 1
        print(f"schema: {path.name} is current")
        return 0
    path.write_text(text)
    print(f"schema: wrote {path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
