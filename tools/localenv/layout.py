"""Where the local environment lives and how its pieces find each other: its folder, the binaries
it runs, its loopback ports, its kube context, and the one Processes record of what it started."""

from __future__ import annotations

from pathlib import Path

from tools.localenv.processes import Processes

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / "build" / "local-env"
E2E_BIN = ROOT / ".tools" / "e2e" / "bin"
TOOLS_BIN = ROOT / ".tools" / "bin"
VENV_BIN = ROOT / ".venv" / "bin"
PULUMI_HOME = ROOT / ".tools" / "e2e" / "pulumi-home"
PROTO_PROJECT = ROOT / "tools" / "localenv" / "proto_stack"

# Loopback ports. Pulumi.local.yaml names the Vault address and the kube context.
ETCD_PORT, ETCD_PEER_PORT = 23790, 23800
ETCD_URL = f"https://127.0.0.1:{ETCD_PORT}"
APISERVER_PORT = 16443
VAULT_PORT = 8200
ESO_METRICS_PORT = 18080
SCHEDULER_PORT = 20259
OIDC_PORT = 18443  # the local OIDC issuer (tools/localenv/oidc.py), GitHub Actions' token service here
KUBE_CONTEXT = "ameide-local"
API_SERVER = f"https://127.0.0.1:{APISERVER_PORT}"
PROTO_STACK = "organization/ameide-core-proto/local"
# Not a secret: the local stacks hold only throwaway generated values, in build/local-env/state.
# Fixed, so the encryption salts committed in Pulumi.local.yaml (both projects) stay valid for
# every fresh local environment; staging and prod never use it.
LOCAL_PASSPHRASE = "testinfra-local-environment-not-a-secret"
E2E_PROVIDERS = ROOT / ".tools" / "e2e" / "providers"
PROCESSES = Processes(STATE)
REQUIRED_BINARIES = (E2E_BIN / "etcd", E2E_BIN / "kube-apiserver", E2E_BIN / "kube-controller-manager",
                     E2E_BIN / "kubelet", E2E_BIN / "kube-scheduler",
                     E2E_BIN / "external-secrets", E2E_BIN / "pulumi", E2E_BIN / "pulumi-language-python",
                     E2E_PROVIDERS / "pulumi-resource-kubernetes", E2E_PROVIDERS / "pulumi-resource-random")
