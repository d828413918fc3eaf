"""The local environment's node: containerd + runc + the CNI bridge (Debian packages), the kubelet
(built by `make e2e-tools`), all inside private mount, network and PID namespaces of their own.

Owns: the node's configuration files, the launcher that sets its namespaces up, and the relays that
join its network namespace to the API server on the host's loopback -- through Unix sockets under
build/, so no interface, route or firewall rule is ever added to the machine.

Inside the namespaces: /var/lib, /var/log and /run are the node's own folders (build/local-env/node)
or a tmpfs (so the checkout must not live below one of them); the three kernel settings the kubelet
insists on writing (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops) are files bound over
their /proc/sys entries, so the machine's own values are never touched. The node's cgroups live
under one root of their own in each hierarchy (`cgroupRoot`), removed by tools/localenv/stop.py when the
environment stops. Ending the launcher (PID 1 of the node's PID namespace) ends every process the
node started, pods included.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import yaml

from tools.localenv.pki import NODE_NAME
from tools.localenv.stop import CGROUP_FS, cgroup_root

POD_SUBNET = "10.88.0.0/16"
POD_GATEWAY = "10.88.0.1"
# Kernel settings the kubelet sets on start unless they already hold these values.
KUBELET_SYSCTLS = {"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes
NODE_LOGS = ("containerd.log", "kubelet.log", "node-relay.log")
# Inside its mount namespace the node has its own of these (a checkout below one would vanish there).
HIDDEN_BY_THE_NODE = (Path("/var/lib"), Path("/var/log"), Path("/run"))


def containerd_config(node: Path, pause_image: str) -> str:
    return f"""version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{node / 'containerd.sock'}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  # No CAP_SYS_RESOURCE on some machines: a negative OOM score cannot be set.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{node / 'cni'}"
"""


def cni_config() -> str:
    return json.dumps({
        "cniVersion": "0.4.0", "name": "testinfra-pods",
        "plugins": [{"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False,
                     "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET, "gateway": POD_GATEWAY}]]}}],
    }, indent=2)


def kubelet_config(node: Path, pki: Path, state: Path, kubelet_port: int) -> str:
    return yaml.safe_dump({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "address": "127.0.0.1", "port": kubelet_port, "readOnlyPort": 0, "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{node / 'containerd.sock'}",
        # Hybrid cgroups (v1 hierarchies + cgroup2 at unified/) on our machines: v1 must be allowed.
        "failCgroupV1": False, "cgroupDriver": "cgroupfs", "cgroupRoot": "/" + cgroup_root(state),
        "oomScoreAdj": 0, "failSwapOn": False, "resolvConf": "",
        "evictionHard": {"memory.available": "100Mi"}, "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99, "serializeImagePulls": False, "maxPods": 32,
        "volumePluginDir": str(node / "volume-plugins"), "podLogsDir": "/var/log/pods",
        "tlsCertFile": str(pki / "kubelet-serving.crt"), "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "rotateCertificates": False, "registerNode": True,
    })


def launcher(node: Path, logs: Path, kubelet: Path, kubeconfig: Path, api_port: int, kubelet_port: int) -> str:
    """The script PID 1 of the node's namespaces runs: mounts, network, relays, containerd, kubelet."""
    q = shlex.quote
    lines = [
        "set -eu",
        # The node's own /var/lib, /var/log, /run and /tmp; nothing lands in the machine's.
        f"mount --bind {q(str(node / 'var-lib'))} /var/lib",
        f"mount --bind {q(str(node / 'var-log'))} /var/log",
        "mount -t tmpfs -o mode=755 tmpfs /run",
        "mkdir -p /run/netns",
        # The node reaches no name server (its network ends at its bridge): with the machine's servers
        # listed, a pull from an unknown registry waits out every DNS timeout before it fails.
        f"if [ -f /etc/resolv.conf ] && [ ! -L /etc/resolv.conf ]; then mount --bind {q(str(node / 'resolv.conf'))} "
        "/etc/resolv.conf; fi",
    ]
    for key in KUBELET_SYSCTLS:
        lines.append(f"mount --bind {q(str(node / 'sysctl' / key.replace('/', '.')))} /proc/sys/{key}")
    lines += [
        "ip link set lo up",
        # The pods' bridge, made here so the node has an address (the kubelet refuses loopback).
        "ip link add cni0 type bridge",
        f"ip addr add {POD_GATEWAY}/16 dev cni0",
        "ip link set cni0 up",
        "ip route add default dev cni0",
        # The API server, as the node sees it: its loopback port, relayed to the host's.
        f"socat TCP-LISTEN:{api_port},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:{q(str(node / 'apiserver.sock'))} "
        f">>{q(str(logs / 'node-relay.log'))} 2>&1 &",
        # The kubelet, as the API server reaches it (logs, exec): the host side listens on loopback.
        f"socat UNIX-LISTEN:{q(str(node / 'kubelet.sock'))},fork,mode=600 TCP:127.0.0.1:{kubelet_port} "
        f">>{q(str(logs / 'node-relay.log'))} 2>&1 &",
        f"containerd --config {q(str(node / 'containerd.toml'))} >>{q(str(logs / 'containerd.log'))} 2>&1 &",
        f"i=0; while [ ! -S {q(str(node / 'containerd.sock'))} ]; do i=$((i+1)); [ $i -lt 200 ] || exit 1; sleep 0.1; done",
        f"{q(str(kubelet))} --config={q(str(node / 'kubelet.yaml'))} --kubeconfig={q(str(kubeconfig))} "
        f"--root-dir=/var/lib/kubelet --hostname-override={NODE_NAME} >>{q(str(logs / 'kubelet.log'))} 2>&1 &",
        # Any of them ending ends the node (and, as PID 1 here, everything it started).
        "wait -n",
        "echo 'node: a process of the node exited; see the logs beside this one' >&2",
        "exit 1",
    ]
    return "\n".join(lines) + "\n"


def prepare(node: Path, logs: Path, pki: Path, state: Path, kubelet: Path, kubeconfig: Path,
            api_port: int, kubelet_port: int, pause_image: str) -> list[str]:
    """Write the node's files; return the command that starts it (run as a process of the environment)."""
    for hidden in HIDDEN_BY_THE_NODE:
        if node.resolve().is_relative_to(hidden):
            raise ValueError(f"the checkout is under {hidden}, which the node's mount namespace replaces with its "
                             f"own: clone it elsewhere (e.g. under /work, /home or /tmp)")
    for sock in ("containerd.sock", "apiserver.sock", "kubelet.sock"):
        if len(str(node / sock)) > MAX_SOCKET_PATH:
            raise ValueError(f"the checkout's path is too long for the node's sockets ({node / sock}): "
                             f"clone it to a shorter path")
    for sub in ("var-lib", "var-log", "cni", "sysctl", "volume-plugins"):
        (node / sub).mkdir(parents=True, exist_ok=True)
    # The node's logs are private from the first byte (no umask here: containerd unpacks image
    # layers with it, and a pod's non-root user must still traverse them).
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    for log in NODE_LOGS:
        os.close(os.open(logs / log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    for key, value in KUBELET_SYSCTLS.items():
        (node / "sysctl" / key.replace("/", ".")).write_text(value + "\n")
    (node / "resolv.conf").write_text("# the node's own: no name server (tools/localenv/node.py)\n")
    (node / "containerd.toml").write_text(containerd_config(node, pause_image))
    (node / "cni" / "10-testinfra-pods.conflist").write_text(cni_config())
    (node / "kubelet.yaml").write_text(kubelet_config(node, pki, state, kubelet_port))
    (node / "launcher.sh").write_text(launcher(node, logs, kubelet, kubeconfig, api_port, kubelet_port))
    make_cgroups(state)
    # PID 1 of a new PID namespace; when it ends, the kernel ends everything inside.
    return ["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc", "--propagation", "private",
            "/bin/bash", str(node / "launcher.sh")]


def host_relays(node: Path, api_port: int, kubelet_port: int) -> dict[str, list[str]]:
    """The host's ends of the two relays (each a process of the environment, stopped by PID)."""
    return {
        "node-api-relay": ["socat", f"UNIX-LISTEN:{node / 'apiserver.sock'},fork,mode=600",
                           f"TCP:127.0.0.1:{api_port}"],
        "node-kubelet-relay": ["socat", f"TCP-LISTEN:{kubelet_port},bind=127.0.0.1,fork,reuseaddr",
                               f"UNIX-CONNECT:{node / 'kubelet.sock'}"],
    }


def make_cgroups(state: Path) -> None:
    """The node's cgroup root in each v1 hierarchy (the kubelet requires it to exist); a cpuset
    takes its parent's CPUs and memory nodes, as v1 requires before any process can join it."""
    name = cgroup_root(state)
    for hierarchy in sorted(CGROUP_FS.iterdir()):
        if hierarchy.name == "unified" or not (hierarchy / "cgroup.procs").exists():
            continue
        (hierarchy / name).mkdir(exist_ok=True)
        if hierarchy.name == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                (hierarchy / name / f).write_text((hierarchy / f).read_text())


