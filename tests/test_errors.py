"""Bad input gives a clear LayerForensicsError naming the file, never a bare traceback."""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import random
import tarfile
import tempfile
import threading
import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import damage_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layerforensics as lf
from layerforensics import errors
from layerforensics.builder import File, ImageBuilder, Whiteout


@pytest.fixture
def docker_tar(tmp_path: Path) -> Path:
    b = ImageBuilder()
    b.layer([File("/a", b"a" * 4000)], created_by="RUN a")
    b.layer([File("/b", b"b" * 4000), Whiteout("/a")], created_by="RUN b")
    out = tmp_path / "img.tar"
    b.save_docker(out)
    return out


def rewrite(src: Path, dst: Path, change) -> None:
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            new = change(m.name, data)
            if new is None:
                continue
            m.size = len(new)
            tout.addfile(m, io.BytesIO(new))


def test_not_an_image(tmp_path: Path) -> None:
    p = tmp_path / "plain.tar"
    with tarfile.open(p, "w") as t:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        t.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(errors.NotAnImageError, match="not a container image") as e:
        lf.open_image(p)
    assert str(p) in str(e.value)
    (tmp_path / "text").write_text("hello")
    with pytest.raises(errors.NotAnImageError):
        lf.open_image(tmp_path / "text")
    with pytest.raises(errors.LayerForensicsError, match="no such file"):
        lf.open_image(tmp_path / "absent.tar")


def test_truncated_archive(docker_tar: Path, tmp_path: Path) -> None:
    data = docker_tar.read_bytes()
    for cut in (len(data) // 3, len(data) - 9000):
        p = tmp_path / f"cut{cut}.tar"
        p.write_bytes(data[:cut])
        with pytest.raises(errors.LayerForensicsError) as e:
            lf.open_image(p).files  # noqa: B018
        assert str(p) in str(e.value)


def test_truncated_outer_compression(docker_tar: Path, tmp_path: Path) -> None:
    packed = gzip.compress(docker_tar.read_bytes())
    (tmp_path / "whole.tar.gz").write_bytes(packed)
    assert len(lf.open_image(tmp_path / "whole.tar.gz").files) == 3
    (tmp_path / "cut.tar.gz").write_bytes(packed[: len(packed) - 50])
    with pytest.raises(errors.CorruptArchiveError, match="truncated"):
        lf.open_image(tmp_path / "cut.tar.gz")


def test_damaged_layer_header(docker_tar: Path, tmp_path: Path) -> None:
    def damage(name: str, data: bytes | None) -> bytes | None:
        if name.endswith("layer.tar") and data and b"b" * 10 in data:
            return data[:100] + b"\xff" * 8 + data[108:]  # the first header's mode field
        return data

    p = tmp_path / "damaged.tar"
    rewrite(docker_tar, p, damage)
    img = lf.open_image(p)
    with pytest.raises(errors.CorruptArchiveError, match="bad"):
        img.files  # noqa: B018


def test_damaged_upper_layer_leaves_no_worker_running(tmp_path: Path) -> None:
    # Layer 0 holds a file large enough to be hashed on the worker thread; index() parses every
    # layer before waiting for any digest, so the failure in layer 1 comes while they run.
    b = ImageBuilder()
    b.layer([File("/big", bytes(range(256)) * 4096)], created_by="RUN big")
    b.layer([File("/b", b"b" * 4000)], created_by="RUN b")
    src = tmp_path / "img.tar"
    b.save_docker(src)

    def damage(name: str, data: bytes | None) -> bytes | None:
        if name.endswith("layer.tar") and data and b"b" * 10 in data:
            return data[:148] + b"9999999\x00" + data[156:]  # the checksum field
        return data

    p = tmp_path / "damaged.tar"
    rewrite(src, p, damage)
    before = threading.active_count()
    img = lf.open_image(p)
    with pytest.raises(errors.CorruptArchiveError, match="bad checksum") as e:
        img.files  # noqa: B018
    assert "layer.tar" in str(e.value)
    assert threading.active_count() == before
    assert img._entries == [None, None]  # nothing half-indexed is kept


def test_damaged_gzip_layer(tmp_path: Path) -> None:
    b = ImageBuilder()
    b.layer([File("/a", bytes(range(256)) * 100)])
    src = tmp_path / "oci.tar"
    b.save_oci(src, compression="gzip")

    def damage(name: str, data: bytes | None) -> bytes | None:
        if data and data[:2] == b"\x1f\x8b":
            return data[:40] + bytes(b ^ 0x55 for b in data[40:80]) + data[80:]
        return data

    p = tmp_path / "bad-gzip.tar"
    rewrite(src, p, damage)
    with pytest.raises(errors.CorruptArchiveError, match="gzip") as e:
        lf.open_image(p).layers  # noqa: B018
    assert "blobs/sha256" in str(e.value)


def test_bad_json(docker_tar: Path, tmp_path: Path) -> None:
    p = tmp_path / "badjson.tar"
    rewrite(docker_tar, p, lambda n, d: b"{not json" if n == "manifest.json" else d)
    with pytest.raises(errors.InvalidJSONError, match="manifest.json"):
        lf.open_image(p)


def test_missing_blob(docker_tar: Path, tmp_path: Path) -> None:
    manifest = json.loads(tarfile.open(docker_tar).extractfile("manifest.json").read())
    second = manifest[0]["Layers"][1]
    p = tmp_path / "missing.tar"
    rewrite(docker_tar, p, lambda n, d: None if n == second else d)
    img = lf.open_image(p)
    assert len(img.history) == 2  # metadata still readable
    with pytest.raises(errors.MissingBlobError, match=second):
        img.layers  # noqa: B018


def test_tampered_layer_warns_then_strict_raises(docker_tar: Path, tmp_path: Path) -> None:
    def tamper(name: str, data: bytes | None) -> bytes | None:
        if name.endswith("layer.tar") and data and b"a" * 100 in data:
            return data.replace(b"a" * 100, b"A" + b"a" * 99, 1)
        return data

    p = tmp_path / "tampered.tar"
    rewrite(docker_tar, p, tamper)
    img = lf.open_image(p)
    with pytest.warns(errors.DigestMismatchWarning, match="diff_id"):
        layers = img.layers
    assert layers["verified"].tolist() == [False, True]
    assert img.read("/a", layer=0).startswith(b"A")  # the evidence as it is, flagged
    with pytest.raises(errors.DigestMismatchError, match="layer 0 diff_id"):
        lf.open_image(p, strict=True).layers  # noqa: B018


def test_oci_blob_digest_mismatch(tmp_path: Path) -> None:
    b = ImageBuilder()
    b.layer([File("/a", b"content" * 100)])
    src = tmp_path / "oci.tar"
    b.save_oci(src, compression="gzip")

    def recompress(name: str, data: bytes | None) -> bytes | None:
        if data and data[:2] == b"\x1f\x8b":
            return gzip.compress(gzip.decompress(data), compresslevel=1, mtime=12345)
        return data

    p = tmp_path / "recompressed.tar"
    rewrite(src, p, recompress)
    with pytest.warns(errors.DigestMismatchWarning, match="blob digest mismatch"):
        layers = lf.open_image(p).layers
    assert layers["verified"].tolist() == [False]  # same diff_id, different stored digest


def test_bad_layer_index_and_path(docker_tar: Path) -> None:
    img = lf.open_image(docker_tar)
    with pytest.raises(IndexError, match="2 layers"):
        img.filesystem(layer=5)
    with pytest.raises(errors.PathNotFoundError, match="/nope"):
        img.read("/nope")
    with pytest.raises(errors.PathNotFoundError, match="layer 0 has no entry /b"):
        img.read("/b", layer=0)


def test_mtime_beyond_datetime_range_is_nat_with_a_warning(tmp_path: Path) -> None:
    # A tar header can hold any mtime; pandas datetimes stop at 2262.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, mtime in [("far", "1000000000000000"), ("near", "1700000000")]:
            info = tarfile.TarInfo(name)
            info.size = 1
            info.pax_headers = {"mtime": mtime}
            t.addfile(info, io.BytesIO(b"x"))
    p = tmp_path / "img.tar"
    _save_single_layer(buf.getvalue(), p)
    img = lf.open_image(p)
    mtimes = img.files.set_index("path")["mtime"]
    assert pd.isna(mtimes["/far"])
    assert mtimes["/near"] == pd.Timestamp(1700000000, unit="s", tz="UTC")
    assert any("outside years 1677-2262" in w for w in img.warnings)


def _save_single_layer(layer: bytes, path: Path) -> None:
    """A docker-save archive of one layer given as raw tar bytes (damaged ones included)."""
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["f:1"], "Layers": ["l/layer.tar"]}])
    with tarfile.open(path, "w") as t:
        for name, data in [
            ("manifest.json", manifest.encode()),
            ("c.json", config),
            ("l/layer.tar", layer),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


# Header fields (offset, width) a damaged or hostile tar may fill with anything.
_HEADER_FIELDS = [
    (0, 100), (100, 8), (108, 8), (116, 8), (124, 12), (136, 12), (156, 1), (157, 100),
    (257, 6), (263, 2), (265, 32), (297, 32), (329, 8), (337, 8), (345, 155),
]  # fmt: skip


def _fuzz_layer() -> bytearray:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in [
            ("etc/a", b"hello"),
            ("etc/" + "x" * 120, b"long"),
            ("big", b"B" * 5000),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("etc/l")
        link.type, link.linkname = tarfile.SYMTYPE, "a"
        t.addfile(link)
        t.addfile(tarfile.TarInfo("etc/.wh.z"))
        dev = tarfile.TarInfo("dev/c")
        dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
        t.addfile(dev)
    return bytearray(buf.getvalue())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False))
def test_headers_with_any_field_content_give_frames_or_a_clear_error(rng: random.Random) -> None:
    # Fields are overwritten with random, octal-looking or path-looking bytes and the checksum
    # is recomputed, so the parser has to deal with the content, not just reject the header.
    tar = _fuzz_layer()
    offsets, pos = [], 0
    while pos + 512 <= len(tar) and tar[pos : pos + 512] != bytes(512):
        offsets.append(pos)
        pos += 512 + (int(tar[pos + 124 : pos + 135], 8) + 511) // 512 * 512
    for _ in range(rng.randint(1, 3)):
        h = rng.choice(offsets)
        start, width = rng.choice(_HEADER_FIELDS)
        alphabet = rng.choice([bytes(range(256)), b"01234567 \0x8", b"abc/.\\\xff\xc3wh"])
        if start == 156:
            alphabet, width = b"0123456789xgLKSAVMN\0", 1
        tar[h + start : h + start + width] = bytes(rng.choice(alphabet) for _ in range(width))
        header = tar[h : h + 512]
        header[148:156] = b" " * 8
        tar[h + 148 : h + 156] = b"%06o\0 " % sum(header)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "img.tar"
        _save_single_layer(bytes(tar), p)
        try:
            img = lf.open_image(p)
            frames = (img.layers, img.files, img.changes, img.filesystem(), img.deleted)
            for row in frames[1].itertuples():
                if row.type == "file":
                    img.read_entry(row.layer, row.entry)
        except errors.LayerForensicsError as e:
            assert str(p) in str(e)


def test_image_without_layers_gives_empty_frames(tmp_path: Path) -> None:
    ImageBuilder().save_docker(tmp_path / "empty.tar")
    img = lf.open_image(tmp_path / "empty.tar")
    assert img.layer_count == 0
    for frame in (img.layers, img.history, img.files, img.changes, img.deleted, img.filesystem()):
        assert len(frame) == 0
    assert img.files["entry"].dtype == "int64"


@pytest.fixture(scope="module")
def json_fuzz_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    b = ImageBuilder()
    b.layer([File("/etc/a", b"hello")], created_by="RUN a")
    b.layer([File("/etc/b", b"x" * 300)], created_by="RUN b")
    out = {}
    for kind in ("docker", "oci"):
        p = tmp_path_factory.mktemp("json-fuzz") / f"{kind}.tar"
        (b.save_docker if kind == "docker" else b.save_oci)(p)
        with tarfile.open(p) as t:
            out[kind] = [(m, t.extractfile(m).read() if m.isfile() else None) for m in t]
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(rng=st.randoms(use_true_random=False))
def test_json_documents_of_any_shape_give_frames_or_a_clear_error(
    json_fuzz_sources: dict[str, list], rng: random.Random
) -> None:
    # One value anywhere in manifest.json, index.json, a manifest or the config is replaced by a
    # value of another JSON type, or removed.
    kind = rng.choice(sorted(json_fuzz_sources))
    members = json_fuzz_sources[kind]
    docs = [i for i, (_m, d) in enumerate(members) if d is not None and d[:1] in (b"{", b"[")]
    target = rng.choice(docs)
    doc = damage_json(json.loads(members[target][1]), rng)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "img.tar"
        with tarfile.open(p, "w") as t:
            for i, (member, data) in enumerate(members):
                member = copy.copy(member)
                if i == target:
                    data = json.dumps(doc).encode()
                if data is None:
                    t.addfile(member)
                else:
                    member.size = len(data)
                    t.addfile(member, io.BytesIO(data))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lf.list_images(p)
                img = lf.open_image(p)
                _ = img.layers, img.history, img.files, img.changes, img.filesystem(), img.deleted
                img.dockerfile()
                img.secrets()
        except errors.LayerForensicsError as e:
            assert str(p) in str(e)
