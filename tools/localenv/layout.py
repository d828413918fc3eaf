"""Where a local environment lives and how its pieces find each other: its name and folder, the
binaries it runs, its loopback ports, its kube context and stack, and the one Processes record of what
it started.

Several environments can run at once, each by name (`make local-env NAME=<name>`, exported to the
tools as TESTINFRA_LOCAL_ENV): the default one, `local`, lives in build/local-env on the documented
ports the committed Pulumi.local.yaml names; any other in build/local-envs/<name> on ports chosen free
when it starts, recorded in its ports.json, with a stack `local-<name>` of its own (its
Pulumi.local-<name>.yaml, written by the environment from Pulumi.local.yaml, never committed).
Standard library only: `make local-env-down` imports this under any python3.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from tools.localenv.processes import LocalEnvError, Processes

ROOT = Path(__file__).resolve().parents[2]
E2E_BIN = ROOT / ".tools" / "e2e" / "bin"
TOOLS_BIN = ROOT / ".tools" / "bin"
VENV_BIN = ROOT / ".venv" / "bin"
PULUMI_HOME = ROOT / ".tools" / "e2e" / "pulumi-home"
PROTO_PROJECT = ROOT / "tools" / "localenv" / "proto_stack"
E2E_PROVIDERS = ROOT / ".tools" / "e2e" / "providers"

DEFAULT_NAME = "local"
NAME_VARIABLE = "TESTINFRA_LOCAL_ENV"
MAX_NAME = 14  # its stack, local-<name>, stays within the 20 characters of a stack name
DEFAULT_FOLDER = ROOT / "build" / "local-env"
NAMED_FOLDERS = ROOT / "build" / "local-envs"
PROTO_STACK = "organization/ameide-core-proto/local"  # in each environment's own backend
# Not a secret: the local stacks hold only throwaway generated values, in the environment's state.
# Fixed, so the encryption salts committed in Pulumi.local.yaml (both projects) stay valid for
# every fresh local environment; staging and prod never use it.
LOCAL_PASSPHRASE = "testinfra-local-environment-not-a-secret"
REQUIRED_BINARIES = (E2E_BIN / "etcd", E2E_BIN / "kube-apiserver", E2E_BIN / "kube-controller-manager",
                     E2E_BIN / "kubelet", E2E_BIN / "kube-scheduler",
                     E2E_BIN / "external-secrets", E2E_BIN / "pulumi", E2E_BIN / "pulumi-language-python",
                     E2E_PROVIDERS / "pulumi-resource-kubernetes", E2E_PROVIDERS / "pulumi-resource-random")


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one environment (the node's own network namespace has the kubelet's too)."""

    etcd: int
    etcd_peer: int
    apiserver: int
    vault: int
    eso_metrics: int
    scheduler: int
    oidc: int  # the local OIDC issuer (tools/localenv/oidc.py), GitHub Actions' token service here
    kubelet: int  # the host end of the relay to the node's kubelet, as the API server reaches it
    rehearsal_vault: int  # the rehearsal's TLS OpenBao (tools/localenv/rehearse.py)
    s3: int  # the S3 API for state of the rehearsals and the benchmarks (tools/localenv/s3.py)


# The default environment's, named in the committed Pulumi.local.yaml (vaultAddress, vaultKubernetesHost).
DOCUMENTED_PORTS = Ports(etcd=23790, etcd_peer=23800, apiserver=16443, vault=8200, eso_metrics=18080,
                         scheduler=20259, oidc=18443, kubelet=20250, rehearsal_vault=8210, s3=17070)


def name_problem(name: str) -> str | None:
    if re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= MAX_NAME:
        return None
    return (f"NAME={name[:40]!r}: not an environment name: lower-case letters, digits and '-', up to {MAX_NAME} "
            f"(default {DEFAULT_NAME})")


def folder_of(name: str) -> Path:
    return DEFAULT_FOLDER if name == DEFAULT_NAME else NAMED_FOLDERS / name


def stack_of(name: str) -> str:
    """The Pulumi stack that deploys into the environment: `local`, or `local-<name>`."""
    return "local" if name == DEFAULT_NAME else f"local-{name}"


def context_of(name: str) -> str:
    return "ameide-local" if name == DEFAULT_NAME else f"ameide-local-{name}"


GIVEN_NAME = os.environ.get(NAME_VARIABLE) or DEFAULT_NAME
# A bad name is refused by the command (environment.main, stop.down) with its message; the folder
# must still be a path of ours whatever was given.
NAME = GIVEN_NAME if name_problem(GIVEN_NAME) is None else DEFAULT_NAME
STATE = folder_of(NAME)
PROCESSES = Processes(STATE)
KUBE_CONTEXT = context_of(NAME)
STACK = stack_of(NAME)
PORTS_FILE = STATE / "ports.json"


def chosen_name_problem() -> str | None:
    """The message for a TESTINFRA_LOCAL_ENV that is no environment name (None when it is one)."""
    return name_problem(GIVEN_NAME)


def ports_of(name: str) -> Ports | None:
    """The ports environment `name` was started on, as its ports.json records them (None: not started)."""
    try:
        recorded = json.loads((folder_of(name) / "ports.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(recorded, dict) or any(not isinstance(recorded.get(f.name), int) for f in fields(Ports)):
        return None  # written by an older version of this file, or not by it: the environment starts afresh
    return Ports(**{f.name: recorded[f.name] for f in fields(Ports)})


def ports() -> Ports:
    """The ports this environment was started on (the documented ones before the default has started)."""
    recorded = ports_of(NAME)
    if recorded is not None:
        return recorded
    if NAME == DEFAULT_NAME:
        return DOCUMENTED_PORTS
    raise LocalEnvError(f"environment {NAME} has not been started ({PORTS_FILE} is missing): "
                        f"`make local-env NAME={NAME}`")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers bind (Go and OpenBao set SO_REUSEADDR): connections of the environment stopped a
        # moment ago, still in TIME_WAIT on the port, do not hold it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now, all different (held open together until each is known)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def allocate_ports() -> Ports:
    """Decide this environment's ports at its start and record them in ports.json beside its state."""
    if NAME == DEFAULT_NAME:
        taken = [f"{f.name} {getattr(DOCUMENTED_PORTS, f.name)}" for f in fields(Ports)
                 if not _is_free(getattr(DOCUMENTED_PORTS, f.name))]
        if taken:
            raise LocalEnvError(f"the default environment's ports are in use ({', '.join(taken)}; Pulumi.local.yaml "
                                "names them): stop what holds them, or start a named environment on free ports "
                                "with `make local-env NAME=<name>`")
        chosen = DOCUMENTED_PORTS
    else:
        chosen = Ports(*_free_ports(len(fields(Ports))))
    PORTS_FILE.write_text(json.dumps(asdict(chosen), indent=2) + "\n")
    return chosen


def api_server() -> str:
    return f"https://127.0.0.1:{ports().apiserver}"


def etcd_url() -> str:
    return f"https://127.0.0.1:{ports().etcd}"


def vault_address() -> str:
    return f"http://127.0.0.1:{ports().vault}"


def environments() -> list[str]:
    """Every environment with a folder here: the default first, then the named ones by name."""
    named = sorted(p.name for p in NAMED_FOLDERS.iterdir() if p.is_dir()) if NAMED_FOLDERS.is_dir() else []
    return ([DEFAULT_NAME] if DEFAULT_FOLDER.is_dir() else []) + [n for n in named if name_problem(n) is None]


@contextlib.contextmanager
def shared_setup() -> Iterator[None]:
    """Held while an environment fills what environments of this checkout share (the image build's
    download cache, the installed provider plugins): two starting at once take turns there."""
    lock = ROOT / ".tools" / "local-env-setup.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
