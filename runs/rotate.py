"""`make rotate STACK=<env> KEY=<key>` (`python -m runs.rotate`): the rotation drill of a `generated` key.

1. writes a new version the way the program makes values: `pulumi up --replace` of the key's
   RandomPassword (targeted, with its dependents), so the stack's state and Vault agree;
2. runs every service that reads the key, each through `make run`'s readiness gate (ESO is told to
   sync and the suite starts only once its Secret holds the new version), and shows from their
   provenance that each used the new version; reports how long the new version took to reach each;
3. waits the overlap window (default: the longest consumer deadline, so a suite started before the
   rotation can still finish with the old value), checks that no consumer's ExternalSecret and no run
   recorded since the window still had the old version, and only then destroys the old version.

An `external` key is its owner's to rotate (the procedure is printed, nothing changes); a `config` key
is the stack's secret (`pulumi config set --secret`, then `make up`). Exit status: 0 the drill passed;
1 a consumer failed or used the old version (the old version is kept); 3 a secret kept a consumer from
starting; 2 unusable input. No value is read or printed: versions and times only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from clients.kubernetes import ClientCluster
from clients.pulumi import PulumiDriver, from_stack
from config import cli
from config.errors import TestinfraError
from config.outputs import ServiceOutputs, StackOutputs
from config.times import timestamp
from config.vault_keys import VaultKey, version_state
from runs.classify import exit_code
from runs.gate import Gate, split
from runs.outcomes import Outcome, summary
from runs.provenance import MANIFEST_NAME, RunManifest, now
from runs.runner import Runner, run_all

RANDOM_TYPE = "random:index/randomPassword:RandomPassword"


class VersionWriter(Protocol):
    def metadata(self, mount: str, path: str) -> dict[str, Any] | None: ...
    def destroy_versions(self, mount: str, path: str, versions: list[int]) -> None: ...


class DrillProblem(TestinfraError):
    """The drill cannot start or go on; the message says why and what to do."""


def owner_procedure(key: VaultKey, consumers: Sequence[str], stack: str) -> str:
    return (f"{key.full_path} is `external`: {key.owner} owns it and rotates it. Their procedure:\n"
            f"  1. write the new value as a new version: vault kv patch {key.mount}/{key.path} <property>=...\n"
            f"  2. make run STACK={stack} SERVICE=<each of {', '.join(consumers) or 'its consumers'}>: the readiness\n"
            f"     gate syncs ESO and the runs' provenance (build/junit/{MANIFEST_NAME}) names the new version\n"
            "  3. after the overlap window, destroy the old version: vault kv destroy -versions=<old> "
            f"{key.mount}/{key.path}")


def random_password_urn(deployment: dict[str, Any], key: VaultKey) -> str:
    """The URN of the RandomPassword the program makes `key`'s value from."""
    suffix = f"::{key.name}-generated"
    for res in (deployment.get("deployment") or {}).get("resources") or []:
        if res.get("type") == RANDOM_TYPE and str(res.get("urn", "")).endswith(suffix):
            return str(res["urn"])
    raise DrillProblem(f"the stack's state has no generated value for {key.name}: deploy it first (`make up`)")


@dataclass
class Drill:
    stack: str
    key: VaultKey
    consumers: dict[str, ServiceOutputs]
    vault: VersionWriter
    gate: Gate
    runner: Runner
    runs_dir: Path
    overlap_seconds: float
    pulumi: Callable[[list[str]], subprocess.CompletedProcess[str]]
    say: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep

    def version(self) -> tuple[int, str, dict[int, str]]:
        meta = self.vault.metadata(*split(self.key.full_path))
        if meta is None:
            raise DrillProblem(f"Vault has no key {self.key.full_path}: deploy the stack first (`make up`)")
        state = version_state(meta)
        return state.current, state.created_time, dict(state.versions)

    def write_new_version(self) -> None:
        export = self.pulumi(["stack", "export", "--stack", self.stack])
        if export.returncode != 0:
            raise DrillProblem(f"`pulumi stack export` failed: {export.stderr.strip()[-300:]}")
        urn = random_password_urn(json.loads(export.stdout), self.key)
        self.say(f"rotate: a new value for {self.key.name} (pulumi up --replace {urn.rpartition('::')[2]})")
        up = self.pulumi(["up", "--yes", "--skip-preview", "--replace", urn, "--target", urn, "--target-dependents"])
        if up.returncode != 0:
            raise DrillProblem(f"`pulumi up --replace` failed (exit {up.returncode}); nothing was destroyed:\n"
                               f"{(up.stdout + up.stderr).strip()[-1500:]}")

    def run(self) -> int:
        old, _, _ = self.version()
        started = time.monotonic()
        self.write_new_version()
        new, created, _ = self.version()
        if new <= old:
            raise DrillProblem(f"{self.key.full_path} is still at version {old} after the update: nothing to verify")
        self.say(f"rotate: {self.key.full_path} version {old} -> {new} (written {created}); "
                 f"running its consumers: {', '.join(sorted(self.consumers))}")
        outcomes = run_all(self.runner, self.consumers, rerun=False)
        self.runner.say(summary(outcomes))
        manifest = RunManifest(self.runner.run_id, self.runner.caller, self.runner.namespace, now(), now(),
                               exit_code(o.verdict for o in outcomes),
                               {o.service: o.record for o in outcomes if o.record is not None}, stack=self.stack)
        manifest.write(self.runner.junit_dir, self.runs_dir)
        stale = self.report(outcomes, new, created)
        if manifest.exit_code or stale:
            self.say(f"rotate: FAILED -- {'; '.join(stale) or 'a consumer did not pass'}; version {old} is kept "
                     "(nothing destroyed)")
            return manifest.exit_code or 1
        self.say(f"rotate: overlap window {self.overlap_seconds:g} s: version {old} stays readable for runs "
                 "that started before the rotation")
        window_start = datetime.now(UTC)
        self.sleep(self.overlap_seconds)
        late = self.after_window(old, window_start)
        if late:
            self.say(f"rotate: FAILED after the window -- {'; '.join(late)}; version {old} is kept")
            return 1
        self.vault.destroy_versions(*split(self.key.full_path), [old])
        _, _, versions = self.version()
        self.say(f"rotate: version {old} of {self.key.full_path} is {versions.get(old, 'gone')}; drill passed in "
                 f"{time.monotonic() - started:.0f} s")
        return 0

    def report(self, outcomes: list[Outcome], new: int, created: str) -> list[str]:
        """Per consumer: the version its run used (from provenance) and how long the new one took."""
        stale = []
        written = timestamp(created)
        for o in outcomes:
            used = next((k["version"] for k in (o.record.keys if o.record else []) if k["path"] == self.key.full_path),
                        None)
            ready = timestamp((o.record.gate if o.record else {}).get("readyAt"))
            took = f"{(ready - written).total_seconds():.1f} s" if ready and written else "n/a"
            self.say(f"rotate: {o.service:<24} used version {used}  propagation {took}  {o.verdict.reason}")
            if used != new:
                stale.append(f"{o.service} used version {used}, not {new}")
        return stale

    def after_window(self, old: int, window_start: datetime) -> list[str]:
        """Anything that still had the old version once the window was over."""
        late = []
        for service, svc in sorted(self.consumers.items()):
            gated = self.gate.check(service, svc)
            if gated.verdict is not None:
                late.append(f"{service}: {gated.verdict.reason}")
        for manifest in sorted(self.runs_dir.glob(f"*/{MANIFEST_NAME}")):
            try:
                data = json.loads(manifest.read_text())
            except (OSError, ValueError):
                continue
            began = timestamp(str(data.get("startedAt") or ""))
            if began is None or began < window_start:
                continue
            for service, record in (data.get("services") or {}).items():
                for key in record.get("keys") or []:
                    if key.get("path") == self.key.full_path and key.get("version") == old:
                        late.append(f"run {data.get('runId')} ({service}) used version {old} after the window")
        return late


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("runs.rotate", __doc__, epilog="environment: VAULT_TOKEN (the deploy identity's), KUBECONFIG, "
                    "and the Pulumi CLI's (PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE)")
    cli.add_stack(ap)
    ap.add_argument("--key", required=True, help="the catalog's key name (e.g. graph, integration-test-bearer-token)")
    ap.add_argument("--overlap-seconds", type=float, help="how long the old version stays (default: the longest "
                    "consumer's activeDeadlineSeconds)")
    ap.add_argument("--junit-dir", type=Path, default=Path("build/junit"))
    ap.add_argument("--runs-dir", type=Path, default=Path("build/runs"))
    ns = ap.parse_args(argv)
    return cli.run("rotate", lambda: drill(ns))


def drill(ns: argparse.Namespace) -> int:
    from clients.vault import HvacVaultReader
    from config.files import PROJECT_DIR
    from config.loading import stack_settings

    settings = stack_settings(ns.stack, project_dir=PROJECT_DIR)
    key = next((k for k in settings.vault_keys if k.name == ns.key), None)
    if key is None:
        names = ", ".join(sorted(k.name for k in settings.vault_keys))
        raise DrillProblem(f"KEY={ns.key[:64]}: stack {ns.stack} declares no such Vault key; its keys: {names}")
    stack: StackOutputs = from_stack(ns.stack)
    consumers = {n: s for n, s in stack.services.items() if key.full_path in s.vault_keys}
    if key.source == "external":
        print(owner_procedure(key, sorted(consumers), ns.stack), file=sys.stderr)
        return 2
    if key.source == "config":
        raise DrillProblem(f"{key.name} is a `config` key of {settings.stack_file}: rotate it with `pulumi config "
                           f"set --secret --path testinfra:... --stack {ns.stack}`, then `make up`; make rotate "
                           "writes `generated` keys")
    if not consumers:
        raise DrillProblem(f"no enabled service of stack {ns.stack} reads {key.full_path}: nothing to verify")
    token = os.environ.get("VAULT_TOKEN")
    if not token:
        raise DrillProblem("VAULT_TOKEN is not set: the drill reads versions and destroys the old one with the "
                           "deploy identity's token")
    reader = HvacVaultReader(settings.stack.vault_address.rstrip("/"), token,
                             address_from=f"vaultAddress in {settings.stack_file}")
    cluster = ClientCluster(settings.stack.kube_context, os.environ.get("KUBECONFIG"))
    gate = Gate(reader, cluster, stack.vault, stack.namespace)
    ns.junit_dir.mkdir(parents=True, exist_ok=True)
    run_id = f"rotate-{key.name}-{int(time.time())}"
    runner = Runner(cluster, stack.namespace, ns.junit_dir, run_id, "make-rotate", gate=gate)
    overlap = ns.overlap_seconds if ns.overlap_seconds is not None else max(
        s.deadline_seconds for s in consumers.values())
    if not 0 <= overlap <= 7 * 86400:
        raise DrillProblem("--overlap-seconds: between 0 and 604800 (a week)")

    driver = PulumiDriver(env=os.environ)

    def pulumi(args: list[str]) -> subprocess.CompletedProcess[str]:
        # `up` through the deploy path (its checks and the policy pack); anything else as the CLI answers.
        return driver.deploy(ns.stack, *args) if args[0] == "up" else driver.run_cli(args)

    return Drill(ns.stack, key, consumers, reader, gate, runner, ns.runs_dir, overlap, pulumi).run()


if __name__ == "__main__":
    sys.exit(main())
