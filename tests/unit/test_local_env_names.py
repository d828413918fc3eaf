"""Local environments by name (tools/localenv/layout.py): each its own folder, ports, stack and kube
context; the default one on the ports the committed Pulumi.local.yaml names; the stack a named one
writes points at that environment only; `make local-envs` and `make up STACK=local-<name>` find it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import asdict, fields
from pathlib import Path

import pytest
import yaml

from config import naming
from config.loading import stack_settings
from offline.project import copy_project
from tools.localenv import layout, listing, stacks, stop
from tools.localenv.processes import LocalEnvError

ROOT = Path(__file__).resolve().parents[2]


def as_environment(monkeypatch: pytest.MonkeyPatch, name: str, folder: Path) -> None:
    """This process's tools working on environment `name` in `folder` (as TESTINFRA_LOCAL_ENV would)."""
    monkeypatch.setattr(layout, "NAME", name)
    monkeypatch.setattr(layout, "STATE", folder)
    monkeypatch.setattr(layout, "PORTS_FILE", folder / "ports.json")
    monkeypatch.setattr(layout, "KUBE_CONTEXT", layout.context_of(name))
    monkeypatch.setattr(layout, "STACK", layout.stack_of(name))
    monkeypatch.setattr(layout, "folder_of", lambda n: folder if n == name else folder.parent / n)


@pytest.mark.parametrize("name", ["b", "pr-12", "x" * 14])
def test_a_name_gives_its_own_folder_stack_and_context(name: str) -> None:
    assert layout.name_problem(name) is None
    assert layout.folder_of(name) == layout.NAMED_FOLDERS / name != layout.DEFAULT_FOLDER
    assert naming.is_local_stack(layout.stack_of(name)) and naming.is_stack_name(layout.stack_of(name))
    assert layout.context_of(name) != layout.context_of(layout.DEFAULT_NAME)


@pytest.mark.parametrize("name", ["B", "a b", "../x", "-x", "x" * 15, "a;touch PWNED", ""])
def test_a_name_that_is_no_environment_name_is_refused_by_both_commands(name: str) -> None:
    if name:
        assert layout.name_problem(name) is not None
    # The empty name is the default environment: only `status` reads it (a stop here would end a
    # developer's open `make local-env`, or a benchmark's, from the fast tier).
    for module in ("tools.localenv.environment", *(["tools.localenv.stop"] if name else [])):
        argv = [sys.executable, "-m", module, *(["status"] if module.endswith("environment") else [])]
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
                              env={"PATH": "/usr/bin:/bin", layout.NAME_VARIABLE: name})
        if not name:  # empty: the default environment, as make passes an unset NAME
            assert "not an environment name" not in proc.stderr
            continue
        assert proc.returncode == 2 and "not an environment name" in proc.stderr, (module, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (ROOT / "PWNED").exists()


def test_the_default_environment_uses_the_ports_its_committed_stack_file_names() -> None:
    config = stack_settings("local").stack
    assert config.vault_address == f"http://127.0.0.1:{layout.DOCUMENTED_PORTS.vault}"
    assert config.vault_kubernetes_host == f"https://127.0.0.1:{layout.DOCUMENTED_PORTS.apiserver}"
    assert config.kube_context == layout.context_of(layout.DEFAULT_NAME)


def test_a_named_environment_takes_free_ports_all_different_and_records_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    as_environment(monkeypatch, "b", tmp_path / "b")
    (tmp_path / "b").mkdir()
    chosen = layout.allocate_ports()
    values = list(asdict(chosen).values())
    assert len(set(values)) == len(fields(layout.Ports)) and set(values).isdisjoint(asdict(layout.DOCUMENTED_PORTS).values())
    assert json.loads((tmp_path / "b" / "ports.json").read_text()) == asdict(chosen)
    assert layout.ports() == chosen and layout.api_server() == f"https://127.0.0.1:{chosen.apiserver}"


def test_the_default_environment_refuses_a_taken_port_naming_it_and_the_way_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    as_environment(monkeypatch, layout.DEFAULT_NAME, tmp_path / "local")
    (tmp_path / "local").mkdir()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        monkeypatch.setattr(layout, "DOCUMENTED_PORTS", layout.Ports(*([taken] + list(
            asdict(layout.DOCUMENTED_PORTS).values())[1:])))
        with pytest.raises(LocalEnvError, match=rf"etcd {taken}.*NAME=<name>"):
            layout.allocate_ports()
    assert not (tmp_path / "local" / "ports.json").exists()


def test_a_named_environments_stack_file_points_at_it_and_keeps_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = copy_project(tmp_path / "project", skip=("tests/",))
    as_environment(monkeypatch, "b", tmp_path / "b")
    (tmp_path / "b").mkdir()
    chosen = layout.allocate_ports()
    written = stacks.write_local_stack_file(project, "local-b")
    settings = stack_settings("local-b", project_dir=project)
    assert settings.stack.vault_address == f"http://127.0.0.1:{chosen.vault}"
    assert settings.stack.vault_kubernetes_host == f"https://127.0.0.1:{chosen.apiserver}"
    assert settings.stack.kube_context == "ameide-local-b"
    committed = yaml.safe_load((project / "Pulumi.local.yaml").read_text())
    ours = yaml.safe_load(written.read_text())
    changed = {k for k in committed["config"] if committed["config"][k] != ours["config"][k]}
    assert changed == {"testinfra:kubeContext", "testinfra:vaultAddress", "testinfra:vaultKubernetesHost"}
    assert ours["encryptionsalt"] == committed["encryptionsalt"]  # the same passphrase opens its state
    assert [s.name for s in settings.services] == [s.name for s in stack_settings("local", project_dir=project).services]


def test_make_sources_a_named_environments_env_file_for_its_stack_only(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project", skip=("tests/",))
    for name, marker in (("local-env", "default"), ("local-envs/b", "named-b")):
        (project / "build" / name).mkdir(parents=True)
        (project / "build" / name / "env").write_text(f"export SEEN={marker}\n")
    seen = {}
    for stack in ("local", "local-b", "local-c", "staging", "local-../x"):
        proc = subprocess.run(["./tools/deploy/stack_env.sh", "sh", "-c", "printf %s \"${SEEN:-none}\""], cwd=project,
                              env={"PATH": "/usr/bin:/bin", "STACK": stack}, capture_output=True, text=True, check=False)
        seen[stack] = proc.stdout
    assert seen == {"local": "default", "local-b": "named-b", "local-c": "none", "staging": "none", "local-../x": "none"}


def test_the_listing_names_each_environment_and_whether_it_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "DEFAULT_FOLDER", tmp_path / "local-env")
    monkeypatch.setattr(layout, "NAMED_FOLDERS", tmp_path / "local-envs")
    assert listing.listing() == []
    (tmp_path / "local-env").mkdir()
    (tmp_path / "local-envs" / "b" / "pids").mkdir(parents=True)
    layout.Processes(tmp_path / "local-envs" / "b").start("etcd", ["sleep", "60"])
    try:
        lines = listing.listing()
        assert [line.split()[0] for line in lines] == ["local", "b"]
        assert "stopped" in lines[0] and "running (1 process)" in lines[1] and "stack local-b" in lines[1]
    finally:
        layout.Processes(tmp_path / "local-envs" / "b").stop_all(())


def test_stopping_a_named_environment_removes_its_stack_file_and_nothing_of_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(layout, "ROOT", tmp_path)
    as_environment(monkeypatch, "b", tmp_path / "b")
    for stack in ("local-b", "local-c", "local"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    monkeypatch.setattr(stop, "PROCESSES", layout.Processes(tmp_path / "b"))
    assert stop.down() == 0
    assert "b: nothing is running" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.glob("Pulumi.*.yaml")) == ["Pulumi.local-c.yaml", "Pulumi.local.yaml"]
