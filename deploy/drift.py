"""`make drift STACK=<env>` (`python -m deploy.drift`): everything the stack declares compared with what
is there, read only, with the caller's credentials (the preview identity's in CI: `LOGIN=preview`).

Two sources (deploy/drift_checks.py holds the rules):
1. the engine's refresh in preview-only mode (`pulumi refresh --preview-only`; nothing is written):
   each Kubernetes object whose fields the provider manages and reads back, or that is gone. Left out of
   it: the Vault resources (refreshing a KV v2 secret reads its value, which no drift check should
   hold), the Helm releases (their refresh reads Helm's Secrets) and what the program only reads;
2. what the providers do not read back: the labels on each Kubernetes object (the provider watches only
   the fields it manages; one added by hand is drift), every declared leaf of each object, each key
   Pulumi wrote (Vault's current version against the state's: a `bao kv put` is drift), each `external`
   key (its owner's newer version is **expected**, not drift), the ESO policy's text and the role's
   parameters, and each release's values against Helm's record of its newest revision (Helm keeps it
   in a Secret: with credentials that may not read Secrets, the preview identity's, that one check is
   skipped and says so).

Writes `build/drift/<stack>.xml` (JUnit: one case per compared resource, a failure per drifted one with
its URN and property path), `<stack>.md` (the job summary) and `<stack>.json` (the findings, for
pipelines). Never a value.
Exit status: 0 nothing drifted (expected changes may be listed); 6 drift found; 2 unusable input,
credentials or endpoint (one message).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from junitparser import Failure, JUnitXml, TestCase, TestSuite

from clients.kubernetes import ClientCluster
from clients.pulumi import PulumiDriver
from clients.vault import HvacVaultReader
from config import cli
from config.errors import EnvironmentProblem
from config.loading import stack_settings
from config.model import Settings
from config.naming import RELEASE_TYPE, VAULT_POLICY_TYPE, VAULT_ROLE_TYPE, VAULT_SECRET_TYPE
from config.times import timestamp
from config.vault_keys import version_state
from deploy import drift_checks as checks
from deploy.drift_checks import Finding

EXIT_DRIFT = 6
VAULT_TYPES = "vault:"


def declared_resources(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources the program manages (no provider, component or read-only resource)."""
    return [r for r in state.get("resources") or [] if r.get("custom") and not r.get("external")
            and not str(r.get("type", "")).startswith("pulumi:")]


def engine_refresh(driver: PulumiDriver, stack: str, state: dict[str, Any]) -> list[Finding]:
    """`pulumi refresh --preview-only` of the Kubernetes objects: the steps it would take."""
    from pulumi.automation import events

    skipped = [r["urn"] for r in state.get("resources") or [] if r.get("external") or
               str(r.get("type", "")).startswith(VAULT_TYPES) or r.get("type") == RELEASE_TYPE]
    steps: list[tuple[str, str, list[str]]] = []

    def on_event(event: events.EngineEvent) -> None:
        done = event.res_outputs_event
        if done is not None and done.metadata.op.value in ("update", "delete", "replace"):
            meta = done.metadata
            if not meta.urn or meta.type.startswith("pulumi:") or meta.urn in skipped:
                return
            steps.append((meta.op.value, meta.urn, sorted((meta.detailed_diff or {}).keys()) or list(meta.diffs or [])))

    driver.preview_refresh(stack, exclude=skipped, on_event=on_event)
    return checks.engine_steps(steps)


def kubernetes_findings(cluster: ClientCluster, resources: list[dict[str, Any]]) -> list[Finding]:
    findings = []
    for r in resources:
        if not r["type"].startswith("kubernetes:") or r["type"] == RELEASE_TYPE:
            continue
        declared = r.get("inputs") or {}
        meta = declared.get("metadata") or {}
        live = cluster.live_object(str(declared.get("apiVersion")), str(declared.get("kind")), str(meta.get("name")),
                                   meta.get("namespace"))
        findings += checks.kubernetes_object(r["urn"], declared, live)
    return findings


def helm_findings(cluster: ClientCluster, settings: Settings, resources: list[dict[str, Any]],
                  say: Callable[[str], None]) -> list[Finding]:
    releases = [r for r in resources if r["type"] == RELEASE_TYPE]
    if not releases:
        return []
    try:
        records = cluster.helm_records(settings.namespace)
    except EnvironmentProblem as exc:
        say(f"drift: the releases' values not compared: {exc} (Helm keeps each release in a Secret; the "
            "deploy identity may read them)")
        return []
    findings = []
    for r in releases:
        inputs = r.get("inputs") or {}
        record = records.get(str(inputs.get("name")))
        findings += checks.helm_values(r["urn"], inputs.get("values") or {}, None if record is None else record.config,
                                       None if record is None else record.revision)
    return findings


def vault_findings(vault: HvacVaultReader, settings: Settings, resources: list[dict[str, Any]],
                   deployed_at: str | None) -> list[Finding]:
    """Keys (versions, never values), the ESO policy's text and the role's parameters."""
    findings = []
    for r in resources:
        inputs, outputs = r.get("inputs") or {}, r.get("outputs") or {}
        if r["type"] == VAULT_SECRET_TYPE:
            meta = vault.metadata(str(outputs.get("mount")), str(outputs.get("name")))
            current = version_state(meta).current if meta else None
            findings += checks.key_version(r["urn"], (outputs.get("metadata") or {}).get("version"), current)
        elif r["type"] == VAULT_POLICY_TYPE:
            found = vault.read(f"sys/policies/acl/{inputs.get('name')}")
            findings += checks.policy_text(r["urn"], str(inputs.get("policy") or ""),
                                           None if found is None else str((found.get("data") or {}).get("policy", "")))
        elif r["type"] == VAULT_ROLE_TYPE:
            found = vault.read(f"auth/{inputs.get('backend', 'kubernetes')}/role/{inputs.get('roleName')}")
            findings += checks.role_parameters(r["urn"], inputs, None if found is None else dict(found.get("data") or {}))
    deployed = timestamp(deployed_at)
    for key in settings.vault_keys:
        if key.source != "external":
            continue
        meta = vault.metadata(key.mount, key.path)
        state = version_state(meta) if meta else None
        findings += checks.external_key(f"vault:{key.full_path}", key.full_path, key.owner,
                                        state.current if state else None,
                                        timestamp(state.created_time) if state else None, deployed)
    return findings


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("deploy.drift", __doc__)
    cli.add_stack(ap)
    ap.add_argument("--out-dir", type=Path, default=Path("build/drift"), help="where the JUnit and summary go")
    ns = ap.parse_args(argv)
    return cli.run("drift", lambda: drift(ns.stack, ns.out_dir))


def drift(stack: str, out_dir: Path, *, say: Callable[[str], None] = print) -> int:
    settings = stack_settings(stack)  # a ConfigError names the file, field and fix
    token = os.environ.get("VAULT_TOKEN")
    if not token:
        raise EnvironmentProblem("VAULT_TOKEN is not set: the drift check reads key versions, the policy and the role "
                                 "(metadata and text, never a value) with the preview or deploy identity's token")
    driver = PulumiDriver(env={"PULUMI_SKIP_CONFIRMATIONS": "false"})  # --preview-only refuses --yes
    state = driver.export(stack)["deployment"]
    resources = declared_resources(state)
    cluster = ClientCluster(settings.stack.kube_context, settings.stack.kubeconfig or os.environ.get("KUBECONFIG"))
    vault = HvacVaultReader(settings.stack.vault_address, token, address_from=f"vaultAddress in Pulumi.{stack}.yaml")
    findings = checks.merged([  # ours first: where both see a path, ours says what happened to it
        *kubernetes_findings(cluster, resources),
        *helm_findings(cluster, settings, resources, say),
        *vault_findings(vault, settings, resources, (state.get("manifest") or {}).get("time")),
        *engine_refresh(driver, stack, state),
    ])
    return report(stack, resources, findings, out_dir, say)


def report(stack: str, resources: list[dict[str, Any]], findings: list[Finding], out_dir: Path,
           say: Callable[[str], None]) -> int:
    drifted = [f for f in findings if not f.expected]
    expected = [f for f in findings if f.expected]
    suite = TestSuite(f"drift {stack}")
    by_urn: dict[str, list[Finding]] = {}
    for f in findings:
        by_urn.setdefault(f.urn, []).append(f)
    for urn in sorted({r["urn"] for r in resources} | set(by_urn)):
        case = TestCase(name=urn, classname=f"drift.{stack}.{checks.type_of(urn)}")
        failures = [f for f in by_urn.get(urn, []) if not f.expected]
        if failures:
            case.result = [Failure(message="; ".join(f"{f.path or '(resource)'}: {f.what}" for f in failures)[:2000],
                                   type_="Drift")]
        notes = [f"expected: {f.path}: {f.what}" for f in by_urn.get(urn, []) if f.expected]
        if notes:
            case.system_out = "\n".join(notes)
        suite.add_testcase(case)
    suite.update_statistics()
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.update_statistics()
    out_dir.mkdir(parents=True, exist_ok=True)
    xml.write(str(out_dir / f"{stack}.xml"))
    lines = [f"### Drift of `{stack}`", "",
             f"{len(drifted)} drifted, {len(expected)} expected change(s), {len(resources)} resources compared.", ""]
    lines += [f"- **drift** `{f.urn}` `{f.path or '(resource)'}`: {f.what}" for f in drifted]
    lines += [f"- expected `{f.urn}` `{f.path}`: {f.what}" for f in expected]
    (out_dir / f"{stack}.md").write_text("\n".join(lines) + "\n")
    (out_dir / f"{stack}.json").write_text(json.dumps(
        {"stack": stack, "compared": len(resources), "findings": [asdict(f) for f in findings]}, indent=1) + "\n")
    for f in findings:
        say(f"{'expected' if f.expected else 'DRIFT':<8} {f.urn}  {f.path or '(resource)'}: {f.what}")
    say(f"drift {stack}: {len(drifted)} drifted, {len(expected)} expected, {len(resources)} resources compared; "
        f"{out_dir / (stack + '.xml')}")
    return EXIT_DRIFT if drifted else 0


if __name__ == "__main__":
    sys.exit(main())
