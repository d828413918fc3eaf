"""`make render STACK=<stack>`: evaluate the program offline and write build/render/<stack>/.

Writes outputs.json (the stack outputs), plan.txt (the resource tree as `pulumi preview` lists
it), manifests/ (every Kubernetes object, each Helm release rendered by the real `helm
template` with the values the program passes) and vault/ (policies as .hcl, keys.json with
mount, path, properties and source, never a value). Everything is written to a temporary
folder first and moved into place only when complete.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from config import cli, naming
from config.errors import TestinfraError
from config.files import PROJECT_DIR, stack_config
from config.loading import load_settings
from config.naming import RELEASE_TYPE
from offline import helm, manifests_yaml
from offline.harness import (
    Evaluation,
    RecordedResource,
    declared_vault,
    evaluate,
)

POLICY_TYPE = "vault:index/policy:Policy"


def kubernetes_manifest(res: RecordedResource) -> dict[str, Any] | None:
    """The object a `kubernetes:` resource declares, as the API server would receive it."""
    if not res.type.startswith("kubernetes:") or res.type == RELEASE_TYPE or not res.custom or res.read_id:
        return None
    group_version, kind = res.type.split(":", 1)[1].rsplit(":", 1)
    group, _, version = group_version.partition("/")
    api_version = version if group == "core" else f"{group}/{version}"
    # Numbers cross the engine's wire as floats: a port is 53, not 53.0.
    body = {k: _integral(copy.deepcopy(v)) for k, v in res.inputs.items() if not k.startswith("__")}
    return {"apiVersion": body.pop("apiVersion", api_version), "kind": body.pop("kind", kind), **body}


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def release_manifests(
    ev: Evaluation, kube_version: str, project_dir: Path = PROJECT_DIR
) -> dict[str, list[dict[str, Any]]]:
    releases = ev.of_type(RELEASE_TYPE)

    def one(res: RecordedResource) -> tuple[str, list[dict[str, Any]]]:
        chart = (project_dir / res.inputs["chart"]).resolve()
        return res.inputs["name"], helm.template(
            chart, res.inputs["name"], res.inputs["namespace"], res.inputs["values"], kube_version=kube_version
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, releases))


def plan_lines(ev: Evaluation) -> list[str]:
    by_urn = ev.by_urn()
    children: dict[str, list[RecordedResource]] = {}
    for res in ev.resources:
        children.setdefault(res.parent, []).append(res)
    stack_urn = next((r.parent for r in ev.resources if r.type == "ameide:testinfra:IntegrationEnvironment"), "")
    lines = [f"# pulumi preview (offline, under mocks) of stack {ev.stack}: {len(ev.resources)} resources",
             f"# Helm releases rendered by helm {helm.version()}; the kubernetes provider deploys them with the "
             "Helm v3 library it embeds",
             f"+ pulumi:pulumi:Stack testinfra-{ev.stack}"]

    def walk(parent: str, depth: int) -> None:
        for res in sorted(children.get(parent, []), key=lambda r: (r.type, r.name)):
            extra = []
            if res.protect:
                extra.append("protect")
            if res.retain_on_delete:  # leaving the program does not delete it (make diff must not say so)
                extra.append("retainOnDelete")
            deps = sorted(by_urn[d].name for d in res.dependencies if d in by_urn)
            if deps:
                extra.append("dependsOn=" + ",".join(deps))
            if res.read_id:  # as `pulumi preview` marks a read of an existing object
                extra.insert(0, f"read {res.read_id}")
            op = ">" if res.read_id else "+"
            lines.append(f"{'    ' * depth}{op} {res.type} {res.name}" + (f"  [{'; '.join(extra)}]" if extra else ""))
            walk(res.urn, depth + 1)

    walk(stack_urn, 1)
    return lines


def _dump(path: Path, docs: list[dict[str, Any]]) -> None:
    path.write_text(manifests_yaml.dump_all(docs))


def render(stack: str, out_root: Path, project_dir: Path = PROJECT_DIR) -> Path:
    config, secret_keys = stack_config(stack, project_dir=project_dir)
    settings = load_settings(project_dir=project_dir, environment=stack, config=config, secret_keys=secret_keys)
    ev = evaluate(stack, project_dir=project_dir, config=config, secret_keys=secret_keys,
                  external_vault=declared_vault(settings))
    kube_version = f"{settings.stack.kubernetes_version}.0"

    out_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{stack}-", dir=out_root))
    try:
        (tmp / "outputs.json").write_text(json.dumps(ev.outputs, indent=2, sort_keys=True) + "\n")
        (tmp / "plan.txt").write_text("\n".join(plan_lines(ev)) + "\n")
        manifests = tmp / "manifests"
        manifests.mkdir()
        for res in ev.resources:
            obj = kubernetes_manifest(res)
            if obj is not None:
                meta = obj.get("metadata", {})
                name = "_".join(p for p in (obj["kind"], meta.get("namespace"), meta.get("name")) if p)
                _dump(manifests / f"{name.lower()}.yaml", [obj])
        for release, docs in sorted(release_manifests(ev, kube_version, project_dir).items()):
            _dump(manifests / f"release-{release}.yaml", docs)
        vault_dir = tmp / "vault"
        vault_dir.mkdir()
        for res in ev.of_type(POLICY_TYPE):
            (vault_dir / f"policy-{res.inputs['name']}.hcl").write_text(res.inputs["policy"])
        keys = [
            {"name": k.name, "mount": k.mount, "path": k.path, "properties": list(k.properties),
             "source": k.source, "owner": k.owner}
            for k in settings.vault_keys
        ]
        (vault_dir / "keys.json").write_text(json.dumps(keys, indent=2) + "\n")
        final = out_root / stack
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def summary(stack: str, folder: Path) -> str:
    """One line for the terminal: how much was rendered and which keys must exist before `up`."""
    keys = json.loads((folder / "vault" / "keys.json").read_text())
    external = sorted(f"{k['path']} ({k['owner']})" for k in keys if k["source"] == "external")
    plan = (folder / "plan.txt").read_text().splitlines()
    resources = sum(1 for line in plan[3:] if line.lstrip()[:2] in ("+ ", "> "))  # below the Stack line
    where = folder.relative_to(Path.cwd()) if folder.is_relative_to(Path.cwd()) else folder
    line = f"rendered stack {stack} to {where}: {resources} resources"
    if external:
        line += f"; {len(external)} external key(s) must exist in Vault before `up`: {', '.join(external)}"
    return line


def main(argv: list[str] | None = None) -> int:
    ap = cli.parser("offline.render", __doc__)
    # Not checked by the stack-name rule here: render names a bad stack with its own message (the file
    # it looked for, the stacks there are).
    ap.add_argument("--stack", default=cli.DEFAULT_STACK, help=f"the stack (default {cli.DEFAULT_STACK})")
    ap.add_argument("--out", type=Path, default=PROJECT_DIR / "build" / "render")
    ap.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    return cli.run("render", lambda: render_or_remove(args.stack, args.out, args.project_dir.resolve()))


def render_or_remove(stack: str, out: Path, project_dir: Path) -> int:
    try:
        final = render(stack, out, project_dir)
    except TestinfraError as exc:
        # An earlier render of this stack no longer matches the files: remove it rather than leave
        # it looking current.
        stale = out / stack
        removed = naming.is_stack_name(stack) and stale.is_dir()
        if removed:
            shutil.rmtree(stale)
        raise RenderFailed(f"failed, nothing written{f' (removed the earlier render {stale})' if removed else ''}:"
                           f"\n{exc}") from None
    print(summary(stack, final))
    return 0


class RenderFailed(TestinfraError):
    """The stack could not be rendered; the message carries why, from the loader or helm."""


if __name__ == "__main__":
    sys.exit(main())
