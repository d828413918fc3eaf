"""`make init|preview|up|destroy STACK=<env>` (`python -m deploy.stack ACTION [pulumi's own flags]`): the
real deploy path. Checks, each one message and exit 2 before anything changes: the stack name (the one
rule, config.naming; `review` is the review stacks' template, not a stack), its stack file, for `local`
the environment `make local-env` recorded, the Pulumi CLI; for any other stack that it exists in the
backend you are logged in to (never created on the way: `make init` creates it, once, deliberately),
then VAULT_TOKEN and the preflight (`deploy.verify --preflight`, with the identity the action needs:
preview for `preview`, deploy otherwise). Then it hands over to the CLI itself (exec): `pulumi ACTION
--stack STACK [--policy-pack policy]` with your flags -- as interactive as ever.

STACK comes from --stack or the environment (as make passes it).
"""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from clients.pulumi import PulumiDriver
from config import cli, naming
from config.errors import EnvironmentProblem, TestinfraError
from config.files import PROJECT_DIR

ACTIONS = ("init", "preview", "up", "destroy")
POLICY_PACK = "policy"  # the CrossGuard pack run by preview and up


class StackRefused(TestinfraError):
    """The stack cannot be deployed as asked; the message says why and what to do."""


def check_stack_name(stack: str) -> None:
    if not naming.is_stack_name(stack):
        raise StackRefused(f"STACK={stack[:40]}: not a stack name: use local, staging, prod (a Pulumi.<stack>.yaml "
                           "of this project)")
    if stack == naming.REVIEW_TEMPLATE:
        raise StackRefused(f"{naming.stack_file(stack)} is the template of the review stacks, not a stack: use "
                           "make review-up PR=<n>")
    if not (PROJECT_DIR / naming.stack_file(stack)).is_file():
        raise StackRefused(f"{naming.stack_file(stack)}: no such stack file: use local, staging or prod, or create "
                           "the file (README, Configure)")


def check_local_environment(stack: str) -> None:
    recorded = os.environ.get("PULUMI_BACKEND_URL") and "PULUMI_CONFIG_PASSPHRASE" in os.environ
    if naming.is_local_stack(stack) and not recorded:
        raise StackRefused(f"the local stack {stack} has no environment: run `make local-env` first (NAME=<name> "
                           "for a stack local-<name>; it starts the local control plane, OpenBao and ESO and records "
                           "where they are), or point the stack at your "
                           "own cluster by exporting PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE, VAULT_TOKEN and "
                           "setting testinfra:kubeContext")


def secrets_provider(stack: str) -> str | None:
    document = yaml.safe_load((PROJECT_DIR / naming.stack_file(stack)).read_text()) or {}
    provider = document.get("secretsprovider")
    return str(provider) if provider else None


def select(pulumi: PulumiDriver, stack: str) -> None:
    """staging/prod must exist already (selecting changes nothing); `local` is created in its own backend."""
    if naming.is_local_stack(stack):
        pulumi.create_or_select(stack, "passphrase")
        return
    try:
        pulumi.stack(stack)
    except EnvironmentProblem as exc:
        raise StackRefused(f"Stack {stack} cannot be selected in the backend you are logged in to: {exc}. Nothing "
                           f"was created. Check `pulumi login` (README, Deploy); a stack that does not exist yet is "
                           f"created once, deliberately, with `make init STACK={stack}`") from None


def preflight(stack: str, action: str) -> None:
    if not os.environ.get("VAULT_TOKEN"):
        raise StackRefused(f"VAULT_TOKEN is not set: the Vault provider needs a token for the vaultAddress of "
                           f"{naming.stack_file(stack)}")
    # Not for local: the disposable local environment is its own platform team, with its root credentials.
    identity = [] if naming.is_local_stack(stack) else ["--identity", "preview" if action == "preview" else "deploy"]
    checked = subprocess.run([sys.executable, "-m", "deploy.verify", "--stack", stack, "--preflight", *identity],
                             cwd=PROJECT_DIR, check=False, stdin=subprocess.DEVNULL)
    if checked.returncode != 0:
        raise SystemExit(checked.returncode)  # the preflight said why, in its own words


def hand_over(stack: str, action: str, flags: list[str]) -> int:
    pulumi = PulumiDriver(env=os.environ)
    if action == "init":
        pulumi.create(stack, secrets_provider(stack))
        print(f"stack {stack}: created", file=sys.stderr)
        return 0
    if not naming.is_local_stack(stack):
        select(pulumi, stack)  # before Vault is asked: a stack the backend lacks is the first thing said
    preflight(stack, action)
    if naming.is_local_stack(stack):
        select(pulumi, stack)  # the local environment's own backend: created on first use
    policy = ["--policy-pack", POLICY_PACK] if action in ("preview", "up") else []
    os.chdir(PROJECT_DIR)
    os.execvp("pulumi", ["pulumi", action, "--stack", stack, *policy, *flags])


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("deploy.stack", __doc__)
    ap.add_argument("action", choices=ACTIONS)
    ap.add_argument("--stack", default=os.environ.get("STACK", cli.DEFAULT_STACK),
                    help="the stack (default: $STACK, else local); checked by the stack-name rule")
    args, flags = ap.parse_known_args(argv)

    def run() -> int:
        check_stack_name(args.stack)
        check_local_environment(args.stack)
        return hand_over(args.stack, args.action, flags)

    return cli.run(args.action, run)


if __name__ == "__main__":
    sys.exit(main())
