"""The real `helm` binary: where it is and how the program's values are rendered with it."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from config.errors import ConfigError, MissingTool
from offline import PROJECT_DIR, manifests_yaml

TOOLS_BIN = PROJECT_DIR / ".tools" / "bin"


def helm_binary() -> str:
    """HELM, then the project's tools folder (`make install`), then PATH."""
    for candidate in (os.environ.get("HELM"), str(TOOLS_BIN / "helm"), shutil.which("helm")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise MissingTool(
        "helm not found: run `make install` (extracts helm into .tools/bin) or set HELM=/path/to/helm"
    )


def version() -> str:
    """`helm version --short` of the binary that renders, for the record in plan.txt."""
    return _version_of(helm_binary())


@functools.cache
def _version_of(binary: str) -> str:
    proc = subprocess.run([binary, "version", "--short"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "unknown"


def template(
    chart: Path, release: str, namespace: str, values: dict[str, Any], *, kube_version: str | None = None
) -> list[dict[str, Any]]:
    """`helm template` with exactly `values`; returns the rendered objects."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(values, fh)
        values_file = fh.name
    try:
        cmd = [helm_binary(), "template", release, str(chart), "--namespace", namespace, "-f", values_file]
        if kube_version:
            cmd += ["--kube-version", kube_version]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    finally:
        os.unlink(values_file)
    if proc.returncode != 0:
        raise ConfigError(
            f"helm template of release {release} failed (values from catalog.yaml and the stack "
            f"file): {proc.stderr.strip()}"
        )
    return manifests_yaml.load_all(proc.stdout)
