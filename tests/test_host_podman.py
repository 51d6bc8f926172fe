"""Real containers/storage (podman) read offline: images, containers, drift, identity with save."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pandas as pd
from conftest import require_engine

import layerforensics as lf
from layerforensics.host import open_host


def test_podman_storage(tmp_path: Path) -> None:
    require_engine("podman")
    rootfs = tmp_path / "rootfs"
    for sub in ("etc", "root", "opt/app", "tmp", "bin"):
        (rootfs / sub).mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    (rootfs / "bin" / "sh").symlink_to("busybox")
    (rootfs / "opt" / "app" / "config").write_text("db=1\n")
    with tarfile.open(tmp_path / "base.tar", "w") as t:
        t.add(rootfs, arcname=".")
    storage = tmp_path / "storage"
    runroot = Path(tempfile.mkdtemp(prefix="lfpr-"))  # podman wants a runroot under 50 chars
    podman = [
        "podman",
        "--root",
        str(storage),
        "--runroot",
        str(runroot),
        "--storage-driver",
        "overlay",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "none",
    ]

    def run(*args: str) -> str:
        proc = subprocess.run([*podman, *args], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    run("import", str(tmp_path / "base.tar"), "localhost/pbase:1")
    run("save", "--format", "docker-archive", "-o", str(tmp_path / "save.tar"), "localhost/pbase:1")
    run("create", "--network", "none", "--name", "pweb", "localhost/pbase:1", "/bin/sh")
    inspected = json.loads(run("inspect", "pweb"))[0]
    (tmp_path / "drop.txt").write_text("implant\n")
    run("cp", str(tmp_path / "drop.txt"), "pweb:/root/drop.txt")
    with open_host(storage) as host:
        assert [r.kind for r in host.roots] == ["containers-storage"]
        assert host.images["tags"].tolist() == [["localhost/pbase:1"]]
        img = host.image("localhost/pbase:1")
        saved = lf.open_image(tmp_path / "save.tar")
        assert img.image_id == saved.image_id
        for name in ("files", "changes", "deleted"):
            pd.testing.assert_frame_equal(
                getattr(img, name).drop(columns=["xattrs"], errors="ignore"),
                getattr(saved, name).drop(columns=["xattrs"], errors="ignore"),
                obj=name,
            )
        cs = host.containers
        assert cs["name"].tolist() == ["pweb"]
        # the state podman keeps in libpod/bolt_state.db (read with our own bbolt reader)
        assert cs["state"].astype(str).tolist() == [inspected["State"]["Status"]] == ["created"]
        assert cs["started"].isna().all() and cs["exit_code"].isna().all()
        assert cs["created"].iloc[0] == pd.Timestamp(inspected["Created"]).tz_convert("UTC")
        ch = host.container("pweb").changes
        assert ch[ch["change"] == "added"]["path"].tolist() == ["/root/drop.txt"]
        assert host.container("pweb").read("/root/drop.txt") == b"implant\n"
        assert host.verify().empty
    # a damaged state database: the containers are still listed, their state unknown
    db = storage / "libpod" / "bolt_state.db"
    evidence = tmp_path / "evidence"
    shutil.copytree(storage, evidence, symlinks=True, ignore=shutil.ignore_patterns("*.sock"))
    (evidence / "libpod" / "bolt_state.db").write_bytes(db.read_bytes()[:5000])
    with open_host(evidence) as host:
        assert host.containers["name"].tolist() == ["pweb"]
        assert host.containers["state"].isna().all()
        assert any("bolt_state.db" in w and "states are unknown" in w for w in host.warnings)
    shutil.rmtree(runroot, ignore_errors=True)
