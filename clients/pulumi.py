"""Pulumi, for the commands around a stack: the one driver (PulumiDriver, on the Automation API) and
`pulumi stack output --json` (the outputs contract's source), always with the caller's backend login
and credentials and never interactively.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from config import naming
from config.errors import EnvironmentProblem, MissingTool
from config.files import PROJECT_DIR
from config.outputs import OutputsProblem, StackOutputs, parse

T = TypeVar("T")
CLI_MISSING = ("pulumi CLI not found: install it (https://www.pulumi.com/docs/install/), or build it here with "
               "`make e2e-tools`")


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


def said(error: Exception) -> str:
    """What the CLI printed on stderr, from an Automation API error (its text holds code, stdout, stderr);
    its stdout's end when stderr is empty (an update's diagnostics go to stdout)."""
    text = str(error)
    at = text.rfind("stderr:")
    if at < 0:
        return text.strip()[-1500:]
    stderr = text[at + len("stderr:"):].strip()
    out = text.rfind("stdout:", 0, at)
    return (stderr or (text[out + len("stdout:"):at].strip() if out >= 0 else ""))[-1500:]


class PulumiDriver:
    """The Pulumi CLI through the Automation API (`pulumi.automation`) over this project's folder: the one
    way the product runs Pulumi, with the caller's backend login and credentials (the environment).
    The CLI itself only where the API has no verb (`stack rm --remove-backups`; `stack output --json`
    without showing secrets: stack_output_json) or where a person watches it (deploy/stack.py hands
    `make preview|up|destroy` to the CLI). Every failure is one PulumiCliError quoting the CLI."""

    def __init__(self, project_dir: Path = PROJECT_DIR, env: Mapping[str, str] | None = None) -> None:
        self.project_dir = project_dir
        self.env = {"PULUMI_SKIP_CONFIRMATIONS": "true", **(env or {})}
        self._workspaces: dict[str | None, Any] = {}

    def workspace(self, secrets_provider: str | None = None) -> Any:
        """The LocalWorkspace of the project (one per secrets provider asked for)."""
        from pulumi import automation as auto

        if secrets_provider not in self._workspaces:
            try:
                command = auto.PulumiCommand(skip_version_check=True)
            except (FileNotFoundError, subprocess.CalledProcessError):
                raise MissingTool(CLI_MISSING) from None
            self._workspaces[secrets_provider] = auto.LocalWorkspace(
                work_dir=str(self.project_dir), env_vars=self.env, secrets_provider=secrets_provider,
                pulumi_command=command)
        return self._workspaces[secrets_provider]

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """`fn()`; the API's typed errors as one PulumiCliError in the CLI's own words."""
        from pulumi import automation as auto

        try:
            return fn()
        except auto.ConcurrentUpdateError as exc:
            raise PulumiCliError(f"`pulumi {what}`: another update holds the stack's lock ({said(exc)}); wait for it, "
                                 "or release a killed run's lock (`make recover`)") from None
        except auto.StackNotFoundError as exc:
            raise PulumiCliError(f"`pulumi {what}`: no such stack in this backend ({said(exc)})") from None
        except auto.CommandError as exc:
            raise PulumiCliError(f"`pulumi {what}` failed: {said(exc)}") from None

    def stack(self, name: str) -> Any:
        """The stack, selected (never created)."""
        from pulumi import automation as auto

        return self._call(f"stack select {name}", lambda: auto.Stack.select(name, self.workspace()))

    def create_or_select(self, name: str, secrets_provider: str) -> Any:
        from pulumi import automation as auto

        return self._call(f"stack select --create {name}",
                          lambda: auto.Stack.create_or_select(name, self.workspace(secrets_provider)))

    def create(self, name: str, secrets_provider: str | None) -> Any:
        from pulumi import automation as auto

        return self._call(f"stack init {name}", lambda: auto.Stack.create(name, self.workspace(secrets_provider)))

    def stacks(self) -> list[str]:
        """The project's stacks in the backend, by their short names."""
        listed = self._call("stack ls", lambda: self.workspace().list_stacks())
        return sorted(str(s.name).rpartition("/")[2] for s in listed)

    def review_stacks(self) -> list[str]:
        return sorted((s for s in self.stacks() if naming.is_review_stack(s)), key=lambda n: int(n[3:]))

    def tags(self, stack: str) -> dict[str, str]:
        """The stack's tags. A tag that is not there is absent from the answer; a backend that could not
        be read is an error -- never taken for "no tag" (no expiry would mean: remove it)."""
        try:
            tags = self._call(f"stack tag ls --stack {stack}", lambda: self.workspace().list_tags(stack))
        except PulumiCliError as exc:
            raise PulumiCliError(f"could not read the tags of {stack}: {exc}; left as it is") from None
        return {str(k): str(v) for k, v in dict(tags).items()}

    def tag(self, stack: str, name: str) -> str | None:
        return self.tags(stack).get(name) or None

    def set_tag(self, stack: str, name: str, value: str) -> None:
        self._call(f"stack tag set {name} --stack {stack}", lambda: self.workspace().set_tag(stack, name, value))

    def cancel(self, stack: str) -> None:
        """The stack's lock released (a killed run's; none: a no-op)."""
        self._call(f"cancel --stack {stack}", lambda: self.stack(stack).cancel())

    # run_program: the providers are configured by the program with this caller's credentials. From the
    # state they would be the last deployer's (a kube provider records the KUBECONFIG path it saw: a
    # pull request job's exchanged one, which the sweep neither has nor may use).
    def refresh(self, stack: str, *, clear_pending_creates: bool = False, run_program: bool = False) -> None:
        self._call(f"refresh --stack {stack}", lambda: self.stack(stack).refresh(
            clear_pending_creates=clear_pending_creates or None, run_program=run_program or None))

    def preview_refresh(self, stack: str, *, exclude: list[str], on_event: Callable[[Any], None]) -> None:
        """`pulumi refresh --preview-only` (nothing written), its engine events to `on_event`; never a
        secret's value in them (show_secrets off). The CLI refuses --preview-only with --yes."""
        stack_ = self.stack(stack)
        self._call(f"refresh --preview-only --stack {stack}", lambda: stack_.preview_refresh(
            exclude=exclude or None, on_event=on_event, show_secrets=False, suppress_progress=True, color="never"))

    def destroy(self, stack: str, *, continue_on_error: bool = False, run_program: bool = False) -> None:
        self._call(f"destroy --stack {stack}", lambda: self.stack(stack).destroy(
            continue_on_error=continue_on_error or None, run_program=run_program or None))

    def export(self, stack: str) -> dict[str, Any]:
        deployment = self._call(f"stack export --stack {stack}", lambda: self.stack(stack).export_stack())
        return {"version": deployment.version, "deployment": deployment.deployment}

    def remove(self, stack: str) -> None:
        """`stack rm --yes --remove-backups`: the stack, its history, checkpoint backups and tags (the API's
        remove_stack keeps the backups)."""
        self.cli("stack", "rm", "--yes", "--remove-backups", stack)

    def run_cli(self, args: Sequence[str], *, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        """A CLI command as is, its exit status for the caller to read (recover and rotate read the CLI's
        own answers: `import --file`, a lock's refusal), in the project with the same environment."""
        try:
            return subprocess.run(["pulumi", *args], capture_output=True, text=True, check=False, timeout=timeout,
                                  cwd=self.project_dir, env={**os.environ, **self.env}, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise MissingTool(CLI_MISSING) from None
        except subprocess.TimeoutExpired:
            raise PulumiCliError(f"`pulumi {' '.join(args[:2])}` did not finish within {timeout:g} s") from None

    def deploy(self, stack: str, action: str, *flags: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        """`make up`'s path for `stack` (deploy/stack.py: the stack checks, the preflight, the policy
        pack), run to completion, its output captured."""
        return subprocess.run([sys.executable, "-m", "deploy.stack", action, *flags], capture_output=True, text=True,
                              check=False, timeout=timeout, cwd=self.project_dir,
                              env={**os.environ, **self.env, "STACK": stack}, stdin=subprocess.DEVNULL)

    def cli(self, *args: str) -> str:
        """A CLI command the API has no verb for, in the project, with the same environment."""
        workspace = self.workspace()
        result = self._call(" ".join(args[:3]), lambda: workspace.pulumi_command.run(
            list(args), cwd=str(self.project_dir), additional_env=self.env))
        return str(result.stdout)
