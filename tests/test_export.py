"""Safe export: nothing outside the folder, no devices, no overwrites; bytes as the layer wrote them."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

import layerforensics as lf
from layerforensics.builder import Dir, File, ImageBuilder, Symlink, Whiteout


def test_extract_layer_and_merged(tmp_path: Path) -> None:
    b = ImageBuilder()
    b.layer(
        [
            Dir("/app"),
            File("/app/secret.txt", b"s3cret", mode=0o4755),
            Symlink("/app/l", "/etc/passwd"),
        ]
    )
    b.layer([Whiteout("/app/secret.txt"), File("/app/new", b"new")])
    b.save_docker(tmp_path / "img.tar")
    img = lf.open_image(tmp_path / "img.tar")
    out = tmp_path / "layer0"
    written = img.extract(out, layer=0)
    assert (out / "app/secret.txt").read_bytes() == b"s3cret"
    assert (out / "app/secret.txt").stat().st_mode & 0o7777 == 0o755  # no setuid on export
    assert (out / "app/l").is_symlink()
    assert len(written) == 2
    merged = tmp_path / "merged"
    img.extract(merged, merged=True)
    assert not (merged / "app/secret.txt").exists()
    assert (merged / "app/new").read_bytes() == b"new"
    only = tmp_path / "only"
    img.extract(only, layer=0, path="/app/secret.txt")
    assert [p.name for p in only.rglob("*") if p.is_file()] == ["secret.txt"]


def test_extract_never_escapes(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in [("../../escape.txt", b"x"), ("/abs.txt", b"y")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("evil")
        link.type = tarfile.SYMTYPE
        link.linkname = "/"
        t.addfile(link)
        info = tarfile.TarInfo("evil/etc/owned")
        info.size = 1
        t.addfile(info, io.BytesIO(b"z"))
    b = ImageBuilder()
    b.raw_layer(buf.getvalue())
    b.save_docker(tmp_path / "evil.tar")
    img = lf.open_image(tmp_path / "evil.tar")
    assert set(img.files["path"]) == {"/escape.txt", "/abs.txt", "/evil", "/evil/etc/owned"}
    dest = tmp_path / "out" / "dest"
    with pytest.warns(UserWarning, match="/evil/etc/owned: not exported, /evil is a symlink"):
        written = img.extract(dest)
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "out" / "escape.txt").exists()
    assert (dest / "escape.txt").read_bytes() == b"x"
    assert (dest / "abs.txt").read_bytes() == b"y"
    assert (dest / "evil").is_symlink() and os.readlink(dest / "evil") == "/"
    assert sorted(p.name for p in written) == ["abs.txt", "escape.txt", "evil"]
    assert not any(p.name == "owned" for p in (tmp_path / "out").rglob("*"))


def test_extract_does_not_overwrite(tmp_path: Path) -> None:
    b = ImageBuilder()
    b.layer([File("/a", b"1")])
    b.save_docker(tmp_path / "img.tar")
    img = lf.open_image(tmp_path / "img.tar")
    img.extract(tmp_path / "o")
    with pytest.raises(FileExistsError):
        img.extract(tmp_path / "o")
