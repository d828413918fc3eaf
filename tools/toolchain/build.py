"""`make e2e-tools`: compile the end-to-end toolchain from the Go module proxy.

Owns: turning each entry of tools/toolchain/toolchain.toml into a wrapper module under
.tools/e2e/src/<name> (the upstream module required at its pinned version, its non-local
`replace` lines copied, each local one pointed at the published module), building it with
`go build -trimpath`, and recording what was built in .tools/e2e/bin/versions.json. A binary whose
record matches its pin is not rebuilt (idempotent); Go's own caches make a rebuild a link step.

Usage: python -m tools.toolchain.build [--only NAME ...] [--bin DIR]
Exit 0 when every binary is built, 1 when one failed (named with the last lines of its log).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOOLCHAIN = ROOT / "tools" / "toolchain" / "toolchain.toml"
TOOLS_DIR = ROOT / ".tools" / "e2e"
DEFAULT_BIN = TOOLS_DIR / "bin"
SRC_DIR = TOOLS_DIR / "src"
LOG_DIR = TOOLS_DIR / "logs"


class BuildError(Exception):
    """One binary could not be built; the message says which step and why."""


def load_toolchain(path: Path = TOOLCHAIN) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def go(*args: str, cwd: Path, log: Path | None = None) -> str:
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    proc = subprocess.run(
        ["go", *args], cwd=cwd, env=env, text=True, capture_output=True, check=False
    )
    if log is not None:
        with log.open("a") as f:
            f.write(f"$ go {' '.join(args)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
        raise BuildError(f"`go {args[0]}` failed:\n{tail}")
    return proc.stdout


def go_problem() -> str | None:
    """Why the Go-built checkers cannot be built here (no go, or one too old), or None."""
    if shutil.which("go") is None:
        return "no go on PATH"
    try:
        go_version_ok(load_toolchain()["go"]["minimum"])
    except (BuildError, subprocess.CalledProcessError, OSError) as exc:
        return str(exc)
    return None


def go_version_ok(minimum: str) -> str:
    out = subprocess.run(["go", "version"], capture_output=True, text=True, check=True).stdout
    m = re.search(r"go(\d+)\.(\d+)", out)
    if not m or (int(m[1]), int(m[2])) < tuple(int(p) for p in minimum.split(".")):
        raise BuildError(f"Go {minimum} or newer is needed, found: {out.strip()}")
    return out.split()[2]


def upstream_gomod(module: str, version: str, cwd: Path, log: Path) -> tuple[dict[str, Any], Path]:
    info = json.loads(go("mod", "download", "-json", f"{module}@{version}", cwd=cwd, log=log))
    if info.get("Error"):
        raise BuildError(f"the proxy refused {module}@{version}: {info['Error']}")
    parsed = json.loads(go("mod", "edit", "-json", info["GoMod"], cwd=cwd))
    return parsed, Path(info["Dir"])


def wrapper_gomod(name: str, spec: dict[str, Any], upstream: dict[str, Any]) -> str:
    """go.mod of the wrapper: require the upstream module, keep its replaces, resolve local ones."""
    lines = [f"module {spec.get('wrapper_module', f'testinfra.e2e/{name}')}", "", f"go {upstream['Go']}", ""]
    for gd in upstream.get("Godebug") or []:
        lines.append(f"godebug {gd['Key']}={gd['Value']}")
    lines.append(f"require {spec['module']} {spec['version']}")
    for module, version in sorted(spec.get("requires", {}).items()):
        lines.append(f"require {module} {version}")
    local = spec.get("local_replaces", {})
    default = spec.get("local_replaces_default")
    for rep in upstream.get("Replace") or []:
        old, new = rep["Old"]["Path"], rep["New"]
        if new["Path"].startswith("."):
            if "FORBIDDEN" in new["Path"] or spec.get("drop_local_replaces"):
                continue  # etcd's guard against test modules; the bridge's test-only vendored providers
            version = local.get(old, default)
            if version is None:
                raise BuildError(
                    f"{name}: upstream replaces {old} with a local folder; give its version in "
                    f"tools/toolchain/toolchain.toml (local_replaces)"
                )
            lines.append(f"replace {old} => {old} {version}")
        else:
            old_v = f" {rep['Old']['Version']}" if rep["Old"].get("Version") else ""
            lines.append(f"replace {old}{old_v} => {new['Path']} {new.get('Version', '')}".rstrip())
    return "\n".join(lines) + "\n"


MAIN_TEMPLATES = {
    # etcd's own main lives in the root module; etcdmain is the same entry point.
    "etcd": 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
    "func main() { etcdmain.Main(os.Args) }\n",
    # The provider's main embeds schema files its generator writes; the builder writes them here.
    "kubernetes-provider": 'package main\n\nimport (\n\t_ "embed"\n\n'
    '\t"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"\n'
    '\t"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"\n)\n\n'
    "//go:embed schema-embed.json\nvar pulumiSchema []byte\n\n"
    "//go:embed terraform-mapping-embed.json\nvar terraformMapping []byte\n\n"
    'func main() { provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping) }\n',
}


def prepare_sources(name: str, spec: dict[str, Any], src: Path, upstream_dir: Path) -> None:
    if "source" in spec:
        for f in (ROOT / spec["source"]).iterdir():
            if f.suffix == ".go":
                shutil.copy(f, src / f.name)
    template = spec.get("main")
    if template in MAIN_TEMPLATES:
        (src / "main.go").write_text(MAIN_TEMPLATES[template])
    if template == "bridged-schema":
        # Placeholders for the first build, which only runs `tfgen schema`.
        (src / "schema.json").write_text("{}")
        (src / "bridge-metadata.json").write_text("{}")
    if template == "kubernetes-provider":
        cmd = upstream_dir / "cmd" / "pulumi-resource-kubernetes"
        schema = json.loads((cmd / "schema.json").read_text())
        schema["version"] = spec["release"]
        (src / "schema-embed.json").write_text(json.dumps(schema))
        mapping = json.loads((cmd / "terraform-mapping.json").read_text())
        (src / "terraform-mapping-embed.json").write_text(json.dumps(mapping))


def build_one(name: str, spec: dict[str, Any], bin_dir: Path) -> float:
    output_path(name, spec, bin_dir).parent.mkdir(parents=True, exist_ok=True)
    src = SRC_DIR / name
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{name}.log"
    log.write_text("")
    started = time.monotonic()
    upstream, upstream_dir = upstream_gomod(spec["module"], spec["version"], src, log)
    (src / "go.mod").write_text(wrapper_gomod(name, spec, upstream))
    prepare_sources(name, spec, src, upstream_dir)
    pkg = spec["package"]
    ldflags = " ".join(f.format(**spec) for f in spec.get("ldflags", []))
    args = ["build", "-trimpath", "-ldflags", f"-s -w {ldflags}".strip(), "-o", str(output_path(name, spec, bin_dir))]
    if spec.get("tags"):
        args += ["-tags", ",".join(spec["tags"])]
    if pkg != ".":
        # `go get PKG` alone would upgrade the module to its latest release: name the pin.
        go("get", f"{pkg}@{spec['version']}", cwd=src, log=log)
    else:
        go("mod", "tidy", cwd=src, log=log)
    go(*args, pkg, cwd=src, log=log)
    if spec.get("main") == "bridged-schema":
        binary = output_path(name, spec, bin_dir)
        out = src / "tfgen-out"
        proc = subprocess.run([str(binary), "tfgen", "schema", "--out", str(out)], capture_output=True, text=True,
                              check=False)
        with log.open("a") as f:
            f.write(f"$ {binary.name} tfgen schema\n{proc.stdout}{proc.stderr}\n")
        if proc.returncode != 0:
            raise BuildError(f"`tfgen schema` failed: {proc.stderr.strip()[-800:]}")
        for generated in ("schema.json", "bridge-metadata.json"):
            shutil.copy(out / generated, src / generated)
        go(*args, pkg, cwd=src, log=log)  # now with the schema embedded: a link step
    if name == "pulumi-language-python":
        # The SDK module ships the script the host runs and the dynamic-provider host.
        sdk = Path(
            json.loads(go("mod", "download", "-json", f"{spec['module']}@{spec['version']}", cwd=src))["Dir"]
        )
        for script in (sdk / "python" / "cmd" / "pulumi-language-python-exec",
                       sdk / "python" / "dist" / "pulumi-resource-pulumi-python"):
            target = bin_dir / script.name
            shutil.copy(script, target)
            target.chmod(0o755)
    return time.monotonic() - started


def output_path(name: str, spec: dict[str, Any], bin_dir: Path = DEFAULT_BIN) -> Path:
    """Where a binary goes: bin/, or the folder its entry names (providers stay off PATH)."""
    return (bin_dir.parent / spec["dir"] / name) if "dir" in spec else bin_dir / name


def record_key(spec: dict[str, Any]) -> str:
    """What a built binary came from: the module version, and our own sources when it has some."""
    key = f"{spec['module']}@{spec['version']} {spec.get('release', '')}".strip()
    if "source" in spec:
        digest = hashlib.sha256()
        for f in sorted((ROOT / spec["source"]).glob("*.go")):
            digest.update(f.name.encode() + b"\0" + f.read_bytes())
        key += f" {spec['source']}@{digest.hexdigest()[:12]}"
    return key


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="build only these binaries")
    ap.add_argument("--bin", type=Path, default=DEFAULT_BIN, help="where binaries go")
    ap.add_argument("--force", action="store_true", help="rebuild even when the record matches")
    ap.add_argument("--go-problem", action="store_true",
                    help="print why Go-built checkers cannot be built here and exit 3; exit 0 when they can")
    ns = ap.parse_args(argv)
    if ns.go_problem:
        problem = go_problem()
        if problem:
            print(problem)
        return 3 if problem else 0
    toolchain = load_toolchain()
    try:
        go_ver = go_version_ok(toolchain["go"]["minimum"])
    except (BuildError, FileNotFoundError) as e:
        print(f"e2e-tools: {e}", file=sys.stderr)
        return 1
    bin_dir: Path = ns.bin
    bin_dir.mkdir(parents=True, exist_ok=True)
    record_file = bin_dir / "versions.json"
    record = json.loads(record_file.read_text()) if record_file.exists() else {}
    names = ns.only or list(toolchain["binaries"])
    failed = []
    total = time.monotonic()
    for i, name in enumerate(names, 1):
        spec = toolchain["binaries"].get(name)
        if spec is None:
            print(f"e2e-tools: no binary {name!r} in {TOOLCHAIN.relative_to(ROOT)}", file=sys.stderr)
            return 1
        key = record_key(spec)
        if not ns.force and record.get(name, {}).get("source") == key and output_path(name, spec, bin_dir).exists():
            print(f"[{i}/{len(names)}] {name}: up to date ({key})", flush=True)
            continue
        print(f"[{i}/{len(names)}] {name}: building {key} ...", flush=True)
        try:
            seconds = build_one(name, spec, bin_dir)
        except BuildError as e:
            print(f"[{i}/{len(names)}] {name}: FAILED ({e}); log: {LOG_DIR / (name + '.log')}", flush=True)
            failed.append(name)
            continue
        # Re-read: another builder may have recorded a binary meanwhile.
        record = json.loads(record_file.read_text()) if record_file.exists() else {}
        record[name] = {"source": key, "go": go_ver, "seconds": round(seconds, 1)}
        record_file.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        print(f"[{i}/{len(names)}] {name}: built in {seconds:.0f} s", flush=True)
    print(f"e2e-tools: {len(names) - len(failed)}/{len(names)} built or up to date in "
          f"{time.monotonic() - total:.0f} s; binaries in {bin_dir}", flush=True)
    if failed:
        print(f"e2e-tools: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
