"""`make run STACK=<env> SERVICE=<name>` (`python -m runs.run`): run suites on demand, collect JUnit.

For pipelines that consume the stack outputs. For each service asked for, starts a fresh Job from
the service's suspended CronJob (a unique, valid DNS-label name, labelled with the run id and the
caller), waits until it is Complete or Failed (at most its own deadline plus a margin), saves its
log and its JUnit report as `<dir>/<service>.log|.xml`, and with `--all` a merged `<dir>/all.xml`.
`--all` runs suites concurrently, never more at once than the namespace's pod quota admits.
`--rerun` re-runs a failed install-time Job under its own name, so a gated `pulumi up` (waitForJobs)
can be retried without changing config.

Exit status: 0 every suite passed; 1 a suite failed, timed out or printed no usable report;
2 unusable input or cluster (one message, no traceback). Never prints a secret value. Files are
written only inside --junit-dir, named after the service (a DNS label, checked).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.kubernetes import ClientCluster
from clients.pulumi import from_stack
from config import cli, naming
from config.addresses import token_transport_problem
from config.outputs import ServiceOutputs, StackOutputs, read_file
from runs import telemetry
from runs.classify import EXIT_CODES, exit_code, exit_status_help
from runs.errors import RunInputError
from runs.gate import DEFAULT_BOUND_SECONDS, Gate
from runs.junit import merged
from runs.outcomes import summary
from runs.provenance import (
    RunManifest,
    now,
    source_commit,
)
from runs.replay import check_replayed, read_manifest
from runs.runner import DEFAULT_INFRA_RETRIES, DEFAULT_STUCK_SECONDS, Runner, run_all

EPILOG = exit_status_help() + """

environment: KUBECONFIG (kubeconfig file; default ~/.kube/config), GITHUB_RUN_ID (default --run-id),
GITHUB_WORKFLOW or USER (default --caller); with --stack, the Pulumi CLI's own (PULUMI_BACKEND_URL,
PULUMI_ACCESS_TOKEN, PULUMI_CONFIG_PASSPHRASE)."""


@dataclass(frozen=True)
class Endpoints:
    """Where this run's credentials go: the Vault that gets VAULT_TOKEN and the kube context KUBECONFIG
    serves. Taken from the stack file (which only who may change the repository writes), never from
    the outputs alone: the outputs come from the state, which more people can write."""

    vault_address: str | None
    vault_from: str
    kube_context: str


def endpoints(ns: argparse.Namespace, stack: StackOutputs, stack_name: str) -> Endpoints:
    from config.errors import ConfigError
    from config.files import PROJECT_DIR
    from config.loading import stack_settings
    from config.naming import stack_file

    settings = None
    if ns.stack or (stack_name and (PROJECT_DIR / stack_file(stack_name)).is_file()):
        try:
            settings = stack_settings(stack_name, project_dir=PROJECT_DIR)
        except ConfigError as exc:
            raise RunInputError(f"the stack file of {stack_name}: {exc}") from None
    context = ns.context or (settings.stack.kube_context if settings else stack.kube_context)
    if ns.skip_gate:
        return Endpoints(None, "", context)
    if ns.vault_address:
        address, source = ns.vault_address.rstrip("/"), "--vault-address"
    elif settings is not None:
        address, source = settings.stack.vault_address.rstrip("/"), f"vaultAddress in {settings.stack_file}"
        named = stack.vault.address.rstrip("/") if stack.vault else address
        if ns.stack is None and named != address:
            raise RunInputError(f"{ns.outputs}: vault.address {named[:200]} is not {source} ({address}): the token "
                                "goes only to the stack file's Vault; pass --vault-address to choose another")
    else:
        raise RunInputError(f"{ns.outputs}: no stack file Pulumi.{stack_name[:63]}.yaml here names the Vault that "
                            "may receive VAULT_TOKEN: pass --vault-address (or --stack), or --skip-gate")
    problem = token_transport_problem(address)
    if problem:
        raise RunInputError(f"{source}: {problem}")
    return Endpoints(address, source, context)


def vault_gate(stack: StackOutputs, where: Endpoints, cluster: ClientCluster, ns: argparse.Namespace) -> Gate | None:
    if ns.skip_gate or where.vault_address is None:
        return None
    from clients.vault import HvacVaultReader

    if stack.vault is None:
        raise RunInputError("the outputs name no Vault (outputs.vault): the readiness gate needs it; or pass --skip-gate")
    token = os.environ.get("VAULT_TOKEN")
    if not token:
        raise RunInputError("VAULT_TOKEN is not set: the readiness gate reads each key's version (metadata, never a "
                            "value) with the deploy identity's token; or pass --skip-gate (no gate, no versions)")
    reader = HvacVaultReader(where.vault_address, token, address_from=where.vault_from)
    return Gate(reader, cluster, stack.vault, stack.namespace, bound=ns.gate_seconds)


def check_arguments(ns: argparse.Namespace) -> None:
    if bool(ns.service) == ns.all:
        raise RunInputError("name one SERVICE or pass --all")
    if ns.service and not naming.is_service_name(ns.service):
        raise RunInputError(f"SERVICE={ns.service[:60]!r}: not a service name: a catalog.yaml service is lower-case "
                            f"letters, digits and '-' (up to {naming.MAX_SERVICE_NAME})")
    if not ns.stack and ns.outputs is None:
        raise RunInputError("pass --stack <env> or --outputs FILE")
    if not 1 <= ns.gate_seconds <= 3600:
        raise RunInputError("--gate-seconds: between 1 and 3600")
    if ns.install_jobs and (ns.rerun or ns.replay):
        raise RunInputError("--install-jobs collects what `make up` ran: not with --rerun or --replay")
    if not 1 <= ns.stuck_seconds <= 3600:
        raise RunInputError("--stuck-seconds: between 1 and 3600")


def chosen_services(ns: argparse.Namespace, stack: StackOutputs, stack_name: str,
                    replayed: dict[str, Any] | None) -> dict[str, ServiceOutputs]:
    """The services this run covers: the one named, or every enabled one (of a replay: those it ran)."""
    services = dict(stack.services)
    if replayed is not None:
        check_replayed(replayed, ns.replay[:200], stack=stack_name, namespace=stack.namespace, services=services)
        if not ns.service:
            services = {k: v for k, v in services.items() if k in replayed["services"]}
    if ns.service:
        if ns.service not in services:
            known = ", ".join(sorted(services))
            raise RunInputError(f"no service {ns.service[:64]!r} in the stack outputs; enabled: {known}")
        services = {ns.service: services[ns.service]}
    if ns.install_jobs:
        services = {k: v for k, v in services.items() if v.job}
        if not services:
            raise RunInputError("the stack runs no install-time Job (runOnInstall is off): nothing to collect")
    return services


def parser() -> argparse.ArgumentParser:
    ap = cli.parser("runs.run", __doc__, epilog=EPILOG)
    ap.add_argument("service", nargs="?", help="the service whose suite to run")
    ap.add_argument("--all", action="store_true", help="every enabled service")
    cli.add_stack(ap, default=None, help="read the outputs with `pulumi stack output --json --stack STACK` (or --outputs)")
    ap.add_argument("--outputs", type=Path, help="a saved `pulumi stack output --json`")
    ap.add_argument("--context", help="kube context (default: the stack file's kubeContext)")
    ap.add_argument("--run-id", default=os.environ.get("GITHUB_RUN_ID", ""), help="caller's run id (label)")
    ap.add_argument("--caller", default=os.environ.get("GITHUB_WORKFLOW") or os.environ.get("USER") or "cli")
    ap.add_argument("--junit-dir", type=Path, default=Path("build/junit"))
    ap.add_argument("--runs-dir", type=Path, default=Path("build/runs"),
                    help="where each run's manifest is kept by run id (for --replay)")
    ap.add_argument("--rerun", action="store_true", help="re-run the failed install-time Job under its name")
    ap.add_argument("--replay", metavar="RUN", help="run again with the image digest a recorded run used "
                    "(its run id under --runs-dir, or its run-manifest.json)")
    ap.add_argument("--install-jobs", action="store_true", help="collect the install-time Jobs `make up` ran "
                    "(their JUnit, classification and provenance) instead of starting runs")
    ap.add_argument("--infra-retries", type=int, default=DEFAULT_INFRA_RETRIES, choices=range(0, 4),
                    help=f"retries of a run the infrastructure failed (default {DEFAULT_INFRA_RETRIES})")
    ap.add_argument("--gate-seconds", type=float, default=DEFAULT_BOUND_SECONDS,
                    help=f"how long a suite waits for its ExternalSecret to sync (default {DEFAULT_BOUND_SECONDS:g})")
    ap.add_argument("--stuck-seconds", type=float, default=DEFAULT_STUCK_SECONDS,
                    help="how long a pod may wait for an image it cannot pull (or a Secret key) before the attempt "
                    f"is ended (default {DEFAULT_STUCK_SECONDS:g})")
    ap.add_argument("--skip-gate", action="store_true", help="no readiness gate (no Vault token): no key versions")
    ap.add_argument("--vault-address", help="Vault to read versions from, the one VAULT_TOKEN is sent to (default: "
                    "the stack file's vaultAddress; with --outputs the outputs' vault.address must equal it)")
    return ap


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    return cli.run("run", lambda: run_suites(ns))


def run_suites(ns: argparse.Namespace) -> int:
    started = now()
    check_arguments(ns)
    replayed = read_manifest(ns.replay, ns.runs_dir) if ns.replay else None
    stack = read_file(ns.outputs) if ns.outputs is not None else from_stack(ns.stack)
    stack_name = ns.stack or stack.environment or ""
    services = chosen_services(ns, stack, stack_name, replayed)
    try:
        ns.junit_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunInputError(f"--junit-dir {ns.junit_dir}: cannot be created ({exc.strerror})") from None
    where = endpoints(ns, stack, stack_name)
    cluster = ClientCluster(where.kube_context, os.environ.get("KUBECONFIG"))
    run_id = ns.run_id or f"local-{int(time.time())}"
    runner = Runner(cluster, stack.namespace, ns.junit_dir, run_id, ns.caller,
                    gate=vault_gate(stack, where, cluster, ns), infra_retries=ns.infra_retries,
                    stuck_seconds=ns.stuck_seconds, replay=None if replayed is None else dict(replayed["services"]))
    outcomes = run_all(runner, services, rerun=ns.rerun, install_jobs=ns.install_jobs)
    if len(outcomes) > 1:
        (ns.junit_dir / "all.xml").write_bytes(merged([o.report for o in outcomes]).tostring())
    status = exit_code(o.verdict for o in outcomes)
    manifest = RunManifest(run_id, ns.caller, stack.namespace, started, now(), status,
                           {o.service: o.record for o in outcomes if o.record is not None}, stack=stack_name,
                           commit=source_commit(os.environ, Path(__file__).resolve().parent.parent))
    written = manifest.write(ns.junit_dir, ns.runs_dir)
    for folder in {path.parent for path in written[1:]}:  # the run's own folder keeps its reports (`make report`)
        for outcome in outcomes:
            shutil.copyfile(ns.junit_dir / f"{outcome.service}.xml", folder / f"{outcome.service}.xml")
    recorded, reports = manifest.as_json(), {o.service: o.report.xml for o in outcomes}
    trace_files = telemetry.write(recorded, reports, [path.parent for path in written])
    print(summary(outcomes))
    if telemetry.configured_endpoint():
        print(telemetry.send(recorded, reports))
    cause = next((c for c, code in EXIT_CODES.items() if code == status), "passed")
    print(f"run {run_id}: exit {status} ({cause}); manifest {written[-1]}; trace {trace_files[-1]}")
    return status


if __name__ == "__main__":
    sys.exit(main())
