"""`python -m deploy.exec_credential --audience A`: what a keyless job's kubeconfig runs (client-go's
exec credential plugin): the job's OIDC token as an ExecCredential on stdout, nothing else there.

Its own frame, not config/cli.py's: kubectl starts it for every command it runs (client-go keeps a
credential only within one process), so it imports the standard library alone: 0.07 s a call, where
the project's frame (which imports the Pulumi SDK) took 0.42 s (docs/figures.md). A missing token is
one line on stderr (client-go shows it) and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from deploy.oidc_token import NoOidcToken, exec_credential


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="deploy.exec_credential", description=__doc__.splitlines()[0])
    ap.add_argument("--audience", required=True)
    args = ap.parse_args(argv)
    try:
        credential = exec_credential(args.audience)
    except NoOidcToken as exc:  # client-go shows stderr to the user; stdout is its to parse
        print(f"exec-credential: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(credential))
    return 0


if __name__ == "__main__":
    sys.exit(main())
