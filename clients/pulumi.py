"""The Pulumi CLI, run for the commands around a stack: `pulumi stack output --json` (the outputs
contract's source) and the `Cli` the review environments drive (stacks, tags, cancel, refresh,
destroy), always with the caller's backend login and credentials and never interactively.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from config import naming
from config.errors import EnvironmentProblem
from config.files import PROJECT_DIR
from config.outputs import OutputsProblem, StackOutputs, parse

CLI_TIMEOUT = 1800


class PulumiCliError(EnvironmentProblem):
    """A Pulumi CLI command failed; the message quotes the command and what it said."""


def stack_output_json(stack: str) -> bytes:
    """`pulumi stack output --json` of `stack`, as the CLI prints it."""
    argv = ["pulumi", "stack", "output", "--json", "--stack", stack]
    try:
        proc = subprocess.run(argv, capture_output=True, check=False, timeout=300)
    except FileNotFoundError:
        raise OutputsProblem("the Pulumi CLI is not installed (needed to read the stack outputs): install it, "
                             "or pass --outputs FILE saved by `pulumi stack output --json`") from None
    except subprocess.TimeoutExpired:
        raise OutputsProblem(f"`{' '.join(argv)}` did not answer within 300 s; or pass --outputs FILE") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[-300:]
        raise OutputsProblem(f"`{' '.join(argv)}` failed: {err or 'no output'}; or pass --outputs FILE")
    return proc.stdout


def from_stack(stack: str) -> StackOutputs:
    return parse(stack_output_json(stack), f"`pulumi stack output --json --stack {stack}`")


@dataclass
class Cli:
    """The Pulumi CLI in the project, with the caller's backend login and credentials."""

    project: Path = PROJECT_DIR
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def run(self, *args: str, check: bool = True, stack_env: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "PULUMI_SKIP_CONFIRMATIONS": "true"}
        if stack_env:
            env["STACK"] = stack_env
        proc = subprocess.run(list(args), cwd=self.project, env=env, capture_output=True, text=True,
                              timeout=CLI_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            said = (proc.stderr.strip() or proc.stdout.strip())[-1500:]
            raise PulumiCliError(f"`{' '.join(args[:4])}` failed (exit {proc.returncode}): {said}")
        return proc

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("pulumi", *args, "--non-interactive", check=check)

    def review_stacks(self) -> list[str]:
        listed = json.loads(self.pulumi("stack", "ls", "--json").stdout or "[]")
        return sorted((s["name"].rpartition("/")[2] for s in listed
                       if naming.is_review_stack(s["name"].rpartition("/")[2])), key=lambda n: int(n[3:]))

    def tags(self, stack: str) -> dict[str, str]:
        """The stack's tags. A tag that is not there is absent from the answer; a backend that could not
        be read is a ReviewError -- never taken for "no tag" (no expiry would mean: remove it)."""
        got = self.pulumi("stack", "tag", "ls", "--json", "--stack", stack, check=False)
        if got.returncode != 0:
            said = (got.stderr.strip() or got.stdout.strip())[-300:]
            raise PulumiCliError(f"could not read the tags of {stack} (exit {got.returncode}): {said}; left as it is")
        try:
            tags = json.loads(got.stdout or "{}")
        except ValueError:
            raise PulumiCliError(f"could not read the tags of {stack}: the CLI's answer is not JSON; left as it is") from None
        if not isinstance(tags, dict):
            raise PulumiCliError(f"could not read the tags of {stack}: not a map of tags; left as it is")
        return {str(k): str(v) for k, v in tags.items()}

    def tag(self, stack: str, name: str) -> str | None:
        return self.tags(stack).get(name) or None
