"""`make rehearse STACK=staging|prod`: a real stack file deployed by the real engine on a local
environment prepared as that environment's platform team would have it.

Owns: the preparation -- a fresh local environment (tools/localenv/environment.py); OpenBao served over https
with a certificate of the environment's CA, initialised and unsealed (not a dev server), its KV v2
mount and Kubernetes auth method configured by "the platform team" (the program does not manage
them there); every `external` key written by "its owner" before `up`; ESO's service account in
`esoNamespace`, which Vault's token review needs `system:auth-delegator` for; Pulumi's state in a
real S3 API server (versitygw, built by `make e2e-tools`) on loopback, checkpoints on, the proto
stack in the same backend -- and then, in a copy of the project under build/local-env/rehearsal/,
`make init`, `make up` and `make verify` of that stack. It leaves everything running; `make
local-env-down` ends it.

The stack file is the committed one with only its connection facts swapped (printed: kube context,
Vault address and CA bundle, proto stack, and the suite image, since the node can pull from no
registry). The commands run with an environment built from nothing: never the caller's Pulumi login,
backend, access token, AWS profile or VAULT_TOKEN. The checkout's own stack files are never touched,
so `make up STACK=staging` from the checkout never reaches this environment.

Usage: python -m tools.localenv.rehearse staging|prod [--prepare-only]
Exit 0 when `up` and `verify` passed; 1 naming the step that failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from config import naming
from config.files import env_file, write_private
from tools.localenv import environment as local_env
from tools.localenv import layout, stacks
from tools.localenv.pki import issue_server_cert, write_kubeconfig, write_token_kubeconfig
from tools.localenv.processes import LocalEnvError
from tools.localenv.s3 import start_s3

ROOT = layout.ROOT
REHEARSAL = layout.STATE / "rehearsal"
REHEARSED = ("staging", "prod")
DIY_ORG = "organization"  # the one organisation of a DIY backend (the S3 state here)
PROJECT = "testinfra"


def say(message: str) -> None:
    print(f"rehearse: {message}", flush=True)


class Vault:
    """The rehearsal's OpenBao over https, verified against the environment's CA."""

    def __init__(self, address: str, ca: Path) -> None:
        self.address, self.context = address, ssl.create_default_context(cafile=str(ca))
        self.token = ""

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.address}/v1/{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"X-Vault-Token": self.token} if self.token else {})
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise LocalEnvError(f"the rehearsal's Vault refused {method} {path}: HTTP {exc.code} "
                                f"{exc.read().decode(errors='replace')[:300]}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise LocalEnvError(f"the rehearsal's Vault is unreachable at {self.address}: {exc}") from None
        return json.loads(raw) if raw else {}


def start_vault(pki: Path) -> Vault:
    """A real (non-dev) OpenBao: in-memory storage, an https listener only, initialised and unsealed;
    the initial root token is exchanged for an orphan one and revoked."""
    issue_server_cert(pki, "vault", ["127.0.0.1", "localhost"])
    config = REHEARSAL / "openbao.hcl"
    config.write_text(
        'storage "inmem" {}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{layout.ports().rehearsal_vault}"\n'
        f'  tls_cert_file = "{pki / "vault.crt"}"\n  tls_key_file = "{pki / "vault.key"}"\n}}\n'
        'disable_mlock = true\n')
    bao = shutil.which("bao", path=str(layout.VENV_BIN)) or "bao"
    layout.PROCESSES.start("rehearsal-openbao", [bao, "server", f"-config={config}"],
                              env={"HOME": str(layout.STATE / "home")})
    vault = Vault(f"https://127.0.0.1:{layout.ports().rehearsal_vault}", pki / "ca.crt")
    layout.PROCESSES.wait_until("rehearsal-openbao", lambda: "initialized" in vault.call("GET", "sys/init"))
    init = vault.call("POST", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
    vault.call("POST", "sys/unseal", {"key": init["keys"][0]})
    vault.token = init["root_token"]
    created = vault.call("POST", "auth/token/create-orphan", {"policies": ["root"], "display_name": "rehearsal"})
    vault.call("POST", "auth/token/revoke-self")
    vault.token = created["auth"]["client_token"]
    return vault


def swapped_stack_file(stack: str, project: Path, pki: Path, suite_image: dict[str, str], *,
                       like: str | None = None) -> list[str]:
    """The committed stack file with its connection facts pointed at the rehearsal (those of stack
    `like`, for a template); returns what changed."""
    path = project / f"Pulumi.{stack}.yaml"
    stack = like or stack
    document = yaml.safe_load(path.read_text())
    config = document["config"]
    ca_bundle = base64.b64encode((pki / "ca.crt").read_bytes()).decode()
    swaps = {
        "kubeContext": f"rehearsal-{stack}",
        "vaultAddress": f"https://127.0.0.1:{layout.ports().rehearsal_vault}",
        "vaultClusterAddress": "",  # ESO runs beside the API server here: it reaches vaultAddress
        "vaultCaBundle": ca_bundle,
        "suiteImage": suite_image,
    }
    said = []
    for key, value in swaps.items():
        before = config.get(f"{PROJECT}:{key}")
        config[f"{PROJECT}:{key}"] = value
        shown = "<the environment's CA>" if key == "vaultCaBundle" else json.dumps(value)
        said.append(f"{key}: {json.dumps(before) if before is not None else '(default)'} -> {shown}")
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return said


def rehearsal_env(stack: str, s3: dict[str, str], vault: Vault, pki: Path) -> dict[str, str]:
    """From nothing: no variable of the caller's reaches the rehearsal's commands but PATH and locale."""
    home = REHEARSAL / "home"
    home.mkdir(exist_ok=True)
    kubeconfig = REHEARSAL / "admin.kubeconfig"
    write_kubeconfig(kubeconfig, pki, "admin", server=layout.api_server(), context=f"rehearsal-{stack}")
    return {
        "HOME": str(home), "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PATH": f"{layout.E2E_BIN}:{layout.VENV_BIN}:{layout.TOOLS_BIN}:/usr/local/bin:/usr/bin:/bin",
        "KUBECONFIG": str(kubeconfig),
        "VAULT_ADDR": vault.address, "VAULT_CACERT": str(pki / "ca.crt"), "VAULT_TOKEN": vault.token,
        "PULUMI_CONFIG_PASSPHRASE": secrets.token_urlsafe(24),
        "PULUMI_HOME": str(layout.PULUMI_HOME),
        "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        **s3,
    }


def platform_team(stack: str, project: Path, vault: Vault, pki: Path, kubeconfig: Path) -> Any:
    """What the platform team did before this program ever ran: the KV mount, the Kubernetes auth
    method, ESO's service account, and every `external` key written by its owner."""
    from config.files import stack_config
    from config.loading import load_settings

    config, secret_keys = stack_config(stack, project_dir=project)
    settings = load_settings(project_dir=project, environment=stack, config=config, secret_keys=secret_keys)
    cfg = settings.stack
    if not cfg.vault_create_mount:
        vault.call("POST", f"sys/mounts/{cfg.vault_mount}", {"type": "kv", "options": {"version": "2"}})
    if not cfg.vault_manage_auth_backend:
        vault.call("POST", f"sys/auth/{cfg.vault_auth_mount}", {"type": "kubernetes"})
        vault.call("POST", f"auth/{cfg.vault_auth_mount}/config", {
            "kubernetes_host": layout.api_server(), "kubernetes_ca_cert": (pki / "ca.crt").read_text(),
            # Vault reviews each login with the login's own token: the service account needs auth-delegator.
            "disable_local_ca_jwt": True})
    for args in (("create", "namespace", cfg.eso_namespace),
                 ("create", "serviceaccount", cfg.eso_service_account, "-n", cfg.eso_namespace)):
        local_env.kubectl(*args, kubeconfig=kubeconfig)
    external = write_external_keys(settings, vault)
    say(f"{len(external)} external keys written by their owners ({', '.join(sorted({k.owner for k in external}))})")
    return settings


def write_external_keys(settings: Any, vault: Vault) -> list[Any]:
    """Every `external` key of the stack, written as its owner would: values in the shapes the suites check."""
    external = [k for k in settings.vault_keys if k.source == "external"]
    for key in external:
        password = secrets.token_urlsafe(24)
        values = {p: settings.generated_property(key, p).value(password) for p in key.properties}
        vault.call("POST", f"{key.mount}/data/{key.path}", {"data": values})
    return external


def github_oidc_platform(vault: Vault, pki: Path, mount: str) -> None:
    """Vault's JWT auth method trusting the local OIDC issuer (GitHub's token service here), once."""
    from tools.localenv import oidc

    if f"{mount}/" in (vault.call("GET", "sys/auth").get("data") or {}):
        return
    vault.call("POST", f"sys/auth/{mount}", {"type": "jwt"})
    vault.call("POST", f"auth/{mount}/config", {
        "oidc_discovery_url": oidc.issuer_url(), "oidc_discovery_ca_pem": (pki / "ca.crt").read_text(),
        "bound_issuer": oidc.issuer_url()})


def cluster_only_kubeconfig(context: str, pki: Path) -> Path:
    """What a keyless job starts with: the cluster's address and CA, no user."""
    path = REHEARSAL / f"cluster-{context}.kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": layout.api_server(),
                                                   "certificate-authority": str(pki / "ca.crt")}}],
        "contexts": [{"name": context, "context": {"cluster": context}}], "users": []}))
    return path


def oidc_login(settings: Any, role: str, vault: Vault, pki: Path) -> dict[str, str]:
    """The job's exchange, as deploy.yml / preview.yml make it: a token minted by the local issuer with
    the claims GitHub gives that job (its environment; a deploy from main), then `make login`'s code."""
    from config.github_oidc import DEPLOY_REF, github_environment
    from tools.localenv import oidc

    access = settings.stack.oidc
    stack = settings.environment
    token_file = REHEARSAL / f"oidc-{stack}-{role}.jwt"
    deploy = role == "deploy"
    write_private(token_file, oidc.mint(oidc.claims(
        None if deploy else 1, repository=access.repository, audience=access.audience,
        ref=DEPLOY_REF if deploy else None, event_name="push" if deploy else "pull_request",
        environment=github_environment(role, stack), ttl_seconds=4 * 3600)).encode())
    out = REHEARSAL / "login" / f"{stack}-{role}"
    env = {"PATH": f"{layout.VENV_BIN}:/usr/bin:/bin", "HOME": str(REHEARSAL / "home"), "LANG": "C.UTF-8",
           "VAULT_ADDR": vault.address, "VAULT_CACERT": str(pki / "ca.crt"), "OIDC_TOKEN_FILE": str(token_file),
           "KUBECONFIG": str(cluster_only_kubeconfig(settings.stack.kube_context, pki))}
    run([str(layout.VENV_BIN / "python"), "-m", "deploy.oidc_login", "login", f"--stack={stack}", f"--role={role}",
         f"--out={out}"], REHEARSAL / "project", env, f"make login {stack} {role}")
    return {**stacks.read_env_file(out / "env"), "OIDC_TOKEN_FILE": str(token_file)}


def issue_identities(settings: Any, vault: Vault, pki: Path, admin_kubeconfig: Path) -> dict[str, dict[str, str]]:
    """`make identities`' files applied as the platform team would (docs/identities.md), and the
    credentials of each identity's job: with the stack's `oidc`, what its GitHub OIDC token is exchanged
    for (its JWT role's Vault token, the Kubernetes user its token maps to); else an orphan Vault token
    with its policy alone and a ServiceAccount token."""
    from config import naming
    from offline.identities import write

    out = REHEARSAL / "identities" / settings.environment
    identities = write(settings, out)
    local_env.kubectl("apply", "-f", str(out / "kubernetes.yaml"), kubeconfig=admin_kubeconfig)
    access = settings.stack.oidc
    if access:
        github_oidc_platform(vault, pki, access.jwt_auth_mount)
    issued = {}
    for ident in identities:
        vault.call("PUT", f"sys/policies/acl/{ident.name}", {"policy": ident.vault_policy()})
        if access and ident.jwt_role:
            vault.call("POST", f"auth/{access.jwt_auth_mount}/role/{ident.name}", ident.jwt_role)
            issued[ident.role] = oidc_login(settings, ident.role, vault, pki)
            continue
        token = vault.call("POST", "auth/token/create-orphan", {
            "policies": [ident.name], "no_default_policy": True, "ttl": "4h", "display_name": ident.name,
        })["auth"]["client_token"]
        sa_token = local_env.kubectl("create", "token", ident.name, "-n", naming.IDENTITY_NAMESPACE,
                                     "--duration=4h", kubeconfig=admin_kubeconfig).strip()
        kubeconfig = REHEARSAL / f"{settings.environment}-{ident.role}.kubeconfig"
        write_token_kubeconfig(kubeconfig, pki, ident.name, sa_token, server=layout.api_server(),
                               context=settings.stack.kube_context)
        issued[ident.role] = {"VAULT_TOKEN": token, "KUBECONFIG": str(kubeconfig)}
    say("identities applied: " + ", ".join(i.name for i in identities) + f" ({out})"
        + (f"; their jobs log in with OIDC tokens (auth/{access.jwt_auth_mount})" if access else ""))
    return issued


def review_platform() -> dict[str, Path]:
    """What the platform team does once for review environments on the staging rehearsal: Vault's JWT
    auth method trusting the local OIDC issuer (GitHub's token service here) and a transit engine; the
    external keys' review values, written by their owners under the template's prefix; the review
    stacks' own state bucket and account. Returns two environments: `provisioner` (the platform's
    credentials, for review-grant/revoke/sweep) and `job` (what a review job starts with: the cluster's
    address and CA without any user, Vault's address without a token, the review state bucket)."""
    from config.loading import stack_settings
    from tools.localenv import oidc
    from tools.localenv.s3 import review_state

    project = REHEARSAL / "project"
    settings = stack_settings(naming.REVIEW_TEMPLATE, project_dir=project)
    access = settings.stack.review_access
    assert access is not None
    admin = stacks.read_env_file(REHEARSAL / "admin.env")
    vault = Vault(admin["VAULT_ADDR"], Path(admin["VAULT_CACERT"]))
    vault.token = admin["VAULT_TOKEN"]
    pki = layout.STATE / "pki"
    github_oidc_platform(vault, pki, access.jwt_auth_mount)
    vault.call("POST", f"sys/mounts/{access.transit_mount}", {"type": "transit"})
    external = write_external_keys(settings, vault)
    say(f"review platform: JWT auth at auth/{access.jwt_auth_mount} for {oidc.issuer_url()}, transit at "
        f"{access.transit_mount}/, {len(external)} external keys' review values")
    state = review_state(layout.E2E_BIN / "versitygw", admin)
    # The proto stack's outputs where review stacks can reference them: their own backend.
    vault.call("POST", f"{access.transit_mount}/keys/{naming.REVIEW_REFERENCES_KEY}", {"type": "aes256-gcm96"})
    proto = project / "tools" / "localenv" / "proto_stack"
    # A fresh stack file: the committed one carries the passphrase salt of the local environment's.
    (proto / f"Pulumi.{settings.stack.proto_stack.rpartition('/')[2]}.yaml").unlink(missing_ok=True)
    stacks.deploy_proto_stack({**admin, **state}, stack=naming.stack_reference(settings.stack.proto_stack, DIY_ORG),
                              inherit=False, project=proto,
                              secrets_provider=f"hashivault://{naming.REVIEW_REFERENCES_KEY}?engine={access.transit_mount}")
    cluster_only = cluster_only_kubeconfig(settings.stack.kube_context, pki)
    job = {k: v for k, v in admin.items() if k not in ("VAULT_TOKEN", "PULUMI_CONFIG_PASSPHRASE")}
    job.update({**state, "KUBECONFIG": str(cluster_only)})
    paths = {"provisioner": REHEARSAL / "review-provisioner.env", "job": REHEARSAL / "review-job.env"}
    write_private(paths["provisioner"], env_file({**admin, **state, "KUBECONFIG": admin["KUBECONFIG"]}).encode())
    write_private(paths["job"], env_file(job).encode())
    return paths


def run(argv: list[str], project: Path, env: dict[str, str], step: str) -> None:
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=1800, check=False)
    log = REHEARSAL / f"{step.replace(' ', '-')}.log"
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise LocalEnvError(f"`{step}` failed (exit {proc.returncode}); see {log}:\n"
                            f"{(proc.stdout + proc.stderr).strip()[-2500:]}")
    say(f"{step}: ok in {time.monotonic() - started:.0f} s")


def rehearse(stack: str, *, prepare_only: bool = False) -> None:
    local_env.down()
    local_env.up()
    REHEARSAL.mkdir()
    pki = layout.STATE / "pki"
    vault = start_vault(pki)
    s3 = start_s3(layout.PROCESSES, layout.E2E_BIN / "versitygw", REHEARSAL / "s3")
    from offline.project import copy_project

    project = copy_project(REHEARSAL / "project", skip=("tests/",))
    (project / "build").mkdir(exist_ok=True)
    (project / "build" / "local-env").symlink_to(layout.STATE)
    images = json.loads((layout.STATE / "images.json").read_text())
    suite = images["integration-suite"]
    suite_image = {"repository": suite["reference"].split("@")[0], "digest": suite["digest"]}
    swaps = swapped_stack_file(stack, project, pki, suite_image)
    if stack == "staging":  # the review stacks' template is staging's: the same connection facts
        swapped_stack_file(naming.REVIEW_TEMPLATE, project, pki, suite_image, like=stack)
    say(f"Pulumi.{stack}.yaml as committed, but for its connection facts:")
    for line in swaps:
        print(f"  {line}", flush=True)
    admin = rehearsal_env(stack, s3, vault, pki)
    settings = platform_team(stack, project, vault, pki, Path(admin["KUBECONFIG"]))
    issued = issue_identities(settings, vault, pki, Path(admin["KUBECONFIG"]))
    stacks.deploy_proto_stack({**admin, "PULUMI_CONFIG_PASSPHRASE": layout.LOCAL_PASSPHRASE},
                                 stack=naming.stack_reference(settings.stack.proto_stack, DIY_ORG), inherit=False,
                                 project=project / "tools" / "localenv" / "proto_stack")
    # What each job has: the platform team's root token and admin kubeconfig only in admin.env (the
    # tests' view of the servers); deploy and preview jobs get their identity's credentials alone.
    envs = {role: {**admin, **credentials} for role, credentials in issued.items()}
    write_private(REHEARSAL / "admin.env", env_file(admin).encode())
    write_private(REHEARSAL / "preview.env", env_file(envs["preview"]).encode())
    write_private(REHEARSAL / "env", env_file(envs["deploy"]).encode())
    say(f"prepared; the deploy identity's environment is in {REHEARSAL / 'env'} (source it in {project}), "
        "the preview identity's in preview.env")
    if prepare_only:
        return
    deploy = envs["deploy"]
    run(["make", "-s", "init", f"STACK={stack}"], project, deploy, "make init")
    run(["make", "-s", "up", f"STACK={stack}"], project, {**deploy, "PULUMI_SKIP_CONFIRMATIONS": "true"}, "make up")
    run(["make", "-s", "verify", f"STACK={stack}"], project, deploy, "make verify")
    run(["make", "-s", "preview", f"STACK={stack}"], project, envs["preview"], "make preview (preview identity)")
    say(f"{stack} is up on the local environment, deployed and previewed by its least-privilege identities; "
        "`make local-env-down` ends it")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stack", choices=REHEARSED)
    ap.add_argument("--prepare-only", action="store_true", help="prepare, but do not init/up/verify")
    ns = ap.parse_args(argv)
    started = time.monotonic()
    try:
        rehearse(ns.stack, prepare_only=ns.prepare_only)
    except (LocalEnvError, OSError, subprocess.SubprocessError) as exc:
        print(f"rehearse: {exc}", file=sys.stderr)
        return 1
    say(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
