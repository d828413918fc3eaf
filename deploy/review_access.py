"""Review access: the trusted provisioner of one pull request's credentials, and the job's exchange.

Owns: `make review-grant PR=<n>` and `make review-revoke PR=<n>` -- run with the platform's
credentials by code of the base branch only (never a pull request's checkout) -- which create and
remove everything config/review_access.py decides for pull request <n>: its namespace, quota
ceiling, Role and RoleBinding for its OIDC username, token-review binding, and in Vault its deploy
policy, JWT role, ESO read policy and role, and transit key (revoke first revokes every token of the
pull request's two roles, by accessor); and `make review-login PR=<n>`, the review job's side: its
GitHub OIDC token exchanged for a Vault token of the pull request's JWT role and a kubeconfig whose
user is that token (the API server's JWT authenticator maps it), written 0600 to
build/review/pr-<n>/ -- no long-lived credential anywhere in the job.

The OIDC token comes from GitHub (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN, `permissions: id-token:
write`) or from the file OIDC_TOKEN_FILE names (the local environment's issuer).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from config import cli
from config.files import PROJECT_DIR
from config.review_access import access_of, grant
from deploy.review_grants import (
    ReviewAccessError,
    deprovision,
    dynamic_client,
    platform_vault,
    provision,
    review_settings,
)


def main(argv: Sequence[str] | None = None) -> int:
    ap = cli.parser("deploy.review_access", __doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("grant", "revoke", "login"):
        sub.add_parser(name).add_argument("pr")
    sub.choices["login"].add_argument("--out", type=Path, help="default build/review/pr-<n>")
    sub.choices["login"].add_argument("--wait-seconds", type=float, default=300,
                                      help="wait this long for the pull request's grant (default 300)")
    args = ap.parse_args(argv)
    return cli.run(f"review-{args.command}", lambda: command(args))


def command(args: argparse.Namespace) -> int:
    try:
        settings = review_settings(args.pr)
    except ValueError as exc:
        raise ReviewAccessError(str(exc)) from None
    plan = grant(settings)
    if args.command == "login":
        from config.github_oidc import review_username
        from config.review_access import pull_request_of
        from deploy.oidc_exchange import login

        out = login(settings, access_of(settings), plan.jwt_role_name,
                    review_username(access_of(settings), pull_request_of(settings)),
                    args.out or PROJECT_DIR / "build" / "review" / settings.environment, wait_seconds=args.wait_seconds)
        print(f"review-login: {settings.environment}: a Vault token of role {plan.jwt_role_name} "
              f"({access_of(settings).token_minutes} min) and Kubernetes user {plan.username}; "
              f"`set -a; . {out / 'env'}; set +a` before make review-up / make run")
        return 0
    vault, kube = platform_vault(settings), dynamic_client(settings)
    if args.command == "grant":
        provision(plan, vault, kube)
        print(f"review-grant: {settings.environment}: namespace {plan.namespace} (Role for {plan.username}), "
              f"Vault policy and JWT role {plan.jwt_role_name}, ESO role {plan.eso_role_name}, transit key "
              f"{plan.transit_key}")
    else:
        revoked = deprovision(plan, vault, kube)
        print(f"review-revoke: {settings.environment}: {revoked} token(s) revoked; roles, policies, transit key "
              f"and namespace {plan.namespace} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
