"""`make local-envs` (`python -m tools.localenv.listing`): every local environment with a folder here,
one line each -- its name, whether it runs (naming a piece that stopped), its stack, kube context, ports
and folder. Standard library only, like the stop path: it answers on a machine with nothing installed.

Exit 0; the listing says "no environment here" when there is none.
"""

from __future__ import annotations

import sys

from tools.localenv import layout
from tools.localenv.processes import Processes


def state_of(name: str) -> str:
    processes = Processes(layout.folder_of(name))
    running = processes.running() if processes.pids.exists() else {}
    stopped = [piece for piece, is_running in running.items() if not is_running]
    if not running:
        return "stopped"
    if stopped:
        return f"DEGRADED ({', '.join(stopped)} not running)"
    return f"running ({len(running)} process{'es' if len(running) > 1 else ''})"


def listing() -> list[str]:
    lines = []
    for name in layout.environments():
        ports = layout.ports_of(name)
        where = f"API server :{ports.apiserver}, Vault :{ports.vault}" if ports else "no ports recorded"
        lines.append(f"{name:<15} {state_of(name):<30} stack {layout.stack_of(name):<20} "
                     f"context {layout.context_of(name):<28} {where}  {layout.folder_of(name)}")
    return lines


def main() -> int:
    print("\n".join(listing()) or "local-env: no environment here (make local-env [NAME=<name>])")
    return 0


if __name__ == "__main__":
    sys.exit(main())
