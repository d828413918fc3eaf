"""A team's routine edits to the committed files keep the fast tier green: the edits applied to copies
of the committed catalog and stack files, then what the fast tier checks on them -- each stack
renders (valid objects, the outputs contract) and the benchmark's synthetic project still evaluates.
(Once a `serviceOverrides` entry in Pulumi.staging.yaml turned `make test` red through the benchmark's
copy of the stack file.) The edits name services and keys found in the copies, never fixed ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from config.naming import ENVIRONMENTS
from offline import render
from offline.project import copy_project
from tests.conftest import strict_schema

Edit = Callable[[Path], None]


def _yaml_edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def _services(project: Path) -> list[str]:
    return sorted(yaml.safe_load((project / "catalog.yaml").read_text())["services"])


def _override(stack: str, settings: Callable[[str], dict[str, Any]]) -> Edit:
    def edit(project: Path) -> None:
        service = _services(project)[0]
        _yaml_edit(project / f"Pulumi.{stack}.yaml", lambda d: d["config"].setdefault(
            "testinfra:serviceOverrides", {}).update({service: settings(service)}))
    return edit


def _new_service(project: Path) -> None:
    """Adding a service: one catalog entry, a copy of an existing one under a new name."""
    def change(d: dict[str, Any]) -> None:
        template = next(iter(d["services"].values()))
        d["services"]["reporting"] = json.loads(json.dumps(template))
    _yaml_edit(project / "catalog.yaml", change)


def _raise_timeout(project: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        service = d["services"][sorted(d["services"])[-1]]
        service["timeoutSeconds"] = min(3600, int(service.get("timeoutSeconds", 100)) + 60)
    _yaml_edit(project / "catalog.yaml", change)


EDITS: dict[str, Edit] = {
    "staging-disables-a-service": _override("staging", lambda _: {"enabled": False}),
    "staging-raises-a-timeout": _override("staging", lambda _: {"timeoutSeconds": 1800}),
    "prod-gives-a-suite-more-memory": _override("prod", lambda _: {"resources": {
        "requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}),
    "a-new-service-in-the-catalog": _new_service,
    "a-catalog-timeout-raised": _raise_timeout,
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_routine_edit_keeps_every_stack_rendering_and_the_benchmark_running(
        tmp_path: Path, outputs_schema: dict[str, Any], edit: str) -> None:
    project = copy_project(tmp_path / "project", skip=("tests/",))
    EDITS[edit](project)
    for stack in ENVIRONMENTS:
        out = render.render(stack, tmp_path / "render", project_dir=project)
        outputs = json.loads((out / "outputs.json").read_text())
        jsonschema.validate(outputs, strict_schema(outputs_schema))

    from bench.evaluate import synthetic_project
    from offline.harness import evaluate

    (tmp_path / "bench").mkdir()
    synthetic = synthetic_project(tmp_path / "bench", 3, source=project)
    assert len(evaluate("staging", project_dir=synthetic).resources) > 10


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_a_new_service_and_its_key_need_no_new_grant_from_the_platform(tmp_path: Path, stack: str) -> None:
    """Adding a service (and the Vault key it reads) is one team's change: the deploy and preview
    identities' policies and ESO's read policy -- what the platform applied -- stay byte for byte."""
    from config.identities import DEPLOY, PREVIEW, identity
    from config.loading import stack_settings

    granted = {}
    for name, edit in (("before", None), ("after", _new_service)):
        project = copy_project(tmp_path / name, skip=("tests/",))
        if edit:
            edit(project)
        settings = stack_settings(stack, project_dir=project)
        granted[name] = (identity(settings, DEPLOY).vault_policy(), identity(settings, PREVIEW).vault_policy(),
                         settings.vault_policy_hcl, {k.name for k in settings.vault_keys})
    assert granted["after"][3] - granted["before"][3]  # the new service brought a key of its own
    assert granted["after"][:3] == granted["before"][:3]
