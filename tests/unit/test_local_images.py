"""tools/localenv/images.py: an image's digest depends only on what is in it, never on when or how the
files were written (times, umask, creation order) -- so a stack file can pin it."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

from tools.localenv.images import layer_tar, oci_archive


def make_rootfs(root: Path, *, mtime: int, reverse: bool, dir_mode: int) -> Path:
    files = {"app/run.sh": (b"#!/bin/sh\necho ok\n", 0o755), "app/check.py": (b"print(1)\n", 0o644),
             "etc/passwd": (b"suite:x:65532:65532::/tmp:/bin/sh\n", 0o600)}
    for rel, (data, mode) in sorted(files.items(), reverse=reverse):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(dir_mode)
        path.write_bytes(data)
        path.chmod(mode)
        os.utime(path, (mtime, mtime))
    (root / "bin").mkdir(exist_ok=True)
    (root / "bin" / "sh").symlink_to("busybox")
    return root


def test_the_same_files_give_the_same_layer_whatever_their_times_and_order(tmp_path: Path) -> None:
    one = layer_tar(make_rootfs(tmp_path / "a", mtime=1_000, reverse=False, dir_mode=0o755))
    two = layer_tar(make_rootfs(tmp_path / "b", mtime=2_000_000_000, reverse=True, dir_mode=0o775))
    assert one == two


def test_a_changed_file_changes_the_layer(tmp_path: Path) -> None:
    root = make_rootfs(tmp_path / "a", mtime=1_000, reverse=False, dir_mode=0o755)
    before = layer_tar(root)
    (root / "app" / "check.py").write_bytes(b"print(2)\n")
    assert layer_tar(root) != before


def test_entries_are_owned_by_root_at_time_zero_and_keep_executability(tmp_path: Path) -> None:
    layer = layer_tar(make_rootfs(tmp_path / "a", mtime=1_000, reverse=False, dir_mode=0o700))
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == sorted(members)
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members.values())
    assert members["app/run.sh"].mode == 0o755 and members["app/check.py"].mode == 0o644
    assert members["app"].mode == 0o755 and members["bin/sh"].linkname == "busybox"


def test_the_archive_names_the_image_and_its_digest_is_that_of_its_manifest(tmp_path: Path) -> None:
    layer = layer_tar(make_rootfs(tmp_path / "a", mtime=1_000, reverse=False, dir_mode=0o755))
    digest = oci_archive(tmp_path / "one.tar", "testinfra.invalid/x:local", layer, {"User": "65532:65532"})
    again = oci_archive(tmp_path / "two.tar", "testinfra.invalid/x:local", layer, {"User": "65532:65532"})
    assert digest == again and (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    with tarfile.open(tmp_path / "one.tar") as tar:
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        manifest = tar.extractfile(f"blobs/sha256/{digest.split(':')[1]}").read()  # type: ignore[union-attr]
    assert index["manifests"][0]["digest"] == digest
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "testinfra.invalid/x:local"
    assert json.loads(manifest)["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    other = oci_archive(tmp_path / "three.tar", "testinfra.invalid/x:local", layer, {"User": "0:0"})
    assert other != digest
