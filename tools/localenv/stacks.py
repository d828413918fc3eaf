"""The Pulumi side of the local environment: its recorded environment as a file a shell sources, the
providers put where the CLI finds their exact versions (it downloads nothing), and the prerequisite
proto stack the local stack references."""

from __future__ import annotations

import filecmp
import os
import shlex
import subprocess
from pathlib import Path

from config import naming
from tools.localenv import layout
from tools.localenv.layout import E2E_BIN, E2E_PROVIDERS, PROTO_PROJECT, PROTO_STACK, PULUMI_HOME, ROOT, STATE, VENV_BIN
from tools.localenv.processes import LocalEnvError
from tools.toolchain.build import load_toolchain  # the one reader of toolchain.toml


def read_env_file(path: Path) -> dict[str, str]:
    """What config.files.env_file wrote, read back exactly (shlex undoes its quoting)."""
    pairs = (shlex.split(line)[1].partition("=") for line in path.read_text().splitlines())
    return {key: value for key, _, value in pairs}


def _pinned(package: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==", 1)[1].split()[0]
    raise LocalEnvError(f"requirements.txt pins no {package}")


def install_plugins(env: dict[str, str]) -> None:
    """Put each provider where the CLI looks for its exact version, so it downloads nothing.

    kubernetes and random are the real providers built by `make e2e-tools`; vault is the stand-in of
    tools/toolchain/standin_providers.py (its real plugin cannot be built here; see its docstring).
    """
    binaries = load_toolchain()["binaries"]
    plugins: dict[str, tuple[str, Path]] = {
        name: (binaries[f"pulumi-resource-{name}"]["release"], E2E_PROVIDERS / f"pulumi-resource-{name}")
        for name in ("kubernetes", "random")
    }
    standins = STATE / "standins"
    standins.mkdir(exist_ok=True)
    version = _pinned("pulumi-vault")
    script = standins / "pulumi-resource-vault"
    # The checkout that owns the shared plugins (a working copy links its .tools and .venv): the same
    # script from every copy, so no environment replaces the plugin another one is running.
    owner = PULUMI_HOME.resolve().parents[2]
    python = VENV_BIN.parent.resolve() / "bin" / "python"
    script.write_text(
        "#!/bin/sh\n# Stand-in vault provider (tools/toolchain/standin_providers.py); argv: engine address\n"
        f"PYTHONPATH='{owner}' exec '{python}' -u -m tools.toolchain.standin_providers vault {version}\n")
    script.chmod(0o755)
    plugins["vault"] = (version, script)
    for name, (version, path) in plugins.items():
        installed = PULUMI_HOME / "plugins" / f"resource-{name}-v{version}" / f"pulumi-resource-{name}"
        # Installed already, byte for byte: another environment's CLI may be running it right now.
        if installed.is_file() and filecmp.cmp(installed, path, shallow=False):
            continue
        proc = subprocess.run(
            [str(E2E_BIN / "pulumi"), "plugin", "install", "resource", name, version, "--file", str(path),
             "--reinstall"],
            env={**os.environ, **env}, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise LocalEnvError(f"pulumi plugin install {name} failed: {proc.stderr.strip()[-800:]}")


def deploy_proto_stack(env: dict[str, str], *, stack: str = PROTO_STACK, inherit: bool = True,
                       project: Path = PROTO_PROJECT, secrets_provider: str | None = None) -> None:
    """The seed's prerequisite: a stack exporting the ameide_core_proto version the releases wait for."""
    run_env = {**os.environ, **env} if inherit else dict(env)
    pulumi = str(E2E_BIN / "pulumi")
    provider = ["--secrets-provider", secrets_provider] if secrets_provider else []
    for argv in ([pulumi, "stack", "init", stack, "--non-interactive", *provider],
                 [pulumi, "up", "--yes", "--skip-preview", "--non-interactive", "--stack", stack]):
        proc = subprocess.run(argv, cwd=project, env=run_env, capture_output=True, text=True,
                              timeout=300, check=False)
        if proc.returncode != 0:
            raise LocalEnvError(f"the proto stack failed at `{' '.join(argv[1:3])}`: "
                                f"{(proc.stdout + proc.stderr).strip()[-1500:]}")
    print(f"local-env: stack {stack} is up", flush=True)


def write_local_stack_file(project: Path, stack: str) -> Path:
    """Pulumi.<stack>.yaml in `project`: the project's Pulumi.local.yaml pointed at this environment (its
    kube context, its Vault, its API server), everything else as committed. A named environment's
    stack `local-<name>` is written so in the checkout (git ignores it); the end-to-end tier writes its
    project copy's `local` so. Returns the file."""
    import yaml

    document = yaml.safe_load((project / "Pulumi.local.yaml").read_text())
    document["config"].update({
        "testinfra:kubeContext": layout.KUBE_CONTEXT,
        "testinfra:vaultAddress": layout.vault_address(),
        "testinfra:vaultKubernetesHost": layout.api_server(),
    })
    target = project / naming.stack_file(stack)
    header = (f"# Pulumi.local.yaml pointed at the local environment {layout.NAME} ({STATE}): its kube context, "
              "Vault and API server. Written by the environment, never committed.\n")
    target.write_text(header + yaml.safe_dump(document, sort_keys=False))
    return target
