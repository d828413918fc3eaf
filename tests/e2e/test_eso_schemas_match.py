"""The fast tier's ESO schemas match the CRD bundle of the pinned ESO module (in Go's cache here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.conftest import PROJECT_DIR

pytestmark = pytest.mark.e2e


def test_committed_eso_schemas_match_the_pinned_module() -> None:
    proc = subprocess.run([sys.executable, "-m", "tools.toolchain.eso_schemas", "--check"], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
