"""CrossGuard rules from the backlog and the design, importable without starting a policy server.

`policy/__main__.py` only builds the pack from these; tests call the validators directly with
arguments built from the resources the real program declares under mocks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

# The pack runs from its own folder, in its own virtualenv: the project's naming module is
# standard-library only, so the pack spells no name, label or type token itself.
PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from config import naming  # noqa: E402
from config.credentials import credential_in  # noqa: E402

RELEASE = naming.RELEASE_TYPE
EXTERNAL_SECRET = naming.EXTERNAL_SECRET_TYPE
STATEFUL = {
    naming.NAMESPACE_TYPE,
    naming.CLUSTER_SECRET_STORE_TYPE,
    naming.SECRET_STORE_TYPE,
    naming.VAULT_MOUNT_TYPE,
    naming.VAULT_SECRET_TYPE,
}
ReportViolation = Callable[..., None]
CATALOG = PROJECT_DIR / naming.CATALOG_FILE


@lru_cache(maxsize=1)
def catalog() -> dict[str, Any]:
    """catalog.yaml as plain data: the pack runs in its own virtualenv, without the program's models."""
    return yaml.safe_load(CATALOG.read_text()) or {}


def no_inline_credentials(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != RELEASE:
        return
    for item in (args.props.get("values") or {}).get("env") or []:
        name, value = item.get("name", ""), str(item.get("value", ""))
        why = credential_in(name, value)
        if why:
            report(
                f"release {args.name}: env var {name} is inline but looks like a credential ({why}); "
                "move it to the service's `secrets` in catalog.yaml (read from Vault via its ExternalSecret)"
            )


def unified_entrypoint(args: ResourceValidationArgs, report: ReportViolation) -> None:
    entrypoint = catalog().get("entrypoint")
    if args.resource_type == RELEASE and (args.props.get("values") or {}).get("entrypoint") != entrypoint:
        report(f"release {args.name}: must run the shared entrypoint {entrypoint}")


def external_secret_uses_the_store(args: StackValidationArgs, report: ReportViolation) -> None:
    stores = [r for r in args.resources
              if r.resource_type in (naming.CLUSTER_SECRET_STORE_TYPE, naming.SECRET_STORE_TYPE)]
    namespaces = {r.props["metadata"]["name"] for r in args.resources if r.resource_type == naming.NAMESPACE_TYPE}
    refs = {(s.props["kind"], s.props["metadata"]["name"]) for s in stores}
    for r in args.resources:
        if r.resource_type != EXTERNAL_SECRET:
            continue
        ref = r.props["spec"]["secretStoreRef"]
        if (ref.get("kind"), ref.get("name")) not in refs:
            report(f"ExternalSecret {r.name}: secretStoreRef {ref} is not this stack's store {sorted(refs)}")
        if r.props["metadata"].get("namespace") not in namespaces:
            report(f"ExternalSecret {r.name}: must live in the integration namespace {sorted(namespaces)}")


def every_catalog_service_has_a_release(args: StackValidationArgs, report: ReportViolation) -> None:
    """Backlog: every service must ship a runnable integration pack wired into the shared runner."""
    services = catalog().get("services") or {}
    releases = {r.props.get("name") for r in args.resources if r.resource_type == RELEASE}
    for name in sorted(services):
        release = naming.release_name(name)
        if release not in releases:
            report(f"catalog service {name} has no release {release}: its suite is not wired into the runner")


def prod_state_is_protected(args: StackValidationArgs, report: ReportViolation) -> None:
    environments = {
        r.props["metadata"].get("labels", {}).get(naming.LABEL_ENVIRONMENT)
        for r in args.resources
        if r.resource_type == naming.NAMESPACE_TYPE
    }
    if "prod" not in environments:
        return
    for r in args.resources:
        if r.resource_type in STATEFUL and not r.opts.protect:
            report(f"{r.resource_type} {r.name}: must be protected in prod (set {naming.PROJECT}:protect: true)")


def policies(config: Mapping[str, Any] | None = None) -> list[Any]:
    level = EnforcementLevel.MANDATORY
    return [
        ResourceValidationPolicy("no-inline-credentials", "Release env holds no literal credential",
                                 no_inline_credentials, level),
        ResourceValidationPolicy("unified-entrypoint", "Every release runs the shared integration entrypoint",
                                 unified_entrypoint, level),
        StackValidationPolicy("external-secrets-use-the-store", "ExternalSecrets use the stack's store and namespace",
                              external_secret_uses_the_store, level),
        # Advisory: a stack may disable a service on purpose (serviceOverrides.<name>.enabled).
        StackValidationPolicy("every-service-has-a-release", "Every catalog service runs in this stack",
                              every_catalog_service_has_a_release, EnforcementLevel.ADVISORY),
        StackValidationPolicy("prod-state-protected", "Stateful resources are protected in prod",
                              prod_state_is_protected, level),
    ]
