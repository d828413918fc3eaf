"""Review environments: one stack per pull request, `pr-<n>`, and a teardown that never forgets.

Owns: `make review-up PR=<n>` (the stack file from the template Pulumi.review.yaml, the stack created
in the backend with its expiry as a stack tag, then the deploy path (deploy/stack.py: the
preflight, the identity check and the policy pack), `make review-down PR=<n>` (cancel and refresh
what a killed run left, destroy, the Vault keys it wrote with every version, its policy and role,
and only then `pulumi stack rm`), and `make review-sweep` (down for every review stack past its
expiry or whose pull request is closed). Every step can be repeated: a teardown that failed or was
killed leaves the stack listed in the backend, and the next down or sweep finishes it.

Nothing here calls GitHub: closed pull requests come in as numbers (arguments or a file).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clients.pulumi import PulumiCliError, PulumiDriver
from config import cli, naming
from config.errors import ConfigError, EnvironmentProblem
from deploy.review_stack_file import ENCRYPTION_TAGS, encryption_lines, stack_file, write_stack_file

EXPIRES_TAG = "testinfra:review-expires-at"
# When the last operation that takes the stack's lock began (review-up before its deploy, a teardown
# once its refresh held the lock): a lock is cancelled only when this is older than the longest run.
OPERATION_TAG = "testinfra:review-operation-at"
DEFAULT_TTL_HOURS = 72
DEPLOY_TIMEOUT = 1800
# The longest a review job's run may hold the stack's lock: the review workflow's timeout-minutes (a
# test reads it there). A younger lock may belong to a running job; it is never cancelled.
LONGEST_RUN = timedelta(minutes=45)


class ReviewError(EnvironmentProblem):
    """A review command could not finish; the stack stays listed for the next down or sweep."""


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str | None) -> datetime | None:
    try:
        return datetime.strptime(text or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def up(pull_request: str, pulumi: PulumiDriver, *, ttl_hours: float = DEFAULT_TTL_HOURS,
       now: datetime | None = None) -> str:
    stack = naming.review_stack(pull_request)
    beside = sorted(set(pulumi.stacks()) & {*naming.ENVIRONMENTS, naming.REVIEW_TEMPLATE})
    if beside:
        raise ReviewError(f"this backend holds {', '.join(beside)}: review stacks are kept in a backend of their "
                          "own (PULUMI_BACKEND_URL: the review state, docs/review-environments.md), never beside "
                          "staging's or prod's state")
    write_stack_file(stack, project=pulumi.project_dir)
    from config.loading import stack_settings
    from config.review_access import secrets_provider

    # The state and its secrets are encrypted by the stack's own transit key (VAULT_ADDR/VAULT_TOKEN:
    # the pull request's token may use that key and no other's).
    pulumi.create_or_select(stack, secrets_provider(stack_settings(stack, project_dir=pulumi.project_dir)))
    moment = now or datetime.now(UTC)
    pulumi.set_tag(stack, EXPIRES_TAG, stamp(moment + timedelta(hours=ttl_hours)))
    for line, value in encryption_lines(stack, pulumi.project_dir).items():
        pulumi.set_tag(stack, ENCRYPTION_TAGS[line], value)
    pulumi.set_tag(stack, OPERATION_TAG, stamp(moment))
    # The deploy path's own checks (the preflight, the identity, the policy pack), as `make up` runs it.
    deploy = pulumi.deploy(stack, "up", "--yes", "--skip-preview", timeout=DEPLOY_TIMEOUT)
    if deploy.returncode != 0:
        said = (deploy.stderr.strip() or deploy.stdout.strip())[-1500:]
        raise ReviewError(f"the deploy of {stack} failed (exit {deploy.returncode}): {said}")
    return stack


def down(stack: str, pulumi: PulumiDriver, vault: VaultCleanup | None, *, now: datetime | None = None,
         longest_run: timedelta = LONGEST_RUN) -> None:
    """Finish whatever is left of `stack`, in an order that can be repeated after any failure. A lock
    is cancelled only when the last operation began longer ago than LONGEST_RUN (a killed run's);
    a younger one may be the pull request's own job, and the teardown then stops at the lock and
    leaves the stack for the next try."""
    if stack not in pulumi.review_stacks():
        stack_file(stack, pulumi.project_dir).unlink(missing_ok=True)
        return
    moment = now or datetime.now(UTC)
    tags = pulumi.tags(stack)
    write_stack_file(stack, encryption={line: tags[tag] for line, tag in ENCRYPTION_TAGS.items() if tag in tags},
                     project=pulumi.project_dir)
    began = parse_stamp(tags.get(OPERATION_TAG))
    if began is not None and moment - began > longest_run:
        # A killed run's lock. None to release: the CLI says so; a lock it could not release stops the
        # refresh below, reported.
        with contextlib.suppress(PulumiCliError):
            pulumi.cancel(stack)
    pulumi.refresh(stack, clear_pending_creates=True, run_program=True)
    pulumi.set_tag(stack, OPERATION_TAG, stamp(moment))
    pulumi.destroy(stack, continue_on_error=True, run_program=True)
    if vault:
        vault.remove(stack, pulumi.project_dir)
    # Refuses while the state still holds resources; --remove-backups takes the checkpoint backups,
    # history and tags with it, so no state of the review stack is left in the bucket.
    pulumi.remove(stack)
    stack_file(stack, pulumi.project_dir).unlink(missing_ok=True)


class VaultCleanup:
    """What `destroy` leaves in Vault on purpose (the program retains keys it wrote): the review
    stack's written keys with every version. Its policies and roles are the provisioner's
    (`make review-revoke`)."""

    def __init__(self, token: str, ca: str | None) -> None:
        self.token, self.ca = token, ca

    def remove(self, stack: str, project: Path) -> None:
        from clients.vault import HvacVaultReader
        from config.loading import stack_settings

        settings = stack_settings(stack, project_dir=project)
        # The Vault the stack deploys to (its stack file), never one named elsewhere; no redirect is
        # followed, so the token reaches no other server.
        vault = HvacVaultReader(settings.stack.vault_address.rstrip("/"), self.token, ca=self.ca,
                                address_from=f"vaultAddress in {settings.stack_file}")
        for write in settings.vault_key_writes:
            vault.delete_key(write.key.mount, write.key.path)


@dataclass
class SweepReport:
    removed: list[str] = field(default_factory=list)
    left: list[tuple[str, str]] = field(default_factory=list)  # (stack, why)
    kept: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # lines of the closed-PRs input that are not numbers

    def text(self) -> str:
        lines = [f"review-sweep: removed {len(self.removed)}, left {len(self.left)}, kept {len(self.kept)}"]
        lines += [f"  removed {s}" for s in self.removed]
        lines += [f"  LEFT {s}: {why}" for s, why in self.left]
        lines += [f"  kept {s} (open, not expired)" for s in self.kept]
        lines += [f"  SKIPPED {what}" for what in self.skipped]
        return "\n".join(lines)


def due(stack: str, expires_at: str | None, closed: set[int], now: datetime) -> str | None:
    """Why `stack` is to be removed now, or None."""
    if int(stack[len(naming.REVIEW_STACK_PREFIX):]) in closed:
        return "its pull request is closed"
    if expires_at is None:
        return "it has no expiry (a review-up that never finished)"
    when = parse_stamp(expires_at)
    if when is None:
        return f"its expiry {expires_at[:40]!r} is not a time"
    return f"it expired at {expires_at}" if when <= now else None


Revoke = Callable[[str], str]  # pr-<n> -> what the provisioner removed (deploy/review_access.py)


def sweep(pulumi: PulumiDriver, vault: VaultCleanup | None, closed: set[int], now: datetime,
          skipped: Sequence[str] = (), longest_run: timedelta = LONGEST_RUN, *,
          revoke: Revoke | None = None, granted: Sequence[str] = ()) -> SweepReport:
    """Every review stack past its expiry or whose pull request is closed: down, then (with the
    platform's credentials) its grant revoked; and the grant of every closed pull request left without
    a stack."""
    report = SweepReport(skipped=list(skipped))
    for stack in pulumi.review_stacks():
        try:
            why = due(stack, pulumi.tag(stack, EXPIRES_TAG), closed, now)
            if why is None:
                report.kept.append(stack)
                continue
            down(stack, pulumi, vault, now=now, longest_run=longest_run)
            report.removed.append(f"{stack} ({why})" + (f"; {revoke(stack)}" if revoke else ""))
        except (EnvironmentProblem, ConfigError, subprocess.TimeoutExpired) as exc:
            report.left.append((stack, str(exc)))
    for stack in granted:
        if revoke is None or int(stack[len(naming.REVIEW_STACK_PREFIX):]) not in closed or stack in pulumi.review_stacks():
            continue
        try:
            report.removed.append(f"{stack}'s grant (its pull request is closed); {revoke(stack)}")
        except (EnvironmentProblem, ConfigError) as exc:
            report.left.append((stack, str(exc)))
    return report


def closed_numbers(values: Iterable[str], file: Path | None) -> tuple[set[int], list[str]]:
    """The closed pull requests' numbers, and each word that is not one (reported, skipped): one bad
    line must not stop the sweep of every other stack."""
    lines = [("--closed", v) for v in values]
    if file is not None:
        lines += [(f"{file}:{n}", line) for n, line in enumerate(file.read_text().splitlines(), start=1)]
    numbers, skipped = set(), []
    for where, line in lines:
        for word in line.replace(",", " ").split():
            try:
                numbers.add(int(naming.review_stack(word)[len(naming.REVIEW_STACK_PREFIX):]))
            except ValueError as exc:
                skipped.append(f"{where}: {exc}")
    return numbers, skipped


def vault_from_env() -> VaultCleanup | None:
    token = os.environ.get("VAULT_TOKEN")
    return VaultCleanup(token, os.environ.get("VAULT_CACERT")) if token else None


def main(argv: Sequence[str] | None = None) -> int:
    ap = cli.parser("deploy.review", __doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("up", "down", "stack-file"):
        sub.add_parser(name).add_argument("pr")
    sub.choices["up"].add_argument("--ttl-hours", type=float, default=DEFAULT_TTL_HOURS)
    sw = sub.add_parser("sweep")
    sw.add_argument("--closed", nargs="*", default=[], help="closed pull request numbers")
    sw.add_argument("--closed-file", type=Path, help="a file of closed pull request numbers")
    for name in ("down", "sweep"):
        sub.choices[name].add_argument(
            "--lock-minutes", type=float, default=LONGEST_RUN.total_seconds() / 60,
            help="cancel a stack's lock only when its last operation began longer ago than this (default: "
                 f"{LONGEST_RUN.total_seconds() / 60:g}, the review workflow's timeout-minutes)")
    args = ap.parse_args(argv)
    return cli.run("review", lambda: command(args))


def command(args: argparse.Namespace) -> int:
    try:
        return _command(args, PulumiDriver(env=os.environ))
    except (ValueError, OSError, subprocess.TimeoutExpired) as exc:  # a PR number, a file, a CLI that hung
        raise ReviewError(str(exc)) from None


def _command(args: argparse.Namespace, pulumi: PulumiDriver) -> int:
    longest_run = timedelta(minutes=getattr(args, "lock_minutes", 0.0))
    if args.command in ("down", "sweep") and not 0 < args.lock_minutes <= 24 * 60:
        raise ValueError(f"--lock-minutes {args.lock_minutes:g}: between 0 and 1440 (a day)")
    if args.command == "sweep":
        closed, skipped = closed_numbers(args.closed, args.closed_file)
        from deploy.review_grants import granted_stacks, revoker

        revoke = revoker() if os.environ.get("VAULT_TOKEN") else None
        report = sweep(pulumi, vault_from_env(), closed, datetime.now(UTC), skipped, longest_run, revoke=revoke,
                       granted=granted_stacks() if revoke else ())
        print(report.text())
        return 1 if report.left or report.skipped else 0
    stack = naming.review_stack(args.pr)
    if args.command == "stack-file":
        print(write_stack_file(stack))
    elif args.command == "up":
        if not 0 < args.ttl_hours <= 24 * 30:
            raise ValueError(f"--ttl-hours {args.ttl_hours:g}: between 0 and 720 (30 days)")
        up(args.pr, pulumi, ttl_hours=args.ttl_hours)
        print(f"review-up: {stack} is up; it expires in {args.ttl_hours:g} h (make review-sweep removes it then)")
    else:
        down(stack, pulumi, vault_from_env(), longest_run=longest_run)
        print(f"review-down: {stack} is gone (its releases, ExternalSecrets and store, its Vault keys, the stack); "
              "`make review-revoke` removes its grant")
    return 0


if __name__ == "__main__":
    sys.exit(main())
