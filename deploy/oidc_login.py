"""`make login STACK=<env> ROLE=deploy|preview`: a job's GitHub OIDC token exchanged for its identity.

Owns: the command line of the exchange (deploy/oidc_exchange.py) for a stack's deploy or preview job:
a Vault token of the identity's JWT role (config/github_oidc.py: bound to this repository's jobs in
that GitHub environment) and a kubeconfig whose user the API server maps to the identity's username,
written 0600 to build/login/<stack>-<role>/. What that kubeconfig runs: deploy/exec_credential.py.

Usage: python -m deploy.oidc_login login --stack staging --role deploy
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from config import cli, naming
from config.files import PROJECT_DIR
from config.github_oidc import environment_username, github_environment
from deploy.oidc_exchange import LoginError, login

ROLES = ("deploy", "preview")


def main(argv: Sequence[str] | None = None) -> int:
    ap = cli.parser("deploy.oidc_login", __doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    log_in = sub.add_parser("login")
    cli.add_stack(log_in)
    log_in.add_argument("--role", choices=ROLES, default="deploy")
    log_in.add_argument("--out", type=Path, help="default build/login/<stack>-<role>")
    args = ap.parse_args(argv)
    return cli.run(f"login {args.stack}", lambda: _login(args.stack, args.role, args.out))


def _login(stack: str, role: str, out: Path | None) -> int:
    from config.loading import stack_settings

    settings = stack_settings(stack, project_dir=PROJECT_DIR)
    access = settings.stack.oidc
    if access is None:
        raise LoginError(f"{settings.stack_file}: {naming.config_key('oidc')} is not set: this stack's jobs have no "
                         "OIDC identity (docs/platform-setup.md); use the static credentials of its environment")
    name = naming.identity_name(role, stack)
    user = environment_username(access, github_environment(role, stack))
    folder = login(settings, access, name, user, out or PROJECT_DIR / "build" / "login" / f"{stack}-{role}")
    print(f"login: {stack} {role}: a Vault token of role {name} ({access.token_minutes} min) and Kubernetes user "
          f"{user}; `set -a; . {folder / 'env'}; set +a`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
