"""`make e2e`: the end-to-end tier, or a plain statement of why it did not run.

Owns the rule of when the end-to-end tests run (docs/end-to-end.md):
- every binary of tools/toolchain/toolchain.toml built at its pin -> run the tests;
- not built, but Go's module cache holds every pinned module (a warm machine: building is
  mostly linking, minutes) -> build with tools/toolchain/build.py, then run the tests;
- Go's caches are cold (a new machine: the cold build was measured at COLD_BUILD_MINUTES) -> print
  what is missing, the command that builds it and how long it takes, and exit 0 WITHOUT running or
  reporting any end-to-end test. `E2E_BUILD_COLD=1` builds anyway.
Exit status otherwise: pytest's (0 all passed, non-zero when a test failed or the build failed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tools.toolchain.build import DEFAULT_BIN, ROOT, load_toolchain, output_path, record_key

# Measured on the 2-core machine (docs/end-to-end.md): the whole toolchain from empty caches.
COLD_BUILD_MINUTES = 30


def missing_binaries() -> list[str]:
    record_file = DEFAULT_BIN / "versions.json"
    record = json.loads(record_file.read_text()) if record_file.exists() else {}
    return [
        name for name, spec in load_toolchain()["binaries"].items()
        if record.get(name, {}).get("source") != record_key(spec) or not output_path(name, spec).exists()
    ]


def _escape(module: str) -> str:
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in module)


def module_cache_warm() -> bool:
    try:
        gomodcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True,
                                    check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return False
    download = Path(gomodcache) / "cache" / "download"
    return all(
        (download / _escape(spec["module"]) / "@v" / f"{spec['version']}.zip").exists()
        for spec in load_toolchain()["binaries"].values()
    )


def main() -> int:
    missing = missing_binaries()
    if missing:
        if not module_cache_warm() and os.environ.get("E2E_BUILD_COLD") != "1":
            print(
                "E2E NOT RUN: the end-to-end toolchain is not built on this machine "
                f"(missing: {', '.join(missing)}) and Go's module cache is cold.\n"
                f"  Build it with `make e2e-tools` (about {COLD_BUILD_MINUTES} min on 2 cores from "
                "empty caches; a few minutes when warm), then run `make e2e` again.\n"
                "  No end-to-end test ran; none is reported as passed.",
                flush=True,
            )
            return 0
        print(f"e2e: building {', '.join(missing)} (Go's caches are warm) ...", flush=True)
        built = subprocess.run([sys.executable, "-m", "tools.toolchain.build"], cwd=ROOT, check=False)
        if built.returncode != 0:
            print("e2e: the toolchain build failed (above); no end-to-end test ran", flush=True)
            return built.returncode
    # One worker per group of modules (`-n auto`: E2E_GROUPS in tests/e2e/conftest.py decides how many),
    # each on a local environment of its own: the groups mostly wait on pods and servers, not on CPU.
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-v", "-rA", "-x", "--durations=12",
         "--strict-markers", "-n", "auto", "--dist", "loadscope", str(ROOT / "tests" / "e2e")],
        cwd=ROOT, check=False,
    )
    return tests.returncode


if __name__ == "__main__":
    sys.exit(main())
