"""`make local-env` / `make local-env-down`: a local environment of real processes on loopback.

Owns: etcd, kube-apiserver and kube-controller-manager (built by `make e2e-tools`) with their own
CA and certificates; an OpenBao dev server (KV v2 at `secret/`); the External Secrets Operator
controller running outside the cluster with a kubeconfig, its CRDs applied; the tiny
`ameide-core-proto` stack the local stack references; and `<folder>/env`, the file from which
`make up|preview|verify|run STACK=<its stack>` take the kubeconfig, Vault address and token, Pulumi
backend and passphrase; and a node (tools/localenv/node.py) on which the suites' Jobs really run. etcd
serves only clients with a certificate of the environment's CA; every server gets a minimal environment.
Each environment by name (TESTINFRA_LOCAL_ENV, make's NAME): its folder, ports, stack and kube context
are tools/localenv/layout.py's; several run at once and share nothing but the built binaries.

Usage: python -m tools.localenv.environment up|down|status (`make local-env-down` runs
tools/localenv/stop.py, which needs nothing but the standard library)
Exit 0 on success; 1 with one message naming what failed and its log when a piece does not start;
2 for a NAME that is no environment name.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from config.files import env_file, write_private
from offline.helm import helm_binary
from tools.localenv import images as local_images
from tools.localenv import layout, node_packages, oidc, stop
from tools.localenv import node as local_node
from tools.localenv.layout import (
    E2E_BIN,
    KUBE_CONTEXT,
    LOCAL_PASSPHRASE,
    PROCESSES,
    PULUMI_HOME,
    REQUIRED_BINARIES,
    ROOT,
    STATE,
    TOOLS_BIN,
    VENV_BIN,
)
from tools.localenv.pki import APISERVER_KUBELET_USER, ESO_USER, issue_server_cert, make_pki, write_kubeconfig
from tools.localenv.processes import LocalEnvError, http_ok, https_ok
from tools.localenv.stacks import deploy_proto_stack, install_plugins, write_local_stack_file
from tools.toolchain.eso_schemas import eso_controller_rbac, eso_crd_bundle  # from the pinned ESO module


def kubectl(*args: str, kubeconfig: Path, input_text: str | None = None) -> str:
    proc = subprocess.run([str(TOOLS_BIN / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
                          input=input_text, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise LocalEnvError(f"kubectl {' '.join(args[:2])} failed: {proc.stderr.strip()[-800:]}")
    return proc.stdout


def start_openbao() -> str:
    """An OpenBao dev server whose logged root token is revoked at once: the environment's token is a
    fresh orphan root token that never appears on a command line, in a log or in ~/.vault-token."""
    bootstrap = secrets.token_hex(16)
    bao = shutil.which("bao", path=str(VENV_BIN)) or "bao"
    address = layout.vault_address()
    PROCESSES.start("openbao", [bao, "server", "-dev", "-dev-no-store-token",
                                f"-dev-listen-address={address.removeprefix('http://')}"],
                    env={"BAO_DEV_ROOT_TOKEN_ID": bootstrap, "HOME": str(STATE / "home")})
    PROCESSES.wait_until("openbao", lambda: http_ok(f"{address}/v1/sys/health"))

    def call(path: str, token: str, body: dict[str, object] | None = None) -> dict[str, object]:
        request = urllib.request.Request(f"{address}/v1/{path}", method="POST",
                                         data=json.dumps(body or {}).encode(), headers={"X-Vault-Token": token})
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else {}

    created = call("auth/token/create-orphan", bootstrap, {"policies": ["root"], "display_name": "local-env"})
    token = str(created["auth"]["client_token"])  # type: ignore[index]
    call("auth/token/revoke-self", bootstrap)
    return token


def start_node(pki: Path, admin_kubeconfig: Path) -> None:
    """The scheduler and one node (tools/localenv/node.py), with the suites' images imported; Ready on return."""
    with layout.shared_setup():
        images = local_images.build_all(STATE / "images")
    ports = layout.ports()
    write_kubeconfig(STATE / "kubelet.kubeconfig", pki, "kubelet", server=layout.api_server(), context=KUBE_CONTEXT)
    write_kubeconfig(STATE / "scheduler.kubeconfig", pki, "scheduler", server=layout.api_server(), context=KUBE_CONTEXT)
    # The API server's calls to the kubelet (logs) are authorised by the kubelet through RBAC.
    kubectl("create", "clusterrolebinding", "testinfra-apiserver-kubelet", "--clusterrole=system:kubelet-api-admin",
            f"--user={APISERVER_KUBELET_USER}", kubeconfig=admin_kubeconfig)
    PROCESSES.start("kube-scheduler", [
        str(E2E_BIN / "kube-scheduler"), f"--kubeconfig={STATE / 'scheduler.kubeconfig'}",
        f"--authentication-kubeconfig={STATE / 'scheduler.kubeconfig'}",
        f"--authorization-kubeconfig={STATE / 'scheduler.kubeconfig'}",
        "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={ports.scheduler}",
    ])
    PROCESSES.wait_until("kube-scheduler", lambda: https_ok(f"https://127.0.0.1:{ports.scheduler}/healthz", pki, verify=False))
    node = STATE / "node"
    try:
        argv = local_node.prepare(node, STATE / "logs", pki, STATE, E2E_BIN / "kubelet", STATE / "kubelet.kubeconfig",
                                  ports.apiserver, ports.kubelet, local_images.PAUSE_IMAGE)
    except ValueError as exc:
        raise LocalEnvError(str(exc)) from None
    for name, relay in local_node.host_relays(node, ports.apiserver, ports.kubelet).items():
        PROCESSES.start(name, relay)
    PROCESSES.start("node", argv)
    PROCESSES.wait_until("node", lambda: (node / "containerd.sock").is_socket(), reached="runs containerd")
    ctr = ["ctr", "--address", str(node / "containerd.sock"), "-n", "k8s.io", "images"]
    for image in images:
        steps = [[*ctr, "import", str(image.archive)]]
        if "@" in image.reference:
            # The CRI plugin finds a digest reference only under that name; the import names the tag.
            steps.append([*ctr, "tag", "--force", image.tagged, image.reference])
        for argv in steps:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
            if proc.returncode != 0:
                raise LocalEnvError(f"`ctr images {argv[len(ctr)]}` of {image.reference} failed: "
                                    f"{proc.stderr.strip()[-600:]}")
    (STATE / "images.json").write_text(local_images.describe(images))
    check_suite_pin(images)
    PROCESSES.wait_until("node", lambda: "True" in kubectl(
        "get", "node", local_node.NODE_NAME, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        kubeconfig=admin_kubeconfig), 120, reached="is Ready")


def check_suite_pin(images: list[local_images.BuiltImage]) -> None:
    """Pulumi.local.yaml pins the suite image by digest; say so at once when this build differs."""
    import yaml

    built = next(i for i in images if i.name == "integration-suite")
    stack = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text()) or {}
    pinned = ((stack.get("config") or {}).get("testinfra:suiteImage") or {}).get("digest")
    if pinned and pinned != built.digest:
        print(f"local-env: WARNING: Pulumi.local.yaml pins the suite image at {pinned}, but this machine built "
              f"{built.digest} from images/suite: the suites' pods cannot start. Put the built digest in "
              f"testinfra:suiteImage.digest (and commit images/suite with it).", file=sys.stderr, flush=True)


def pulumi_env(state: Path) -> dict[str, str]:
    env = json.loads((state / "env.json").read_text())
    return {**os.environ, **env}


def etcd_argv(pki: Path) -> list[str]:
    """etcd on loopback, client and peer over TLS with client certificates of etcd's own CA only, and no
    CORS: nothing but the API server (no local user, no web page, no other certificate of the
    environment's CA) reaches /registry past the API server's authentication, RBAC and admission."""
    peer = f"https://127.0.0.1:{layout.ports().etcd_peer}"
    etcd_url = layout.etcd_url()
    return [
        str(E2E_BIN / "etcd"), "--name=local", f"--data-dir={STATE / 'etcd'}",
        f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
        f"--cert-file={pki / 'etcd.crt'}", f"--key-file={pki / 'etcd.key'}",
        "--client-cert-auth=true", f"--trusted-ca-file={pki / 'etcd-ca.crt'}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}", f"--initial-cluster=local={peer}",
        f"--peer-cert-file={pki / 'etcd.crt'}", f"--peer-key-file={pki / 'etcd.key'}",
        "--peer-client-cert-auth=true", f"--peer-trusted-ca-file={pki / 'etcd-ca.crt'}",
        # etcd answers any Origin with `Access-Control-Allow-Origin: *` unless told which it trusts.
        f"--cors={etcd_url}",
        "--listen-metrics-urls=", "--log-level=warn",
    ]


def start_etcd(pki: Path) -> None:
    PROCESSES.start("etcd", etcd_argv(pki))
    PROCESSES.wait_until("etcd", lambda: https_ok(f"{layout.etcd_url()}/health", pki, "apiserver-etcd-client", ca="etcd-ca"))


def check_prerequisites() -> None:
    missing = [b.name for b in REQUIRED_BINARIES if not b.exists()]
    if missing:
        raise LocalEnvError(f"missing {', '.join(missing)} in {E2E_BIN.parent}: run `make e2e-tools` first")
    packages = node_packages.missing()
    if packages:
        raise LocalEnvError(f"the node's Debian packages are missing ({', '.join(packages)}): run `make node-packages`")
    if PROCESSES.pids.exists():
        raise LocalEnvError(f"environment {layout.NAME} is already running ({STATE}): "
                            f"`make local-env-down NAME={layout.NAME}` first, or start another with NAME=<name>")


def fresh_state() -> Path:
    """An empty environment folder with its PKI and kubeconfigs; returns the PKI folder."""
    if STATE.exists():
        shutil.rmtree(STATE)
    # Nothing below it (keys, tokens, containerd's meta.db, logs, state) is for other users.
    STATE.mkdir(mode=0o700, parents=True)
    (STATE / "home").mkdir(mode=0o700)  # HOME of the servers: nothing of theirs lands in yours
    pki = STATE / "pki"
    layout.allocate_ports()
    make_pki(pki)
    for user, file in (("admin", "kubeconfig"), ("controller-manager", "controller-manager.kubeconfig"),
                       ("external-secrets", "external-secrets.kubeconfig")):
        write_kubeconfig(STATE / file, pki, user, server=layout.api_server(), context=KUBE_CONTEXT)
    return pki


def apiserver_argv(pki: Path) -> list[str]:
    apiserver = layout.ports().apiserver
    return [
        str(E2E_BIN / "kube-apiserver"), f"--etcd-servers={layout.etcd_url()}",
        f"--etcd-cafile={pki / 'etcd-ca.crt'}", f"--etcd-certfile={pki / 'apiserver-etcd-client.crt'}",
        f"--etcd-keyfile={pki / 'apiserver-etcd-client.key'}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={apiserver}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-issuer={layout.api_server()}",
        f"--service-account-key-file={pki / 'service-account.key'}",
        f"--service-account-signing-key-file={pki / 'service-account.key'}",
        # The kubelet may touch only its own node and the pods bound to it.
        "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--api-audiences=https://kubernetes.default.svc,vault",
        # No Service network (no kube-proxy): nothing can use an endpoint for the API server.
        "--endpoint-reconciler-type=none",
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        # The node's name resolves to loopback, where the relay to the kubelet listens.
        "--kubelet-preferred-address-types=Hostname",
    ]


def start_oidc_issuer(pki: Path) -> Path:
    """GitHub Actions' token service as the review jobs see it (tools/localenv/oidc.py); returns the API
    server's authentication configuration that trusts it."""
    oidc.prepare()
    issue_server_cert(pki, "oidc", ["127.0.0.1"])
    PROCESSES.start("oidc-issuer", [str(VENV_BIN / "python"), "-m", "tools.localenv.oidc", "serve", str(oidc.FOLDER),
                                    str(layout.ports().oidc)], env={"PYTHONPATH": str(ROOT), layout.NAME_VARIABLE: layout.NAME})
    PROCESSES.wait_until("oidc-issuer", lambda: https_ok(f"{oidc.issuer_url()}/.well-known/openid-configuration", pki))
    return oidc.authentication_config(pki)


def start_control_plane(pki: Path, admin_kubeconfig: Path) -> None:
    start_etcd(pki)
    authentication = start_oidc_issuer(pki)
    PROCESSES.start("kube-apiserver", [*apiserver_argv(pki), f"--authentication-config={authentication}"])
    PROCESSES.wait_until("kube-apiserver", lambda: https_ok(f"{layout.api_server()}/readyz", pki), 120)
    manager = STATE / "controller-manager.kubeconfig"
    PROCESSES.start("kube-controller-manager", [
        str(E2E_BIN / "kube-controller-manager"), f"--kubeconfig={manager}",
        f"--authentication-kubeconfig={manager}", f"--authorization-kubeconfig={manager}",
        f"--service-account-private-key-file={pki / 'service-account.key'}",
        f"--root-ca-file={pki / 'ca.crt'}", "--leader-elect=false", "--bind-address=127.0.0.1",
        "--secure-port=0", "--use-service-account-credentials=true",
    ])
    PROCESSES.wait_until("kube-controller-manager",
                         lambda: "default" in kubectl("get", "serviceaccount", "default", "-n", "default",
                                                      "-o", "name", kubeconfig=admin_kubeconfig), 120)


def start_eso(admin_kubeconfig: Path) -> None:
    """ESO's CRDs and its controller's RBAC from the pinned module, then the controller itself."""
    kubectl("apply", "--server-side", "-f", str(eso_crd_bundle()), kubeconfig=admin_kubeconfig)
    try:
        rbac = eso_controller_rbac(STATE, Path(helm_binary()), ESO_USER)
    except ValueError as exc:
        raise LocalEnvError(str(exc)) from None
    kubectl("apply", "-f", "-", kubeconfig=admin_kubeconfig, input_text=rbac)
    kubectl("wait", "--for=condition=Established", "crd/externalsecrets.external-secrets.io",
            "crd/secretstores.external-secrets.io", "--timeout=60s", kubeconfig=admin_kubeconfig)
    PROCESSES.start("external-secrets", [
        str(E2E_BIN / "external-secrets"), f"--metrics-addr=127.0.0.1:{layout.ports().eso_metrics}",
        "--enable-leader-election=false", "--concurrent=4", "--loglevel=info",
    ], env={"KUBECONFIG": str(STATE / "external-secrets.kubeconfig")})
    PROCESSES.wait_until("external-secrets", lambda: http_ok(f"http://127.0.0.1:{layout.ports().eso_metrics}/metrics"))


def record_env(admin_kubeconfig: Path, root_token: str) -> dict[str, str]:
    """What `make up|preview|verify STACK=local` and the tests take: written 0600 as env and env.json."""
    env = {
        "KUBECONFIG": str(admin_kubeconfig),
        "VAULT_ADDR": layout.vault_address(),
        "VAULT_TOKEN": root_token,
        "PULUMI_BACKEND_URL": f"file://{STATE / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": LOCAL_PASSPHRASE,
        "PULUMI_HOME": str(PULUMI_HOME),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # The file backend rewrites the whole state after every step: at 100 services that is 3/4 of
        # `up` (bench/trace.py). Only the final state is saved instead; an `up` killed halfway then
        # loses track of what it made, which costs nothing here: `make local-env` starts afresh.
        "PULUMI_SKIP_CHECKPOINTS": "true",
        "PATH": f"{E2E_BIN}:{VENV_BIN}:{TOOLS_BIN}:{os.environ.get('PATH', '')}",
    }
    (STATE / "state").mkdir()
    write_private(STATE / "env.json", json.dumps(env, indent=2).encode())
    write_private(STATE / "env", env_file(env).encode())
    return env


def up() -> None:
    check_prerequisites()
    pki = fresh_state()
    admin_kubeconfig = STATE / "kubeconfig"
    start_control_plane(pki, admin_kubeconfig)
    start_node(pki, admin_kubeconfig)
    root_token = start_openbao()
    start_eso(admin_kubeconfig)
    env = record_env(admin_kubeconfig, root_token)
    with layout.shared_setup():
        install_plugins(env)
    deploy_proto_stack(env)
    if layout.NAME != layout.DEFAULT_NAME:
        write_local_stack_file(ROOT, layout.STACK)
    print(f"local-env: {layout.NAME} ready. Kube context {KUBE_CONTEXT}, Vault {env['VAULT_ADDR']}; "
          f"`make up STACK={layout.STACK}` and `make verify|run STACK={layout.STACK}` find them in {STATE / 'env'}",
          flush=True)


def down() -> None:
    stop.down()


def status() -> int:
    if not PROCESSES.pids.exists():
        print(f"local-env: {layout.NAME}: not running")
        return 1
    running = PROCESSES.running()
    for name, is_running in running.items():
        print(f"{name}: running" if is_running else f"{name}: NOT running; log {PROCESSES.log(name)}")
    return 0 if all(running.values()) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("up", "down", "status"))
    ns = ap.parse_args(argv)
    problem = layout.chosen_name_problem()
    if problem:
        print(f"local-env: {problem}", file=sys.stderr)
        return 2
    try:
        if ns.action == "up":
            started = time.monotonic()
            try:
                up()
            except BaseException:
                down()
                raise
            print(f"local-env: up in {time.monotonic() - started:.0f} s", flush=True)
        elif ns.action == "down":
            return stop.down()
        else:
            return status()
    except LocalEnvError as e:
        print(f"local-env: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
