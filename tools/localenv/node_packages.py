"""`make node-packages`: the Debian packages the local node runs on, installed when one is missing.

Owns the list: each package with the file that shows it is installed. containerd 1.6 with its CRI
plugin, runc and the CNI plugins run the pods; socat relays the node's network namespace to the
API server; iproute2 and util-linux set the namespaces up; gcc builds the pod sandbox image;
dpkg-deb unpacks the suite image's packages; chromium is the browser the e2e tier opens the
run-history page in (`make report`; Playwright drives Debian's build, it downloads no browser).

Usage: python -m tools.localenv.node_packages [--check]
Exit 0 when all are there (installed now or before); 1 with one message naming what is missing
and why it could not be installed (--check: only say what is missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = {
    "containerd": "containerd",
    "runc": "runc",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "socat": "socat",
    "iproute2": "ip",
    "util-linux": "unshare",
    "gcc": "gcc",
    "libc6-dev": "/usr/lib/x86_64-linux-gnu/libc.a",
    "dpkg": "dpkg-deb",
    "apt": "apt-get",
    "chromium": "/usr/bin/chromium",
}


def missing() -> list[str]:
    return [pkg for pkg, probe in PACKAGES.items()
            if not (Path(probe).exists() if probe.startswith("/") else shutil.which(probe))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only say what is missing")
    ns = ap.parse_args(argv)
    absent = missing()
    if not absent:
        return 0
    if ns.check:
        print(f"node-packages: missing {', '.join(absent)}: run `make node-packages`", file=sys.stderr)
        return 1
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"node-packages: missing {', '.join(absent)}; installing them needs root and apt-get "
              f"(apt-get install {' '.join(absent)})", file=sys.stderr)
        return 1
    print(f"node-packages: installing {', '.join(absent)} ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv_ in (["apt-get", "update", "-qq"],
                  ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *absent]):
        proc = subprocess.run(argv_, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"node-packages: `{' '.join(argv_[:2])}` failed: {proc.stderr.strip()[-800:]}", file=sys.stderr)
            return 1
    still = missing()
    if still:
        print(f"node-packages: still missing after install: {', '.join(still)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
