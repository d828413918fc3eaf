"""`make verify STACK=<stack>`: check a deployed environment end to end, against what the stack declares.

Vault: every declared key exists with the properties the ExternalSecrets read (token from
VAULT_TOKEN, or a Kubernetes-auth login of the ESO role with --vault-jwt-file).
Kubernetes (the stack's kubeContext, or --context): the namespace with its PSA labels, each
ExternalSecret Ready, each target Secret holding every key its runner reads, each Helm release
deployed. Prints a table per service and exits 1 when anything is missing, 2 when an endpoint
cannot be used (one message, no traceback). Never prints a secret value.

Which Vault: the stack's `vaultAddress`, the one the program writes to. A `VAULT_ADDR` that names
another server is refused (exit 2) rather than sent the token; `make verify` alone may be pointed
elsewhere explicitly with --vault-address (a port-forward to the same server).
Property names are read through the KV v2 subkeys endpoint (no values cross the wire) when a token is
given; a Kubernetes-auth login reads as ESO does (the role may read data, not subkeys), so it proves
ESO's access too. Keys are read by a few workers at once, under one overall deadline.

`--preflight` (run by `make preview` / `make up` before the Pulumi CLI): Vault reachable with the
token, for every stack; then only the `external` keys, through the subkeys endpoint with the
deployer's VAULT_TOKEN -- the same read the program's existence check makes. The Pulumi SDK turns a
failed provider read into a fatal error in the provider's words; this says which key, which file and
field, and what to do, first.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from clients import kubernetes as kube
from clients.kubernetes import ClientCluster
from clients.vault import EndpointError, HvacVaultReader, VaultReader
from config import cli
from config.identities import ROLES, identity
from config.model import Settings
from config.naming import PSA_LABEL_PREFIX, PSA_LEVEL
from config.vault_keys import VaultKey
from deploy import permissions

OK, FAIL = "✓", "✗"
PSA_LABEL = f"{PSA_LABEL_PREFIX}enforce"
VAULT_WORKERS = 8
DEADLINE_SECONDS = 120.0


@dataclass
class Check:
    what: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------- Vault


def read_keys(keys: Sequence[VaultKey], read: Callable[[str, str], set[str] | None], *,
              workers: int = VAULT_WORKERS, deadline: float = DEADLINE_SECONDS) -> dict[str, set[str] | None]:
    """Property names per key, `workers` requests at a time; the first EndpointError, or one saying
    how many keys were unanswered when `deadline` seconds have passed."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vault")
    try:
        futures = {pool.submit(read, key.mount, key.path): key for key in keys}
        done, pending = wait(futures, timeout=deadline)
        for future in done:
            if (error := future.exception()) is not None:
                raise error
        if pending:
            raise EndpointError(f"Vault did not answer {len(pending)} of {len(keys)} key reads within {deadline:g} s "
                                "(the overall deadline): check the server's load and run again, or raise --deadline")
        return {futures[f].name: f.result() for f in done}
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def vault_checks(settings: Settings, vault: VaultReader, *, read_values: bool = False,
                 deadline: float = DEADLINE_SECONDS) -> dict[str, Check]:
    """One check per Vault key: exists, and holds every property any ExternalSecret reads. Property
    names come from the subkeys endpoint unless `read_values` (a login with ESO's role, which may
    read the data as ESO does, not the subkeys)."""
    found = read_keys(settings.vault_keys, vault.properties if read_values else vault.subkeys, deadline=deadline)
    checks: dict[str, Check] = {}
    for key in settings.vault_keys:
        check = Check(f"{key.mount}/{key.path}")
        present = found[key.name]
        if present is None:
            check.problems.append(f"key missing at `{key.mount}/{key.path}` (source {key.source}, owner {key.owner})")
        else:
            for prop in key.missing_properties(present):
                check.problems.append(f"property `{prop}` missing at `{key.mount}/{key.path}`")
        checks[key.name] = check
    return checks


def preflight_problems(settings: Settings, vault: VaultReader, *, deadline: float = DEADLINE_SECONDS) -> list[str]:
    """Each `external` key that `pulumi preview` would fail on, with the fix."""
    external = [key for key in settings.vault_keys if key.source == "external"]
    found = read_keys(external, vault.subkeys, deadline=deadline)
    problems = []
    for key in external:
        problem = settings.external_key_problem(key, found[key.name])
        if problem:
            problems.append(problem)
    return problems


def vault_address(settings: Settings, *, explicit: str | None = None, preflight: bool = False) -> tuple[str, str]:
    """The Vault to check and where its address came from: the one the stack deploys to."""
    if explicit:
        return explicit.rstrip("/"), "--vault-address"
    deployed = settings.stack.vault_address.rstrip("/")
    from_env = os.environ.get("VAULT_ADDR", "").strip().rstrip("/")
    if from_env and from_env != deployed:
        also = "" if preflight else " (or pass --vault-address to verify through a port-forward)"
        raise EndpointError(
            f"VAULT_ADDR is {from_env}, but stack {settings.environment} deploys to vaultAddress {deployed} "
            f"({settings.stack_file}): the token is sent only to the Vault the program writes. Unset VAULT_ADDR "
            f"or set it to {deployed}, or fix vaultAddress in {settings.stack_file}{also}")
    return deployed, f"vaultAddress in {settings.stack_file}"


# --------------------------------------------------------------------------- Kubernetes


class KubeReader(Protocol):
    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None: ...
    def helm_releases(self, namespace: str) -> dict[str, str]:
        """Release name -> status of the latest revision."""




def kube_checks(settings: Settings, kube: KubeReader) -> tuple[Check, dict[str, list[Check]]]:
    ns = settings.namespace
    ns_check = Check(f"namespace {ns}")
    obj = kube.get("Namespace", None, ns)
    if obj is None:
        ns_check.problems.append(f"namespace `{ns}` does not exist")
    elif (obj.get("metadata", {}).get("labels") or {}).get(PSA_LABEL) != PSA_LEVEL:
        ns_check.problems.append(f"namespace `{ns}` lacks label {PSA_LABEL}={PSA_LEVEL}")
    releases = kube.helm_releases(ns) if obj is not None else {}
    per_service: dict[str, list[Check]] = {}
    for svc in settings.services:
        checks: list[Check] = []
        if svc.secret_name:
            es = Check(f"ExternalSecret {svc.secret_name}")
            found = kube.get("ExternalSecret", ns, svc.secret_name)
            if found is None:
                es.problems.append(f"ExternalSecret `{svc.secret_name}` does not exist")
            else:
                ready = [c for c in (found.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
                if not ready or ready[0].get("status") != "True":
                    why = ready[0].get("message") or ready[0].get("reason") if ready else "no Ready condition yet"
                    es.problems.append(f"ExternalSecret `{svc.secret_name}` not Ready: {why}")
            checks.append(es)
            sec = Check(f"Secret {svc.secret_name}")
            secret = kube.get("Secret", ns, svc.secret_name)
            if secret is None:
                sec.problems.append(f"Secret `{svc.secret_name}` does not exist")
            else:
                have = set(secret.get("data") or {})
                for m in svc.secrets:
                    if m.secret_key not in have:
                        sec.problems.append(f"Secret `{svc.secret_name}` lacks key `{m.secret_key}` ({m.env})")
            checks.append(sec)
        rel = Check(f"release {svc.release_name}")
        status = releases.get(svc.release_name)
        if status is None:
            rel.problems.append(f"Helm release `{svc.release_name}` does not exist")
        elif status != "deployed":
            rel.problems.append(f"Helm release `{svc.release_name}` is {status}")
        checks.append(rel)
        per_service[svc.name] = checks
    return ns_check, per_service


# --------------------------------------------------------------------------- report


def report(settings: Settings, vault: dict[str, Check] | None, ns: Check | None,
           kube: dict[str, list[Check]] | None) -> tuple[str, bool]:
    lines = [f"verify {settings.environment}: namespace {settings.namespace}"]
    all_ok = True
    if ns is not None:
        lines.append(f"  {OK if ns.ok else FAIL} {ns.what}" + "".join(f"\n      - {p}" for p in ns.problems))
        all_ok &= ns.ok
    header = f"  {'service':<22} {'vault':<6} {'secrets':<8} {'release':<8}"
    lines.append(header)
    problems: list[str] = []
    for svc in settings.services:
        v_checks = [vault[k.name] for k in svc.vault_keys] if vault is not None else []
        k_checks = (kube or {}).get(svc.name, [])
        secret_checks = [c for c in k_checks if not c.what.startswith("release")]
        release_checks = [c for c in k_checks if c.what.startswith("release")]

        def mark(checks: list[Check], applies: bool) -> str:
            if not applies:
                return "-"
            return OK if all(c.ok for c in checks) else FAIL

        row = (f"  {svc.name:<22} {mark(v_checks, vault is not None and bool(v_checks)):<6} "
               f"{mark(secret_checks, kube is not None and bool(svc.secret_name)):<8} "
               f"{mark(release_checks, kube is not None):<8}")
        lines.append(row)
        for c in [*v_checks, *k_checks]:
            for p in c.problems:
                problems.append(f"  {FAIL} {svc.name}: {p}")
        all_ok &= all(c.ok for c in [*v_checks, *k_checks])
    lines += sorted(set(problems), key=problems.index)
    lines.append("all checks passed" if all_ok else "some checks failed")
    return "\n".join(lines), all_ok


def identity_problem(settings: Settings, role: str, vault: HvacVaultReader, context: str | None) -> str | None:
    """One message when the caller's Vault token or kube credentials lack a permission of `role`."""
    ident = identity(settings, role)
    missing = permissions.missing_in_vault(ident, vault.capabilities)
    api = kube.api_client(context or settings.stack.kube_context, settings.stack.kubeconfig)
    allowed = permissions.ssar_allowed(api)
    missing += permissions.missing_in_kubernetes(ident, lambda q: bool(kube.call(lambda: allowed(q))))
    return permissions.message(ident, missing, settings.stack_file)


EXPIRY_WARNING_SECONDS = 86400


def token_lifetime_warning(info: dict[str, object]) -> str | None:
    """A stored token that ends within a day (the static fallback's, docs/identities.md): said before
    it silently stops a scheduled deploy. A token minted for this job (`make login`) is not stored."""
    ttl, path = info.get("ttl"), str(info.get("path") or "")
    if not isinstance(ttl, int) or ttl <= 0 or ttl >= EXPIRY_WARNING_SECONDS or path.startswith("auth/jwt/"):
        return None
    renew = ("renewed by use within its period: run `vault token renew`" if info.get("period")
             else "it cannot be renewed past its max TTL: mint a new one")
    return (f"WARNING: VAULT_TOKEN expires in {ttl / 3600:.1f} h ({info.get('expire_time') or 'soon'}); {renew}, "
            "or let the job log in with its OIDC token (make login, docs/identities.md)")


def preflight(settings: Settings, args: argparse.Namespace, address: str, address_from: str) -> int:
    """`--preflight`: 0 when `up` can start, 1 naming each missing `external` key, 2 a missing permission."""
    # Connecting checks address and token for every stack: an unusable Vault would otherwise fail
    # `up` halfway, after the Kubernetes side had changed.
    reader = HvacVaultReader(address, os.environ.get("VAULT_TOKEN"), address_from=address_from)
    if warning := token_lifetime_warning(reader.token_info):
        print(f"preflight {args.stack}: {warning}", file=sys.stderr)
    if args.identity:
        denied = identity_problem(settings, args.identity, reader, args.context)
        if denied:
            print(f"preflight {args.stack}: {denied}", file=sys.stderr)
            return 2
    problems = preflight_problems(settings, reader, deadline=args.deadline)
    for problem in problems:
        print(f"preflight {args.stack}: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: Iterable[str] | None = None) -> int:
    parser = cli.parser(
        "deploy.verify", __doc__,
        epilog="exit status: 0 everything declared is there; 1 something is missing (the table says what);\n"
               "2 Vault or the API server cannot be used, or the stack's config is wrong (one message).\n\n"
               "environment: VAULT_TOKEN (a token for the stack's Vault; with --preflight the deployer's),\n"
               "VAULT_ADDR (must name the stack's vaultAddress if set), KUBECONFIG (default ~/.kube/config).")
    cli.add_stack(parser)
    parser.add_argument("--context", help="kube context (default: the stack's kubeContext)")
    parser.add_argument("--vault-jwt-file", type=Path, help="service-account JWT for the ESO role's Kubernetes-auth login")
    parser.add_argument("--skip-kubernetes", action="store_true")
    parser.add_argument("--skip-vault", action="store_true")
    parser.add_argument("--preflight", action="store_true",
                        help="only the `external` Vault keys, as `pulumi preview` will read them")
    parser.add_argument("--identity", choices=ROLES,
                        help="with --preflight: also check that the credentials hold this identity's permissions "
                        "(config/identities.py), asking Vault and the API server")
    parser.add_argument("--vault-address", help="verify through another address of the same Vault (a port-forward); "
                        "not with --preflight, which checks the Vault the program writes to")
    parser.add_argument("--deadline", type=float, default=DEADLINE_SECONDS,
                        help=f"seconds for all Vault reads together (default {DEADLINE_SECONDS:g})")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.preflight and args.vault_address:
        parser.error("--vault-address is for `make verify`: the preflight checks the Vault the stack deploys to")
    return cli.run(f"verify {args.stack}", lambda: verify(args))


def verify(args: argparse.Namespace) -> int:
    from config.files import PROJECT_DIR
    from config.loading import stack_settings

    settings = stack_settings(args.stack, project_dir=PROJECT_DIR)
    address, address_from = vault_address(settings, explicit=args.vault_address, preflight=args.preflight)
    if args.preflight:
        return preflight(settings, args, address, address_from)
    vault = None
    if not args.skip_vault:
        jwt = args.vault_jwt_file.read_text().strip() if args.vault_jwt_file else None
        reader = HvacVaultReader(address, os.environ.get("VAULT_TOKEN"), role=settings.vault_role_name,
                                 auth_mount=settings.stack.vault_auth_mount, jwt=jwt, address_from=address_from)
        vault = vault_checks(settings, reader, read_values=reader.logged_in_as_role, deadline=args.deadline)
    ns = kube = None
    if not args.skip_kubernetes:
        kube_reader = ClientCluster(args.context or settings.stack.kube_context, settings.stack.kubeconfig)
        ns, kube = kube_checks(settings, kube_reader)
    text, ok = report(settings, vault, ns, kube)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
