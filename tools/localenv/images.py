"""`make local-images`: the local node's images, built here (no registry is reachable) and reproducibly.

Owns: the pod sandbox image (images/pause, a static C binary) and the suite image (images/suite: a
Python interpreter and busybox from the Debian packages of images/suite/debian.lock, pytest from the
wheels of images/suite/requirements.txt, and the suite under /app). Each is written as an OCI image
archive whose every byte is fixed by its inputs -- entries sorted, owner 0, time 0, uncompressed layers
-- so the suite image has the same digest on every machine that builds it from the same lock, and a
stack file can pin it. The pause image depends on the machine's gcc and glibc and is referenced by tag
only (containerd's `sandbox_image`).

Usage: python -m tools.localenv.images [--out DIR] [--relock]
Prints one line per image: name, reference, digest. Exit 1 with one message when a package or wheel
cannot be had at its pinned version and hash.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "images"
CACHE = ROOT / ".tools" / "images"
DEFAULT_OUT = ROOT / "build" / "images"
# `.invalid` can never name a real registry (RFC 2606): these references only ever resolve locally.
PAUSE_IMAGE = "testinfra.invalid/pause:local"
SUITE_REPOSITORY = "testinfra.invalid/integration-suite"
SUITE_USER = "65532:65532"
# What the image does not need of its packages: documentation, translations, the packages' own tests.
PRUNED = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian",
          "usr/share/bug", "usr/lib/python3.11/ensurepip", "usr/lib/python3.11/idlelib",
          "usr/lib/python3.11/lib2to3", "usr/lib/python3.11/pydoc_data", "usr/lib/python3.11/tkinter")
BUSYBOX_APPLETS = ("sh", "cat", "env", "sleep", "ls", "id", "sha256sum", "dirname")


class ImageError(Exception):
    """An image could not be built; the message names the input and the fix."""


@dataclass(frozen=True)
class BuiltImage:
    name: str
    reference: str  # what a pod spec names
    digest: str  # manifest digest, sha256:<hex>
    archive: Path  # OCI archive for `ctr images import`
    tagged: str  # the name the archive carries (a tag)


def _run(argv: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ImageError(f"`{' '.join(argv[:3])}` failed: {(proc.stderr or proc.stdout).strip()[-600:]}")
    return proc.stdout


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def layer_tar(rootfs: Path) -> bytes:
    """The rootfs as a tar whose bytes depend only on names, modes, contents and link targets."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(rootfs.rglob("*"), key=lambda p: p.relative_to(rootfs).as_posix()):
            rel = path.relative_to(rootfs).as_posix()
            info = tarfile.TarInfo(rel)
            st = path.lstat()
            # Modes normalised too: what umask or the extracting tool left must not change the digest.
            if path.is_dir():
                info.mode = 0o1777 if rel == "tmp" else 0o755
            else:
                info.mode = 0o755 if st.st_mode & 0o111 else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if path.is_symlink():
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                tar.addfile(info)
            elif path.is_dir():
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = st.st_size
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
    return buf.getvalue()


def oci_archive(out: Path, reference: str, layer: bytes, config: dict[str, object]) -> str:
    """Write an OCI image layout archive of one layer; return the manifest digest."""
    image_config = {
        "architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": [_sha256(layer)]},
    }
    config_bytes = json.dumps(image_config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _sha256(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": _sha256(layer), "size": len(layer)}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest = _sha256(manifest_bytes)
    index = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": manifest["mediaType"], "digest": manifest_digest, "size": len(manifest_bytes),
                       "annotations": {"io.containerd.image.name": reference,
                                       "org.opencontainers.image.ref.name": reference.rsplit(":", 1)[-1]}}],
    }
    blobs = {_sha256(b).split(":")[1]: b for b in (layer, config_bytes, manifest_bytes)}
    entries = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
               ("index.json", json.dumps(index, sort_keys=True, separators=(",", ":")).encode())]
    entries += [(f"blobs/sha256/{h}", b) for h, b in sorted(blobs.items())]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return manifest_digest


def build_pause(out: Path) -> BuiltImage:
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "rootfs"
        rootfs.mkdir()
        _run(["gcc", "-static", "-Os", "-s", "-o", str(rootfs / "pause"), str(IMAGES / "pause" / "pause.c")])
        layer = layer_tar(rootfs)
    archive = out / "pause.oci.tar"
    digest = oci_archive(archive, PAUSE_IMAGE, layer, {"Entrypoint": ["/pause"], "User": "65535:65535"})
    return BuiltImage("pause", PAUSE_IMAGE, digest, archive, PAUSE_IMAGE)


def read_lock(path: Path) -> list[tuple[str, str, str]]:
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise ImageError(f"{path.relative_to(ROOT)} line {n}: expected `package version sha256`")
        rows.append((parts[0], parts[1], parts[2]))
    return rows


def fetch_debs(lock: list[tuple[str, str, str]]) -> list[Path]:
    """Each locked package from Debian's mirror (apt's cache of the machine), checked against its hash."""
    cache = CACHE / "debs"
    cache.mkdir(parents=True, exist_ok=True)
    debs = []
    for package, version, sha in lock:
        found = [p for p in cache.glob(f"{package}_*.deb") if _file_sha256(p) == sha]
        if not found:
            proc = subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=cache,
                                  capture_output=True, text=True, check=False)
            found = [p for p in cache.glob(f"{package}_*.deb") if _file_sha256(p) == sha]
            if not found:
                raise ImageError(
                    f"Debian package {package}={version} with the locked SHA-256 cannot be had "
                    f"({(proc.stderr or 'hash differs').strip().splitlines()[-1]}): the mirror may have moved on; "
                    f"`apt-get update`, then `python -m tools.localenv.images --relock` re-pins images/suite/debian.lock")
        debs.append(found[0])
    return debs


def fetch_wheels() -> list[Path]:
    cache = CACHE / "wheels"
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
          "--require-hashes", "-r", str(IMAGES / "suite" / "requirements.txt"), "-d", str(cache)])
    return sorted(cache.glob("*.whl"))


def suite_rootfs(rootfs: Path) -> None:
    for deb in fetch_debs(read_lock(IMAGES / "suite" / "debian.lock")):
        _run(["dpkg-deb", "-x", str(deb), str(rootfs)])
    for pruned in PRUNED:
        shutil.rmtree(rootfs / pruned, ignore_errors=True)
    site = rootfs / "usr" / "lib" / "python3" / "dist-packages"
    site.mkdir(parents=True, exist_ok=True)
    import zipfile

    for wheel in fetch_wheels():
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(site)
    (rootfs / "usr" / "bin" / "python3").symlink_to("python3.11")
    for applet in BUSYBOX_APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    etc = rootfs / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nsuite:x:65532:65532:suite:/tmp:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nsuite:x:65532:\n")
    for empty in ("tmp", "proc", "sys", "dev"):
        (rootfs / empty).mkdir(exist_ok=True)
    shutil.copytree(IMAGES / "suite" / "app", rootfs / "app",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for f in (rootfs / "app").rglob("*"):
        f.chmod(0o755 if f.is_dir() or f.suffix == ".sh" else 0o644)  # a checkout's modes vary


def build_suite(out: Path) -> BuiltImage:
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "rootfs"
        rootfs.mkdir()
        suite_rootfs(rootfs)
        layer = layer_tar(rootfs)
    archive = out / "integration-suite.oci.tar"
    config = {"User": SUITE_USER, "WorkingDir": "/app",
              "Env": ["PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"]}
    digest = oci_archive(archive, f"{SUITE_REPOSITORY}:local", layer, config)
    return BuiltImage("integration-suite", f"{SUITE_REPOSITORY}@{digest}", digest, archive, f"{SUITE_REPOSITORY}:local")


def relock() -> None:
    """Re-pin images/suite/debian.lock to the versions Debian's mirror serves now."""
    lock_path = IMAGES / "suite" / "debian.lock"
    header = [line for line in lock_path.read_text().splitlines() if line.startswith("#")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for package, _, _ in read_lock(lock_path):
            _run(["apt-get", "download", package], cwd=Path(tmp))
            deb = next(Path(tmp).glob(f"{package}_*.deb"))
            version = _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
            rows.append(f"{package} {version} {_file_sha256(deb)}")
    lock_path.write_text("\n".join(header + rows) + "\n")


def build_all(out: Path = DEFAULT_OUT) -> list[BuiltImage]:
    return [build_pause(out), build_suite(out)]


def describe(images: list[BuiltImage]) -> str:
    return json.dumps({i.name: {"reference": i.reference, "digest": i.digest, "archive": str(i.archive)}
                       for i in images}, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the OCI archives go")
    ap.add_argument("--relock", action="store_true", help="re-pin images/suite/debian.lock first")
    ns = ap.parse_args(argv)
    try:
        if ns.relock:
            relock()
        images = build_all(ns.out)
    except ImageError as exc:
        print(f"local-images: {exc}", file=sys.stderr)
        return 1
    for image in images:
        print(f"local-images: {image.name} {image.reference} ({image.archive.stat().st_size // 1024} KiB)")
    (ns.out / "images.json").write_text(describe(images))
    return 0


if __name__ == "__main__":
    sys.exit(main())
