"""The one place measured figures are kept: `docs/figures.json` (every recorded run: what, when, on
which machine, by which command, the figures) and `docs/figures.md` rendered from it. The README and
docs quote figures only from there. The benchmark scripts record with `--record`; anything else that
prints a JSON object (e.g. `make e2e`'s build/e2e/timings.json) is recorded with

    python -m bench.record NAME --command "make e2e" FILE.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
FIGURES = PROJECT_DIR / "docs" / "figures.json"
PAGE = PROJECT_DIR / "docs" / "figures.md"
KEEP = 6  # runs kept per name: enough to see the spread between runs, not a diary


def machine() -> str:
    """Cores, memory and CPU model: what a figure depends on."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB, {model}, {platform.system()} {platform.machine()}"


def record(name: str, command: str, figures: list[dict[str, Any]] | dict[str, Any], *,
           path: Path = FIGURES, page: Path = PAGE) -> None:
    runs = json.loads(path.read_text()) if path.exists() else []
    runs.append({"name": name, "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                 "machine": machine(), "command": command,
                 "figures": figures if isinstance(figures, list) else [figures]})
    kept = [r for r in runs if r["name"] != name] + [r for r in runs if r["name"] == name][-KEEP:]
    path.write_text(json.dumps(kept, indent=1) + "\n")
    page.write_text(render(kept))


def render(runs: list[dict[str, Any]]) -> str:
    lines = ["# Measured figures", "",
             "Written by `bench/record.py` from `docs/figures.json`; do not edit by hand. Each run: when, on which",
             "machine, by which command, and what it printed. What each figure means: [benchmarks.md](benchmarks.md).", ""]
    for name in sorted({r["name"] for r in runs}):
        lines += [f"## {name}", ""]
        for run in (r for r in runs if r["name"] == name):
            lines += [f"- {run['date']}, {run['machine']}: `{run['command']}`", ""]
            rows = run["figures"]
            keys = list(dict.fromkeys(k for row in rows for k, v in row.items() if not isinstance(v, dict | list)))
            lines += ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
            lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("file", type=Path)
    ap.add_argument("--command", required=True)
    ns = ap.parse_args()
    record(ns.name, ns.command, json.loads(ns.file.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
