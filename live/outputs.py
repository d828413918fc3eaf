"""Reading a stack's outputs (the 1.x contract of config/contract.py) for the live commands.

Owns: getting them from `pulumi stack output --json` or a saved file, bounded in size, and
checking the part `live.run` relies on -- service names that are DNS labels (they become file
names), the CronJob and Job names, the deadlines -- so a malformed or hostile file is one message
(exit 2), never a traceback or a path outside the JUnit folder. Fields a later 1.x adds are ignored.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, ValidationError

from config.errors import EnvironmentProblem
from config.types import DnsLabel

MAX_OUTPUTS_BYTES = 5 * 1024 * 1024
SUPPORTED_MAJOR = "1"  # the contract's major this reader understands (schemas/stack-outputs.schema.json)


class OutputsProblem(EnvironmentProblem):
    """The stack outputs cannot be read or are not the testinfra contract; says how to get good ones."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


VaultPath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)+$", max_length=512)]


class ServiceOutputs(_Lenient):
    cron_job: DnsLabel = Field(alias="cronJob")
    job: DnsLabel | None = None
    secret_name: DnsLabel | None = Field(default=None, alias="secretName")
    vault_keys: tuple[VaultPath, ...] = Field(default=(), alias="vaultKeys", max_length=1000)
    image: Annotated[str, StringConstraints(max_length=512)] = ""
    timeout_seconds: StrictInt = Field(alias="timeoutSeconds", ge=1, le=86400)
    active_deadline_seconds: StrictInt | None = Field(default=None, alias="activeDeadlineSeconds", ge=1, le=86400)

    @property
    def deadline_seconds(self) -> int:
        return self.active_deadline_seconds or self.timeout_seconds


class KeyFacts(_Lenient):
    owner: Annotated[str, StringConstraints(max_length=200)]
    source: str


class VaultOutputs(_Lenient):
    address: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=2048)]
    role: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    auth_mount: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(alias="authMount")
    keys: dict[VaultPath, KeyFacts] = Field(default_factory=dict, max_length=10_000)  # since 1.1

    def owner(self, path: str) -> str:
        facts = self.keys.get(path)
        return facts.owner if facts else "its owner (outputs before contract 1.1 do not name it)"


class StackOutputs(_Lenient):
    schema_version: Annotated[str, StringConstraints(pattern=r"^1\.[0-9]+$")] = Field(alias="schemaVersion")
    environment: Annotated[str, StringConstraints(max_length=63)] = ""
    kube_context: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(alias="kubeContext")
    namespace: DnsLabel
    vault: VaultOutputs | None = None  # required by the contract; optional here so `--outputs` of old tests read
    services: dict[DnsLabel, ServiceOutputs] = Field(min_length=1, max_length=10_000)


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p + 1) if isinstance(p, int) else str(p) for p in err["loc"]) or "(top level)"
        what = "missing" if err["type"] == "missing" else (
            "not a DNS label (lower-case letters, digits, '-'; at most 63)" if "pattern" in err["type"]
            else err["msg"].removeprefix("Value error, ").lower())
        problems.append(f"{where}: {what}")
    more = len(exc.errors()) - len(problems)
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def parse(text: str | bytes, source: str) -> StackOutputs:
    if len(text) > MAX_OUTPUTS_BYTES:
        raise OutputsProblem(f"{source}: larger than {MAX_OUTPUTS_BYTES // 2**20} MiB: not a stack outputs file")
    try:
        data: Any = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise OutputsProblem(f"{source}: not JSON ({type(exc).__name__}): save the outputs with "
                             "`pulumi stack output --json -s <env> > FILE`") from None
    if not isinstance(data, dict) or "services" not in data:
        raise OutputsProblem(f"{source}: no `services`: is this the testinfra stack's `pulumi stack output --json`?")
    version = data.get("schemaVersion")
    major = version.split(".", 1)[0] if isinstance(version, str) else None
    if major and major.isdigit() and major != SUPPORTED_MAJOR:
        raise OutputsProblem(f"{source}: schemaVersion {str(version)[:20]}: major {major} is not supported by this "
                             f"reader; it reads {SUPPORTED_MAJOR}.x (update the reader, or read a stack of the "
                             f"{SUPPORTED_MAJOR}.x contract)")
    try:
        return StackOutputs.model_validate(data)
    except ValidationError as exc:
        raise OutputsProblem(f"{source}: not the testinfra outputs contract 1.x: {_describe(exc)}") from None


def read_file(path: Path) -> StackOutputs:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_OUTPUTS_BYTES + 1)  # bounded: /dev/zero or a huge file is refused, not read
    except OSError as exc:
        raise OutputsProblem(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    return parse(data, str(path))


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


def main(argv: list[str] | None = None) -> int:
    """`python -m live.outputs FILE` (whether a saved outputs file is one this reader can use), or
    `--stack S --save FILE` (`make outputs`: save the stack's outputs there, then check them)."""
    import argparse
    import sys

    from config.naming import is_stack_name

    ap = argparse.ArgumentParser(prog="python -m live.outputs",
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
