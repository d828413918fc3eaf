"""tools/localenv/node.py: the node's configuration keeps it inside what the environment owns."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tools.localenv import node as local_node


def test_the_kubelet_runs_on_this_vms_cgroups_without_touching_oom_scores(tmp_path: Path) -> None:
    config = yaml.safe_load(local_node.kubelet_config(tmp_path / "node", tmp_path / "pki", tmp_path, 20250))
    assert config["failCgroupV1"] is False and config["cgroupDriver"] == "cgroupfs"
    assert config["oomScoreAdj"] == 0
    assert config["cgroupRoot"] == "/" + local_node.cgroup_root(tmp_path)
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authorization"]["mode"] == "Webhook" and config["readOnlyPort"] == 0


def test_each_environment_folder_has_its_own_cgroup_root(tmp_path: Path) -> None:
    assert local_node.cgroup_root(tmp_path / "a") != local_node.cgroup_root(tmp_path / "b")
    assert local_node.cgroup_root(tmp_path / "a") == local_node.cgroup_root(tmp_path / "a")


def test_the_launcher_binds_the_kernel_settings_instead_of_writing_them(tmp_path: Path) -> None:
    script = local_node.launcher(tmp_path / "node", tmp_path / "logs", tmp_path / "kubelet", tmp_path / "kc", 16443, 20250)
    for key in local_node.KUBELET_SYSCTLS:
        assert f"/proc/sys/{key}" in script and "mount --bind" in script
    assert "sysctl" not in script.replace("/sysctl/", "")
    # Everything lands in the node's own folders or a tmpfs of its own mount namespace.
    assert "mount -t tmpfs -o mode=755 tmpfs /run" in script
    # No umask: containerd would unpack image layers with it, and the pods' non-root user must read them.
    assert "umask" not in script


def test_the_node_runs_in_private_mount_network_and_pid_namespaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_node, "make_cgroups", lambda state: None)
    argv = local_node.prepare(tmp_path / "node", tmp_path / "logs", tmp_path / "pki", tmp_path, tmp_path / "kubelet",
                              tmp_path / "kc", 16443, 20250, "testinfra.invalid/pause:local")
    assert argv[:4] == ["unshare", "--mount", "--net", "--pid"] and "private" in argv
    assert (tmp_path / "node" / "sysctl" / "vm.overcommit_memory").read_text() == "1\n"
    for log in local_node.NODE_LOGS:
        assert (tmp_path / "logs" / log).stat().st_mode & 0o777 == 0o600


def test_a_checkout_path_too_long_for_a_socket_is_refused_with_the_fix(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120)
    with pytest.raises(ValueError, match="clone it to a shorter path"):
        local_node.prepare(deep, tmp_path, tmp_path, tmp_path, tmp_path, tmp_path, 16443, 20250, "p")


@pytest.mark.parametrize("hidden", ["/var/lib/ci/workspace", "/run/user/0/checkout"])
def test_a_checkout_the_nodes_own_mounts_would_hide_is_refused(hidden: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="clone it elsewhere"):
        local_node.prepare(Path(hidden) / "build" / "local-env" / "node", tmp_path, tmp_path, tmp_path, tmp_path,
                           tmp_path, 16443, 20250, "p")


def test_the_node_leaves_tmp_alone_so_a_checkout_under_tmp_works(tmp_path: Path) -> None:
    script = local_node.launcher(tmp_path / "node", tmp_path / "logs", tmp_path / "kubelet", tmp_path / "kc", 16443, 20250)
    assert not [line for line in script.splitlines() if line.startswith("mount") and line.endswith(" /tmp")]


def test_the_kubelet_listens_and_is_relayed_on_the_environments_own_port(tmp_path: Path) -> None:
    """Two environments at once: each node's kubelet port is the one its environment chose."""
    config = yaml.safe_load(local_node.kubelet_config(tmp_path / "node", tmp_path / "pki", tmp_path, 41234))
    assert config["port"] == 41234
    script = local_node.launcher(tmp_path / "node", tmp_path / "logs", tmp_path / "kubelet", tmp_path / "kc", 40001, 41234)
    assert "TCP:127.0.0.1:41234" in script and "TCP-LISTEN:40001," in script
    relays = local_node.host_relays(tmp_path / "node", 40001, 41234)
    assert "TCP-LISTEN:41234,bind=127.0.0.1,fork,reuseaddr" in relays["node-kubelet-relay"]
    assert "TCP:127.0.0.1:40001" in relays["node-api-relay"]


def test_the_node_lists_no_name_server_so_an_unknown_registry_fails_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_node, "make_cgroups", lambda state: None)
    local_node.prepare(tmp_path / "node", tmp_path / "logs", tmp_path / "pki", tmp_path, tmp_path / "kubelet",
                       tmp_path / "kc", 16443, 20250, "p")
    assert "nameserver" not in (tmp_path / "node" / "resolv.conf").read_text()
    script = (tmp_path / "node" / "launcher.sh").read_text()
    assert f"mount --bind {tmp_path / 'node' / 'resolv.conf'} /etc/resolv.conf" in script
