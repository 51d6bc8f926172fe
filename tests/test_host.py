"""Host storage forensics on docker-explorer's real /var/lib/docker trees and on the committed
``data/host-tree.tar.gz`` (made by ``data/make_host_tree.py`` with a real dockerd)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tarfile
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO_ROOT, damage_json, require_shared_data, tree_digest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerforensics.errors import LayerForensicsError
from layerforensics.host import open_host
from layerforensics.host._cli import add_parser

TREE = REPO_ROOT / "data" / "host-tree.tar.gz"


def explorer(name: str) -> Path:
    path = require_shared_data() / "docker-explorer" / f"{name}.tgz"
    if not path.is_file():
        pytest.fail(f"{path} missing from the shared fixtures")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- docker-explorer expectations
# From google/docker-explorer tests.py (commit 1ea36e1): container counts, the running container,
# its creation and start times, image ids, tags and pulled digests, layer counts.
EXPLORER = {
    "overlay2.v2": dict(
        driver="overlay2",
        count=5,
        running="/festive_perlman",
        running_id="8e8b7f23eb7cbd4dfe7e91646ddd0e0f524218e25d50113559f078dfb2690206",
        created="2018-05-16T10:51:39.271019533Z",
        started="2018-05-16T10:51:39.625989",
        image_id="8ac48589692a53a9b8c2d1ceaa6b402665aa7fe667ba51ccc03002300856d8c7",
        image_name="busybox",
        mount_id="92fd3b3e7d6101bb701743c9518c45b0d036b898c8a3d7cae84e1a06e6829b53",
        digest="busybox@sha256:58ac43b2cc92c687a32c8be6278e50a063579655fe3090125dcb2af0ff9e1a64",
        layers=1,
        layer_created="2018-04-05T10:41:28.876407948Z",
    ),
    "overlay.v2": dict(
        driver="overlay",
        count=6,
        running="/elastic_booth",
        running_id="5dc287aa80b460652a5584e80a5c8c1233b0c0691972d75424cf5250b917600a",
        created="2018-01-26T14:55:56.280943771Z",
        started="2018-01-26T14:55:56.574924",
        image_id="5b0d59026729b68570d99bc4f3f7c31a2e4f2a5736435641565d93e7c25bd2c3",
        image_name="busybox:latest",
        mount_id="974e2b994f9db74e1ddd6fc546843bc65920e786612a388f25685acf84b3fed1",
        digest="busybox@sha256:1669a6aa7350e1cdd28f972ddad5aceba2912f589f19a090ac75b7083da748db",
        layers=1,
        layer_created="2018-01-24T04:29:35.590938514Z",
    ),
    "aufs.v2": dict(
        driver="aufs",
        count=7,
        running="/dreamy_snyder",
        running_id="7b02fb3e8a665a63e32b909af5babb7d6ba0b64e10003b2d9534c7d5f2af8966",
        created="2017-02-13T16:45:05.629904159Z",
        started="2017-02-13T16:45:05.785658",
        image_id="7968321274dc6b6171697c33df7815310468e694ac5be0ec03ff053bb135e768",
        image_name="busybox",
        mount_id="b16a494082bba0091e572b58ff80af1b7b5d28737a3eedbe01e73cd7f4e01d23",
        digest=None,
        layers=1,
        layer_created="2017-01-13T22:13:54.401355854Z",
    ),
    "aufs.v1": dict(
        driver="aufs",
        count=3,
        running="/angry_rosalind",
        running_id="de44dd97cfd1c8d1c1aad7f75a435603991a7a39fa4f6b20a69bf4458809209c",
        created="2018-12-27T10:53:17.096746609Z",
        started="2018-12-27T10:53:17.409426",
        image_id="1cee97b18f87b5fa91633db35f587e2c65c093facfa2cbbe83d5ebe06e1d9125",
        image_name="busybox",
        mount_id="de44dd97cfd1c8d1c1aad7f75a435603991a7a39fa4f6b20a69bf4458809209c",
        digest=None,
        layers=2,
        layer_created="2018-12-26T08:20:42.831353376Z",
    ),
}


@pytest.mark.parametrize("name", sorted(EXPLORER))
def test_docker_explorer_containers_and_images(name: str) -> None:
    want = EXPLORER[name]
    with open_host(explorer(name)) as host:
        assert [r.driver for r in host.roots] == [want["driver"]]
        cs = host.containers
        assert len(cs) == want["count"]
        running = cs[cs["state"] == "running"]
        assert running["name"].tolist() == [want["running"]]
        row = running.iloc[0]
        assert row["id"] == want["running_id"]
        assert row["created"] == pd.Timestamp(want["created"])
        assert row["started"].isoformat().startswith(want["started"])
        assert row["image"] == want["image_name"]
        assert row["image_id"].removeprefix("sha256:") == want["image_id"]
        assert row["mount_id"] == want["mount_id"]
        images = host.images
        assert len(images) == 1
        img = images.iloc[0]
        assert img["image_id"].removeprefix("sha256:") == want["image_id"]
        assert img["tags"] == ["busybox:latest"]
        assert img["digests"] == ([want["digest"]] if want["digest"] else [])
        assert img["layers"] == want["layers"]
        assert img["created"] == pd.Timestamp(want["layer_created"])
        # full-id prefixes resolve; an ambiguous or unknown one is an error
        assert host.container(want["running_id"][:12]).id == want["running_id"]
        with pytest.raises(LayerForensicsError):
            host.container("xx")


def test_docker_explorer_aufs_mounts_and_history() -> None:
    with open_host(explorer("aufs.v2")) as host:
        cs = host.containers.set_index("name")
        assert cs.loc["/dreamy_snyder", "mounts"] == [
            "volume/28297de547b5473a9aff90aaab45ed108ebf019981b40c3c35c226f54c13ac0d:"
            "/var/jenkins_home"
        ]
        hist = host.image("busybox").history
        assert hist["created_by"].iloc[-1] == '/bin/sh -c #(nop)  CMD ["sh"]'
    with open_host(explorer("aufs.v1")) as host:
        img = host.image("busybox")
        assert img.image_id == "1cee97b18f87b5fa91633db35f587e2c65c093facfa2cbbe83d5ebe06e1d9125"
        assert img.history["created_by"].tolist() == [
            "/bin/sh -c #(nop) ADD file:ce026b62356eec3ad1214f92be2c9dc063fe205bd5e600be3492c4dfb1"
            "7148bd in / ",
            '/bin/sh -c #(nop)  CMD ["sh"]',
        ]


def test_docker_explorer_vols_mounts() -> None:
    with open_host(explorer("vols.v2")) as host:
        cs = host.containers.set_index("name")
        assert len(cs) == 4
        assert cs.loc["/sad_lichterman", "mounts"][0] == "/opt/vols/bind:/opt"
        assert cs.loc["/alpine_volume", "mounts"] == [
            "volume/b44451174b5fd2ad7d1a580b527d66d4812eaea3ed717331183e846d020eb8aa:"
            "/opt/vols/volume"
        ]
        assert host.images["tags"].tolist() == [["alpine:latest"]]


def test_docker_explorer_overlay2_drift_verify_and_busybox_image() -> None:
    with open_host(explorer("overlay2.v2")) as host:
        c = host.container("festive_perlman")
        assert c.changes[["path", "change", "type", "size"]].values.tolist() == [
            ["/tets", "added", "file", 5]
        ]
        assert c.read("/tets") == b"test\n"
        img = host.image("busybox:latest")
        files = img.files
        # busybox is one binary with 390 hard links, as in the original layer tar
        assert (files["type"] == "hardlink").sum() == 390
        assert img.read("/bin/ls") == img.read("/bin/busybox")
        assert img.filesystem()["path"].is_unique
        assert host.verify().empty  # every byte matches tar-split's CRC-64
        tl = host.timeline()
        assert tl["time"].is_monotonic_increasing
        assert tl[tl["event"] == "file-written"]["path"].tolist() == ["/tets"]


def test_docker_explorer_overlay_v1_and_aufs_layers_verify() -> None:
    for name in ("overlay.v2", "aufs.v2", "aufs.v1"):
        with open_host(explorer(name)) as host:
            assert host.verify().empty, name
            assert len(host.image("busybox").files) >= 390


# ---------------------------------------------------------------- the committed demo tree
def test_demo_tree_drift_tamper_timeline() -> None:
    before = sha256(TREE)
    with open_host(TREE) as host:
        cs = host.containers
        assert cs["name"].tolist() == ["/web"]
        assert cs["mounts"].iloc[0] == ["/bin/busybox:/busybox:ro"]
        c = host.container("web")
        assert {(r.path, r.change) for r in c.changes.itertuples()} == {
            ("/etc/cron.d", "added"),
            ("/etc/cron.d/backdoor", "added"),
            ("/root/.ssh", "added"),
            ("/root/.ssh/authorized_keys", "added"),
            ("/opt/app/config", "deleted"),
        }
        assert c.read("/etc/cron.d/backdoor").startswith(b"* * * * * root")
        assert c.read("/opt/app/config", layer=2) == b"db=prod\nlisten=8080\n"
        shop = host.verify().query("image == 'shop:1'")
        assert shop[["layer", "path", "problem"]].values.tolist() == [
            [0, "/etc/crontab", "modified"]
        ]
        img = host.image("shop:1")
        assert img.read("/etc/crontab").endswith(b"/tmp/.x/kworker\n")
        assert img.read("/opt/app/debug.log") == b"temporary\n"  # COPY v2/ kept it
        tl = host.timeline()
        events = tl[tl["container_id"].notna()]["event"].astype(str).tolist()
        assert events[0] == "container-created" and events[-1] == "container-finished"
    assert sha256(TREE) == before


def test_evidence_directory_untouched_and_links_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "evidence"
    with tarfile.open(TREE) as t:
        t.extractall(root, filter="fully_trusted")
    # a hostile link inside the evidence, pointing outside it
    outside = tmp_path / "outside.txt"
    outside.write_text("host secret")
    os.symlink(str(outside), root / "overlay2" / "escape")
    with open_host(root) as host:
        upper = root / str(host.containers["upper_dir"].iloc[0])
    os.symlink(str(outside), upper / "root" / "link-out")

    def file_atimes() -> dict[str, int]:
        # lstat only (listing a directory to get here touches that directory's atime, so
        # directories are left out; the library itself reads with O_NOATIME)
        return {
            str(Path(d) / n): os.lstat(Path(d) / n).st_atime_ns
            for d, _dirs, files in os.walk(root)
            for n in files
        }

    before = tree_digest(root)
    atimes = file_atimes()
    with open_host(root) as host:
        c = host.container("web")
        ch = c.changes.set_index("path")
        assert ch.loc["/root/link-out", "type"] == "symlink"
        with pytest.raises(LayerForensicsError):
            c.read("/root/link-out")  # a symlink is reported, never followed
        host.timeline(), host.verify(), host.images
        assert len(host.image("shop:1").files) > 0
    assert file_atimes() == atimes
    assert tree_digest(root) == before
    assert outside.read_text() == "host secret"


def test_cli_views() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    outputs = {}
    for view in (["images"], ["containers"], ["changes", "web"], ["timeline"], ["verify"]):
        args = parser.parse_args(["host", str(TREE), *view, "--format", "json"])
        buf = io.StringIO()
        with redirect_stdout(buf):
            status = args.func(args)
        outputs[view[0]] = (status, json.loads(buf.getvalue()))
    assert outputs["verify"][0] == 1  # a problem found
    assert outputs["images"][0] == 0
    assert {r["path"] for r in outputs["changes"][1]} >= {"/root/.ssh/authorized_keys"}
    args = parser.parse_args(["host", "/nonexistent", "images"])
    assert args.func(args) == 2


def test_verify_reports_added_and_missing_files(tmp_path: Path) -> None:
    root = tmp_path / "evidence"
    with tarfile.open(TREE) as t:
        t.extractall(root, filter="fully_trusted")
    with open_host(root) as host:
        base = host._find_image("lf-demo-base:1").layers[0].root
    (root / base / "tmp" / ".x").mkdir()
    (root / base / "tmp" / ".x" / "kworker").write_bytes(b"\x7fELF implant")
    (root / base / "etc" / "passwd").unlink()
    with open_host(root) as host:
        got = host.verify().query("image == 'lf-demo-base:1'")
        assert sorted(got[["path", "problem"]].values.tolist()) == [
            ["/etc/crontab", "modified"],
            ["/etc/passwd", "missing"],
            ["/tmp/.x", "added"],
            ["/tmp/.x/kworker", "added"],
        ]
        # the image as the disk now has it shows the implant and lacks the removed file
        files = host.image("lf-demo-base:1").filesystem()
        assert "/tmp/.x/kworker" in set(files["path"])
        assert "/etc/passwd" not in set(files["path"])


def test_evidence_without_xattrs_warns_that_opaque_dirs_are_unknown(tmp_path: Path) -> None:
    """A seized tree archived without --xattrs cannot show opaque directories: say so."""
    stripped = tmp_path / "no-xattrs.tar"
    with tarfile.open(TREE) as src, tarfile.open(stripped, "w", format=tarfile.GNU_FORMAT) as dst:
        for m in src.getmembers():
            m.pax_headers = {}
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
    warned = []
    for path in (TREE, stripped):
        host = open_host(path)
        (cid,) = host.containers["id"]
        container = host.container(cid)
        assert len(container.changes) == 5  # the drift is the same either way
        warned.append([w for w in container.image.warnings if "extended attributes" in w])
    assert warned[0] == []
    assert len(warned[1]) == 1 and "tar --xattrs" in warned[1][0]


# What a damaged small id or size file may hold.
_ODD_TEXT = [b"", b"garbage\n", b"sha256:" + b"0" * 64, b"../../../etc", b"\x00\xff\x01"]


@pytest.mark.filterwarnings("ignore::layerforensics.errors.DigestMismatchWarning")  # edited
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(rng=st.randoms(use_true_random=False))
def test_damaged_metadata_gives_answers_with_notes_or_a_clear_error(
    tmp_path_factory: pytest.TempPathFactory, rng: random.Random
) -> None:
    # One value of one JSON file (repositories.json, an image config, config.v2.json...) gets
    # another type, or one small id/size file gets garbage: the host must still be read, with
    # the damaged record left out and named in a note, or fail with a LayerForensicsError.
    root = tmp_path_factory.mktemp("damaged") / "docker"
    with tarfile.open(TREE) as t:
        t.extractall(root, filter="tar")
    jsons, texts = [], []
    for p in sorted(root.rglob("*")):
        if p.is_symlink() or not p.is_file() or "/diff/" in str(p) or p.suffix in (".gz", ".db"):
            continue
        data = p.read_bytes()
        if data[:1] in (b"{", b"["):
            jsons.append(p)
        elif p.suffix != ".log" and b"\x00" not in data and len(data) < 200:
            texts.append(p)
    if rng.random() < 0.75:
        target = rng.choice(jsons)
        doc = damage_json(json.loads(target.read_bytes()), rng)
        target.write_text(json.dumps(doc))
    else:
        rng.choice(texts).write_bytes(rng.choice(_ODD_TEXT))
    try:
        host = open_host(root)
        for image_id in host.images["image_id"]:
            img = host.image(image_id)
            _ = img.layers, img.history, img.files, img.changes, img.filesystem(), img.deleted
        for container_id in host.containers["id"]:
            c = host.container(container_id)
            _ = c.changes, c.filesystem(), c.logs
        host.timeline()
        host.verify()
    except LayerForensicsError as e:
        assert str(root) in str(e)


def test_damaged_records_are_named_in_the_warnings(tmp_path: Path) -> None:
    root = tmp_path / "docker"
    with tarfile.open(TREE) as t:
        t.extractall(root, filter="tar")
    clean = open_host(root)
    n_images, n_containers = len(clean.images), len(clean.containers)
    size_file = sorted(root.glob("image/overlay2/layerdb/sha256/*/size"))[0]
    size_file.write_text("12 kB")  # not a number: the image stays, its size counts 0 for it
    config = sorted(root.glob("containers/*/config.v2.json"))[0]
    doc = json.loads(config.read_text())
    doc["State"] = "running"  # not an object: the container stays, its state is unknown
    config.write_text(json.dumps(doc))
    content = sorted(root.glob("image/overlay2/imagedb/content/sha256/*"))
    broken = json.loads(content[0].read_text())
    broken["rootfs"] = ["not", "an", "object"]  # this image cannot be rebuilt: left out
    content[0].write_text(json.dumps(broken))
    host = open_host(root)
    assert len(host.images) == n_images - 1
    containers = host.containers
    assert len(containers) == n_containers
    assert containers["state"].isna().all()
    assert any("not a size ('12 kB')" in w for w in host.warnings)
    assert any(content[0].name in w and "damaged" in w and "left out" in w for w in host.warnings)
