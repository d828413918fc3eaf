"""Reading a stack's outputs: the lenient view of the contract (config/contract.py) for the commands
around a stack -- the contract's types, unknown fields ignored, the major checked.

Owns: parsing them (a saved file, bounded in size, or the CLI's answer: clients.pulumi.from_stack) and
checking the part `make run` relies on -- service names that are DNS labels (they become file
names), the CronJob and Job names, the deadlines -- so a malformed or hostile file is one message
(exit 2), never a traceback or a path outside the JUnit folder. Fields a later 1.x adds are ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, ValidationError

from config.contract import CONTRACT_MAJOR, ContractDnsLabel, ContractVaultPath, SchemaVersion
from config.errors import EnvironmentProblem

MAX_OUTPUTS_BYTES = 5 * 1024 * 1024
SUPPORTED_MAJOR = CONTRACT_MAJOR  # the contract's major this reader understands (config/contract.py)


class OutputsProblem(EnvironmentProblem):
    """The stack outputs cannot be read or are not the testinfra contract; says how to get good ones."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# The contract's types (config/contract.py), bounded for a reader of files anyone may hand it.
VaultPath = Annotated[ContractVaultPath, StringConstraints(max_length=512)]
DnsLabel = ContractDnsLabel


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
    schema_version: SchemaVersion = Field(alias="schemaVersion")
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
