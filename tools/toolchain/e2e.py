"""`make e2e`: the end-to-end tier, or a plain statement of why it did not run.

Owns the rule of when the end-to-end tests run (docs/end-to-end.md):
- every binary of tools/toolchain/toolchain.toml built at its pin -> run the tests;
- not built, but Go's module cache holds every pinned module (a warm machine: building is
  mostly linking, minutes) -> build with tools/toolchain/build.py, then run the tests;
- Go's caches are cold (a new machine: the cold build was measured at COLD_BUILD_MINUTES) -> print
  what is missing, the command that builds it and how long it takes, and exit 0 WITHOUT running or
  reporting any end-to-end test. `E2E_BUILD_COLD=1` builds anyway.
Exit status otherwise: pytest's (0 all passed, non-zero when a test failed or the build failed).
Also owns the tier's reading of the machine (build/e2e/machine.json and one printed line): how long
the CPUs were busy during the tests and the CPU time of a fixed reference loop before and after --
the speed of this machine at that moment, which on a shared VM varies run to run, so wall times of
different runs are compared against it.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
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


REFERENCE_LOOP = 5_000_000  # 0.2-0.3 s of one core of the 2-core machine


def reference_cpu_seconds() -> float:
    """CPU seconds one core spends on a fixed pure-Python loop: lower is a faster machine right now."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    total = 0
    for i in range(REFERENCE_LOOP):
        total += i
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_utime - before, 3)


def busy_cpu_seconds(stat: str | None = None) -> float:
    """CPU seconds all CPUs have run something since boot: /proc/stat's first line, all but idle, iowait
    and steal (time the hypervisor gave to another guest)."""
    line = (stat if stat is not None else Path("/proc/stat").read_text()).splitlines()[0]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in line.split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def run_tests() -> int:
    """pytest over tests/e2e, with the machine read before and after (build/e2e/machine.json)."""
    reference_before, busy_before, started = reference_cpu_seconds(), busy_cpu_seconds(), time.monotonic()
    # One worker per group of modules (`-n auto`: E2E_GROUPS in tests/e2e/conftest.py decides how many),
    # each on a local environment of its own.
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-v", "-rA", "-x", "--durations=12",
         "--strict-markers", "-n", "auto", "--dist", "loadscope", str(ROOT / "tests" / "e2e")],
        cwd=ROOT, check=False,
    )
    wall, busy = time.monotonic() - started, busy_cpu_seconds() - busy_before
    cpus, reference_after = os.cpu_count() or 1, reference_cpu_seconds()
    machine = {"wall_s": round(wall, 1), "cpus": cpus, "busy_cpu_s": round(busy, 1),
               "reference_cpu_s": [reference_before, reference_after], "pytest_exit": tests.returncode}
    out = ROOT / "build" / "e2e" / "machine.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(machine, indent=2) + "\n")
    print(f"e2e: {wall:.0f} s; the machine's {cpus} CPUs busy {busy:.0f} CPU-s ({busy / max(wall * cpus, 1e-9):.0%}); "
          f"the reference loop took {reference_before} s of CPU before, {reference_after} s after (the machine's "
          f"speed: compare runs against it) -> {out.relative_to(ROOT)}", flush=True)
    return tests.returncode


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
    return run_tests()


if __name__ == "__main__":
    sys.exit(main())
