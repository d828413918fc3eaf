"""The ESO schemas the fast tier validates against are those of the ESO version the e2e tier runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.toolchain import eso_schemas


def test_the_committed_schemas_record_the_pinned_eso_version() -> None:
    source = json.loads((eso_schemas.SCHEMA_DIR / "source.json").read_text())
    assert {k: source[k] for k in ("module", "version")} == eso_schemas.eso_pin(), (
        "tools/toolchain/toolchain.toml pins another ESO than schemas/external-secrets/ was made from: "
        "run `python -m tools.toolchain.eso_schemas`")


def test_each_kind_has_its_v1_schema() -> None:
    for kind in eso_schemas.KINDS:
        schema = json.loads((eso_schemas.SCHEMA_DIR / f"{kind}.v1.json").read_text())
        assert set(schema["properties"]) >= {"apiVersion", "kind", "metadata", "spec"}


def test_without_go_on_path_the_crds_are_one_message_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SystemExit) as stop:
        eso_schemas.eso_crd_bundle()
    assert "go not found on PATH" in str(stop.value) and "make e2e-tools" in str(stop.value)
