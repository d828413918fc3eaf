"""What the project takes from the pinned External Secrets Operator module (tools/toolchain/toolchain.toml):
the CRD schemas the fast tier validates against, and the RBAC ESO's own chart grants its controller.

Owns: finding ESO's CRD bundle (`deploy/crds/bundle.yaml` of the pinned Go module, the one
`make local-env` applies) and writing the `v1` OpenAPI schema of ExternalSecret, SecretStore and
ClusterSecretStore to `schemas/external-secrets/<Kind>.v1.json`, with `source.json` recording the
module, version and the bundle's SHA-256. The files are committed, so `make test` needs no Go and no
network; `--check` (run by `make e2e`, where the module is in Go's cache) proves they match the pin.

Usage: python -m tools.toolchain.eso_schemas [--check]
Exit 0 when written (or, with --check, identical); 1 when --check finds a difference; 2 when the
module cannot be had.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tools.toolchain.build import ROOT, load_toolchain  # the one reader of toolchain.toml

SCHEMA_DIR = ROOT / "schemas" / "external-secrets"
KINDS = ("ExternalSecret", "SecretStore", "ClusterSecretStore")
SERVED_VERSION = "v1"


def eso_pin() -> dict[str, str]:
    spec = load_toolchain()["binaries"]["external-secrets"]
    return {"module": spec["module"], "version": spec["version"]}


def eso_crd_bundle() -> Path:
    """The pinned ESO module's CRD bundle, downloaded into Go's module cache if it is not there."""
    pin = eso_pin()
    try:
        proc = subprocess.run(["go", "mod", "download", "-json", f"{pin['module']}@{pin['version']}"],
                              capture_output=True, text=True, check=False, cwd=ROOT,
                              env={**os.environ, "GOFLAGS": "-mod=mod"})
    except FileNotFoundError:
        raise SystemExit(f"go not found on PATH: ESO's CRDs come from the pinned module {pin['module']} in Go's "
                         "module cache -- put the Go toolchain `make e2e-tools` used on PATH") from None
    if proc.returncode != 0:
        raise SystemExit(f"cannot download {pin['module']}@{pin['version']}: {proc.stderr.strip()[-400:]}")
    return Path(json.loads(proc.stdout)["Dir"]) / "deploy" / "crds" / "bundle.yaml"


def schemas_from_bundle(bundle: Path) -> dict[str, Any]:
    import yaml  # only here: `make local-env-down` imports this module with the system Python

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found: dict[str, Any] = {}
    for doc in yaml.load_all(bundle.read_text(), Loader=loader):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        kind = doc["spec"]["names"]["kind"]
        if kind in KINDS and doc["spec"]["group"] == "external-secrets.io":
            version = next(v for v in doc["spec"]["versions"] if v["name"] == SERVED_VERSION)
            found[kind] = version["schema"]["openAPIV3Schema"]
    missing = sorted(set(KINDS) - set(found))
    if missing:
        raise SystemExit(f"{bundle}: no {SERVED_VERSION} schema for {', '.join(missing)}")
    return found


def eso_controller_rbac(workdir: Path, helm: Path, user: str) -> str:
    """The ClusterRole ESO's own Helm chart grants its controller, and its binding -- bound to `user`
    (the client-certificate user ESO runs as in the local environment) instead of the chart's service
    account. Rendered with the real helm from the chart; its optional dependency is dropped."""
    import shutil

    import yaml

    chart = workdir / "eso-chart"
    shutil.copytree(eso_crd_bundle().parents[1] / "charts" / "external-secrets", chart)
    for path in [chart, *chart.rglob("*")]:
        path.chmod(0o700 if path.is_dir() else 0o600)  # the module cache is read-only
    (chart / "Chart.lock").unlink(missing_ok=True)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta.pop("dependencies", None)
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    proc = subprocess.run([str(helm), "template", "eso", str(chart), "--namespace", "external-secrets",
                           "--set", "installCRDs=false", "--set", "webhook.create=false",
                           "--set", "certController.create=false"], capture_output=True, text=True, timeout=120,
                          check=False, cwd=workdir, env={**os.environ, "HOME": str(workdir / "home")})
    if proc.returncode != 0:
        raise ValueError(f"helm template of ESO's chart failed: {proc.stderr.strip()[-800:]}")
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    role = next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-controller"))
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding"
                   and d["roleRef"]["name"] == role["metadata"]["name"])
    binding["subjects"] = [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]
    return str(yaml.safe_dump_all([role, binding]))


def expected_files() -> dict[str, str]:
    bundle = eso_crd_bundle()
    files = {f"{kind}.{SERVED_VERSION}.json": json.dumps(schema, indent=1, sort_keys=True) + "\n"
             for kind, schema in schemas_from_bundle(bundle).items()}
    source = {**eso_pin(), "file": "deploy/crds/bundle.yaml",
              "sha256": hashlib.sha256(bundle.read_bytes()).hexdigest(), "served": SERVED_VERSION}
    files["source.json"] = json.dumps(source, indent=1, sort_keys=True) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = parser.parse_args(argv)
    try:
        files = expected_files()
    except SystemExit as exc:
        print(f"eso_schemas: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = [name for name, text in files.items()
                 if not (SCHEMA_DIR / name).is_file() or (SCHEMA_DIR / name).read_text() != text]
        if stale:
            print(f"eso_schemas: {', '.join(stale)} in {SCHEMA_DIR.relative_to(ROOT)} differ from "
                  f"{files['source.json'].strip()}: run `python -m tools.toolchain.eso_schemas` and commit",
                  file=sys.stderr)
            return 1
        print(f"eso_schemas: {SCHEMA_DIR.relative_to(ROOT)} matches {eso_pin()['version']}")
        return 0
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (SCHEMA_DIR / name).write_text(text)
    print(f"eso_schemas: wrote {len(files)} files to {SCHEMA_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
