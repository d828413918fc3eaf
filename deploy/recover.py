"""`make recover STACK=<env>` (`python -m deploy.recover`): settle what a killed `up` or `destroy` left,
so that the next `make up` finishes the change with nothing duplicated.

A CLI killed with SIGKILL (a lost CI runner, an OOM kill) leaves the backend's lock and, with
checkpoints on, the operations that were in flight. `pulumi refresh` settles the pending updates and
deletes by reading what really exists, but not the pending *creates*: the CLI (v3.274) keeps them
and the next `up` creates those objects again. For most of this program's objects that is an upsert
(Kubernetes server-side apply, a Vault KV write, a RandomPassword that exists only in the state), but
Helm refuses to install a release whose name is in use ("cannot re-use a name that is still in use"),
and `refresh --import-pending-creates` drops the pending create instead of importing it (tried on
v3.274.1). So, in order:

1. `pulumi cancel`: the lock the killed run held (run this only when that run is really gone);
2. each pending create of a Helm release is looked up in Helm's own record (its release Secrets):
   one that was installed is *adopted* -- imported under its parent and provider, unprotected, so the
   next `up` updates it in place; one that was never installed is left to be created; one whose
   install was itself cut off (`pending-install`) stops the recovery with the command that clears it;
3. `pulumi refresh --clear-pending-creates`: the rest of the pending operations, settled;
4. `pulumi import` of the adopted releases; the state is read back: no operation is pending.

Then `make preview STACK=<env>` shows what is left and `make up STACK=<env>` finishes it.
Exit status: 0 recovered (or nothing to recover); 1 a release needs a hand first (nothing changed but
the lock); 2 unusable input or a command that failed (its message is printed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from clients.pulumi import PulumiDriver
from config import cli
from config.errors import TestinfraError
from config.naming import RELEASE_TYPE

ADOPTABLE_STATUSES = frozenset({"deployed", "failed", "superseded"})


class RecoveryProblem(TestinfraError):
    """A step of the recovery could not be taken; the message says which and what to do."""


@dataclass(frozen=True)
class PendingCreate:
    """One `creating` operation of a checkpoint: the object may or may not have been made."""

    urn: str
    type: str
    inputs: dict[str, Any]
    parent: str | None
    provider: str | None

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    @classmethod
    def from_operation(cls, op: dict[str, Any]) -> PendingCreate:
        res = op["resource"]
        return cls(urn=res["urn"], type=res["type"], inputs=dict(res.get("inputs") or {}),
                   parent=res.get("parent"), provider=res.get("provider"))


@dataclass(frozen=True)
class Adoption:
    """A release the killed run installed: imported into the state under the URN the program gives it."""

    create: PendingCreate
    namespace: str
    release: str
    status: str

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.release}"  # the kubernetes provider's id of a helm.sh/v3 Release


@dataclass
class RecoveryPlan:
    adopt: list[Adoption] = field(default_factory=list)
    create_again: list[PendingCreate] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    other_pending: int = 0

    def import_file(self) -> dict[str, Any]:
        """`pulumi import --file`: each release under its parent and provider (the provider by URN; the
        engine finds its id in the state), so the URN is the one the program declares."""
        names: dict[str, str] = {}  # URN -> its name in the table
        resources = []
        for a in self.adopt:
            entry: dict[str, Any] = {"type": a.create.type, "name": a.create.name, "id": a.id}
            if a.create.parent:
                entry["parent"] = names.setdefault(a.create.parent, f"ref-{len(names)}")
            if a.create.provider:  # a provider reference is <urn>::<id>
                entry["provider"] = names.setdefault(a.create.provider.rsplit("::", 1)[0], f"ref-{len(names)}")
            resources.append(entry)
        return {"nameTable": {key: urn for urn, key in names.items()}, "resources": resources}


class ReleaseRecords(Protocol):
    def helm_releases(self, namespace: str) -> dict[str, str]:
        """Helm's record (its release Secrets): release name -> status of the newest revision."""
        ...


def pending_operations(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return list(deployment.get("pending_operations") or ())


def plan(deployment: dict[str, Any], records: ReleaseRecords) -> RecoveryPlan:
    result = RecoveryPlan()
    for op in pending_operations(deployment):
        if op.get("type") != "creating":
            result.other_pending += 1
            continue
        create = PendingCreate.from_operation(op)
        if create.type != RELEASE_TYPE:
            result.create_again.append(create)
            continue
        namespace, release = create.inputs.get("namespace"), create.inputs.get("name")
        if not namespace or not release:
            raise RecoveryProblem(f"{create.urn}: the pending create records no release name and namespace; "
                                  "settle it by hand (docs/deploy.md, A killed up)")
        status = records.helm_releases(str(namespace)).get(str(release))
        if status is None:
            result.create_again.append(create)
        elif status in ADOPTABLE_STATUSES:
            result.adopt.append(Adoption(create, str(namespace), str(release), status))
        else:
            result.blocked.append(
                f"release {release} in {namespace} is `{status}` in Helm's record (its install was cut off "
                f"with the run): `helm uninstall {release} -n {namespace}`, then make recover again")
    return result


Pulumi = Callable[[Sequence[str]], subprocess.CompletedProcess[str]]


def _checked(pulumi: Pulumi, args: Sequence[str], what: str) -> str:
    proc = pulumi(args)
    if proc.returncode != 0:
        said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-6:]
        raise RecoveryProblem(f"{what} (`pulumi {' '.join(args[:1])}`) failed: " + " / ".join(said))
    return proc.stdout


def deployment_of(pulumi: Pulumi, stack: str) -> dict[str, Any]:
    exported = _checked(pulumi, ["stack", "export", "--stack", stack], "reading the state")
    return dict(json.loads(exported).get("deployment") or {})


def recover(stack: str, pulumi: Pulumi, records: ReleaseRecords, out: Callable[[str], None] = print) -> int:
    cancelled = pulumi(["cancel", "--yes", "--stack", stack, "--non-interactive"])
    out("lock: released" if cancelled.returncode == 0 else
        "lock: none to release (" + (cancelled.stderr.strip().splitlines() or ["no update in progress"])[-1] + ")")
    deployment = deployment_of(pulumi, stack)
    if not pending_operations(deployment):
        out(f"no operation was in flight in {stack}'s state: nothing more to settle; make up STACK={stack}")
        return 0
    recovery = plan(deployment, records)
    if recovery.blocked:
        for line in recovery.blocked:
            out(f"needs a hand first: {line}")
        return 1
    _checked(pulumi, ["refresh", "--yes", "--skip-preview", "--non-interactive", "--clear-pending-creates",
                      "--stack", stack], "settling the pending operations")
    if recovery.adopt:
        with tempfile.TemporaryDirectory(prefix="recover-") as tmp:
            spec = Path(tmp) / "adopt.json"
            spec.write_text(json.dumps(recovery.import_file()))
            _checked(pulumi, ["import", "--file", str(spec), "--yes", "--skip-preview", "--protect=false",
                              "--generate-code=false", "--non-interactive", "--stack", stack],
                     "adopting the installed releases")
    left = pending_operations(deployment_of(pulumi, stack))
    if left:
        raise RecoveryProblem(f"{len(left)} operation(s) still pending after the refresh: "
                              + ", ".join(op["resource"]["urn"] for op in left[:5]))
    for a in recovery.adopt:
        out(f"adopted: release {a.release} in {a.namespace} ({a.status}) as {a.create.name}")
    for c in recovery.create_again:
        out(f"to be made again by the next up (an upsert): {c.type.rsplit(':', 1)[-1]} {c.name}")
    out(f"settled: {recovery.other_pending} update/delete(s) read back, {len(recovery.adopt)} release(s) adopted, "
        f"{len(recovery.create_again)} create(s) left to the next up. Next: make preview STACK={stack}, "
        f"then make up STACK={stack}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("deploy.recover", __doc__, epilog="environment: the Pulumi CLI's (PULUMI_BACKEND_URL, "
                    "PULUMI_CONFIG_PASSPHRASE), KUBECONFIG, and the provider credentials `make up` uses")
    cli.add_stack(ap)
    ns = ap.parse_args(argv)
    return cli.run("recover", lambda: recover_stack(ns.stack))


def recover_stack(stack: str) -> int:
    from clients.kubernetes import ClientCluster
    from config.files import PROJECT_DIR
    from config.loading import stack_settings

    driver = PulumiDriver(env=os.environ)
    settings = stack_settings(stack, project_dir=PROJECT_DIR)
    records = ClientCluster(settings.stack.kube_context, os.environ.get("KUBECONFIG"))
    return recover(stack, driver.run_cli, records)


if __name__ == "__main__":
    sys.exit(main())
