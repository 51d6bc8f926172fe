"""The OCI layer rules, case by case and as a property against a real directory."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layerforensics as lf
from layerforensics._overlay import replay
from layerforensics._tarscan import scan_tar
from layerforensics.builder import Dir, File, Hardlink, ImageBuilder, Opaque, Symlink, Whiteout


def build(tmp_path: Path, *layers: list, compression: str | None = "docker") -> lf.Image:
    b = ImageBuilder()
    for n, entries in enumerate(layers):
        b.layer(entries, created_by=f"RUN step {n}")
    out = tmp_path / f"img-{compression}.tar"
    if compression == "docker":
        b.save_docker(out)
    else:
        b.save_oci(out, compression=compression)
    return lf.open_image(out)


def change(img: lf.Image, layer: int, path: str) -> list[tuple[str, str]]:
    ch = img.changes
    rows = ch[(ch["layer"] == layer) & (ch["path"] == path)]
    return list(zip(rows["change"].astype(str), rows["cause"].astype(str), strict=True))


def test_classic_deleted_secret(tmp_path: Path) -> None:
    img = build(
        tmp_path,
        [Dir("/etc"), File("/etc/os", b"x")],
        [File("/secret.txt", b"secret\n")],
        [Whiteout("/secret.txt")],
    )
    assert "/secret.txt" not in set(img.filesystem()["path"])
    row = img.deleted.set_index("path").loc["/secret.txt"]
    assert (row["layer"], row["deleted_layer"], row["cause"]) == (1, 2, "whiteout")
    assert img.read("/secret.txt", layer=1) == b"secret\n"
    assert change(img, 2, "/secret.txt") == [("deleted", "whiteout")]
    # whiteouts are markers, never files of the filesystem
    assert not img.filesystem()["path"].str.contains(".wh.", regex=False).any()
    with pytest.raises(lf.errors.PathNotFoundError):
        img.read("/secret.txt")


def test_whiteout_only_hides_lower_layers(tmp_path: Path) -> None:
    # .wh.x and x in the same layer: x was deleted and re-created, never "deleted"
    img = build(tmp_path, [File("/x", b"old")], [Whiteout("/x"), File("/x", b"new")])
    assert img.read("/x") == b"new"
    assert "/x" not in set(img.deleted["path"])
    assert sorted(change(img, 1, "/x")) == [("added", "write"), ("deleted", "whiteout")]
    # whatever the order of the whiteout within the layer
    img = build(tmp_path, [File("/x", b"old")], [File("/x", b"new"), Whiteout("/x")])
    assert img.read("/x") == b"new"


def test_opaque_applies_before_siblings_whatever_the_order(tmp_path: Path) -> None:
    lower = [Dir("/d"), File("/d/old", b"1"), Dir("/d/sub"), File("/d/sub/deep", b"2")]
    for order in (
        [Dir("/d"), Opaque("/d"), File("/d/new", b"3")],
        [Dir("/d"), File("/d/new", b"3"), Opaque("/d")],
    ):
        img = build(tmp_path, lower, order)
        fs = set(img.filesystem()["path"])
        assert fs == {"/d", "/d/new"}
        deleted = img.deleted.set_index("path")
        assert set(deleted.index) == {"/d/old", "/d/sub", "/d/sub/deep"}
        assert set(deleted["cause"].astype(str)) == {"opaque"}


def test_directory_whiteout_expands_to_every_hidden_path(tmp_path: Path) -> None:
    img = build(
        tmp_path,
        [Dir("/d"), File("/d/a", b"a"), Dir("/d/e"), File("/d/e/b", b"b")],
        [Whiteout("/d")],
    )
    rows = img.changes[img.changes["layer"] == 1]
    assert set(rows["path"]) == {"/d", "/d/a", "/d/e", "/d/e/b"}
    assert set(rows["change"].astype(str)) == {"deleted"}
    assert set(rows["prev_layer"]) == {0}


def test_type_changes_both_ways(tmp_path: Path) -> None:
    img = build(
        tmp_path,
        [File("/p", b"file"), Dir("/q"), File("/q/child", b"c")],
        [Dir("/p"), File("/p/inside", b"i"), File("/q", b"now a file")],
    )
    fs = img.filesystem().set_index("path")
    assert fs.loc["/p", "type"] == "dir" and fs.loc["/q", "type"] == "file"
    assert "/q/child" not in fs.index
    assert change(img, 1, "/p") == [("modified", "type-change")]
    assert change(img, 1, "/q") == [("modified", "type-change")]
    assert change(img, 1, "/q/child") == [("deleted", "type-change")]
    assert img.deleted.set_index("path").loc["/q/child", "cause"] == "type-change"
    # and as it stood after layer 0
    fs0 = img.filesystem(layer=0).set_index("path")
    assert fs0.loc["/p", "type"] == "file" and "/q/child" in fs0.index


def test_hardlink_outlives_its_deleted_source(tmp_path: Path) -> None:
    img = build(tmp_path, [File("/a", b"data")], [Hardlink("/b", "/a")], [Whiteout("/a")])
    fs = img.filesystem().set_index("path")
    assert fs.loc["/b", "type"] == "hardlink"
    assert fs.loc["/b", "size"] == 4 and fs.loc["/b", "content_layer"] == 0
    assert img.read("/b") == b"data"
    row = img.deleted.set_index("path").loc["/a"]
    assert row["alive_as"] == "/b"


def test_hardlink_keeps_the_version_it_was_made_from(tmp_path: Path) -> None:
    img = build(tmp_path, [File("/a", b"v1"), Hardlink("/b", "/a"), File("/a", b"v2")])
    assert img.read("/a") == b"v2"
    assert img.read("/b") == b"v1"
    files = img.files
    assert files.loc[(files["path"] == "/a") & (files["entry"] == 0), "status"].item() == "shadowed"


def test_chmod_copy_up_is_modified_with_same_bytes(tmp_path: Path) -> None:
    img = build(
        tmp_path, [File("/big", b"x" * 5000, mode=0o644)], [File("/big", b"x" * 5000, mode=0o600)]
    )
    assert change(img, 1, "/big") == [("modified", "write")]
    files = img.files[img.files["path"] == "/big"]
    assert files["sha256"].nunique() == 1
    assert files["status"].astype(str).tolist() == ["overwritten", "present"]
    assert files["status_layer"].tolist()[0] == 1


def test_identical_rewrite_is_not_a_change(tmp_path: Path) -> None:
    img = build(tmp_path, [Dir("/etc"), File("/etc/x", b"1")], [Dir("/etc"), File("/etc/y", b"2")])
    assert change(img, 1, "/etc") == []
    assert change(img, 1, "/etc/y") == [("added", "write")]


def test_names_are_normalised_and_non_utf8_kept(tmp_path: Path) -> None:
    img = build(
        tmp_path,
        [
            File("/a", b"1", tar_name="./a"),
            File("/b", b"2", tar_name="x/../b"),
            File("/caf\udce9", b"3", tar_name="caf\udce9"),
            File("/" + "long/" * 40 + "name", b"4"),
        ],
    )
    paths = set(img.files["path"])
    assert {"/a", "/b", "/caf\\xe9", "/" + "long/" * 40 + "name"} <= paths
    assert img.read("/caf\\xe9") == b"3"


def test_same_path_twice_in_one_layer_last_wins(tmp_path: Path) -> None:
    img = build(tmp_path, [File("/x", b"first"), File("/x", b"second")])
    assert img.read("/x") == b"second"
    files = img.files
    assert files["status"].astype(str).tolist() == ["shadowed", "present"]
    assert img.read_entry(0, 0) == b"first"


@pytest.mark.parametrize("compression", ["docker", "gzip", "zstd", None])
def test_every_encoding_gives_identical_frames(tmp_path: Path, compression: str | None) -> None:
    layers = (
        [Dir("/d"), File("/d/a", b"a" * 3000), Symlink("/l", "d/a")],
        [Whiteout("/d/a"), File("/n", b"n")],
        [Opaque("/d"), Dir("/d"), File("/d/z", b"z")],
    )
    ref = build(tmp_path, *layers, compression="docker")
    img = build(tmp_path, *layers, compression=compression)
    cols = ["layer", "entry", "path", "type", "size", "mode", "sha256", "status", "status_layer"]
    assert img.files[cols].equals(ref.files[cols])
    assert img.changes.equals(ref.changes)
    assert img.deleted.equals(ref.deleted)
    assert img.filesystem().equals(ref.filesystem())
    assert img.layers["diff_id"].tolist() == ref.layers["diff_id"].tolist()
    assert [d for _, d in img.iter_contents()] == [d for _, d in ref.iter_contents()]


def test_digests_of_small_and_large_files(tmp_path: Path) -> None:
    # Small files are hashed inline, large ones on the worker thread: both end up right.
    contents = {"/small": b"s" * 100, "/mid": b"m" * 5000, "/large": bytes(range(256)) * 2000}
    b = ImageBuilder()
    b.layer([File(p, data) for p, data in contents.items()])
    b.layer([File("/large2", b"L" * 600_000)])
    b.save_docker(tmp_path / "img.tar")
    files = lf.open_image(tmp_path / "img.tar").files.set_index("path")
    contents["/large2"] = b"L" * 600_000
    for path, data in contents.items():
        assert files.loc[path, "sha256"] == hashlib.sha256(data).hexdigest()


def test_iter_contents_single_pass_matches_index(tmp_path: Path) -> None:
    img = build(
        tmp_path,
        [File("/a", b"A"), File("/big", b"B" * 10)],
        [File("/c", b"C")],
        compression="gzip",
    )
    streamed = [(r.layer, r.entry, r.path, d) for r, d in img.iter_contents(max_size=5)]
    assert streamed == [(0, 0, "/a", b"A"), (1, 0, "/c", b"C")]
    again = [(r.layer, r.entry, r.path, d) for r, d in img.iter_contents(max_size=5)]
    assert again == streamed  # second time from the index, by offset


# --------------------------------------------------------------------------- property test
NAMES = ["/a", "/b", "/a/c", "/a/d", "/a/c/e", "/b/f"]


def _parents(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


@st.composite
def stacks(draw: st.DrawFn) -> list[list]:
    layers = []
    for n in range(draw(st.integers(1, 4))):
        entries: list = []
        # Real engines write each path once per layer; some layers here repeat parents anyway.
        once = draw(st.booleans())
        for _ in range(draw(st.integers(1, 5))):
            path = draw(st.sampled_from(NAMES))
            kind = draw(
                st.sampled_from(
                    ["file", "file", "dir", "symlink", "whiteout", "opaque", "hardlink"]
                )
            )
            if kind != "whiteout":
                entries += [Dir(p) for p in _parents(path)]
            if kind == "file":
                entries.append(
                    File(path, draw(st.binary(min_size=0, max_size=8)) + f"{n}".encode())
                )
            elif kind == "dir":
                entries.append(Dir(path))
            elif kind == "symlink":
                entries.append(Symlink(path, "nowhere"))
            elif kind == "whiteout":
                entries += [Dir(p) for p in _parents(path)]
                entries.append(Whiteout(path))
            elif kind == "opaque":
                entries += [Dir(path), Opaque(path)]
            else:
                entries.append(("hardlink", path))
        if once:
            seen: set[tuple[str, str]] = set()
            unique = []
            for e in entries:
                key = ("hardlink", e[1]) if isinstance(e, tuple) else (type(e).__name__, e.path)
                if key not in seen:
                    seen.add(key)
                    unique.append(e)
            entries = unique
        layers.append(entries)
    return layers


def _apply_to_directory(root: Path, layer_tars: list[bytes]) -> None:
    """The reference: extract each layer into a real directory with the OCI rules."""

    def remove(p: Path) -> None:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif os.path.lexists(p):
            p.unlink()

    for data in layer_tars:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = tar.getmembers()
            for m in members:
                base = os.path.basename(m.name)
                if base == ".wh..wh..opq":
                    d = root / os.path.dirname(m.name)
                    if d.is_dir() and not d.is_symlink():
                        for child in d.iterdir():
                            remove(child)
            for m in members:
                base = os.path.basename(m.name)
                if base.startswith(".wh.") and base != ".wh..wh..opq":
                    remove(root / os.path.dirname(m.name) / base[4:])
            for m in members:
                if os.path.basename(m.name).startswith(".wh."):
                    continue
                target = root / m.name.rstrip("/")
                if os.path.lexists(target):
                    if m.isdir() and target.is_dir() and not target.is_symlink():
                        continue
                    remove(target)
                target.parent.mkdir(parents=True, exist_ok=True)
                if m.isdir():
                    target.mkdir()
                elif m.issym():
                    os.symlink(m.linkname, target)
                elif m.islnk():
                    os.link(root / m.linkname, target)
                else:
                    target.write_bytes(tar.extractfile(m).read())


def _snapshot(root: Path) -> dict[str, tuple[str, bytes | str | None]]:
    out: dict[str, tuple[str, bytes | str | None]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = "/" + p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = ("symlink", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", None)
            else:
                out[rel] = ("file", p.read_bytes())
    return out


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=stacks())
def test_filesystem_equals_applying_layers_to_a_directory(
    tmp_path_factory: pytest.TempPathFactory, spec: list[list]
) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    root = tmp / "root"
    root.mkdir()
    b = ImageBuilder()
    tars: list[bytes] = []
    for entries in spec:
        # resolve hardlinks against what exists now (in the reference dir or earlier in this layer)
        real: list = []
        existing = {p for p, (t, _) in _snapshot(root).items() if t == "file"}
        for e in entries:
            if isinstance(e, tuple):
                candidates = sorted(existing - {e[1]})
                if not candidates:
                    continue
                real.append(Hardlink(e[1], candidates[0]))
                existing.discard(e[1])
            else:
                real.append(e)
                if isinstance(e, File):
                    existing.add(e.path)
                elif not isinstance(e, Opaque):
                    existing.discard(e.path)
        b.layer(real)
        tars.append(b._layers[-1].tar)
        try:
            _apply_to_directory(root, tars[-1:])
        except (FileNotFoundError, NotADirectoryError, FileExistsError):
            from hypothesis import assume

            assume(False)  # a stack a real extraction refuses (e.g. link to a vanished file)
    b.save_docker(tmp / "img.tar")
    img = lf.open_image(tmp / "img.tar")
    expected = _snapshot(root)
    ours: dict[str, tuple[str, bytes | str | None]] = {}
    for row in img.filesystem().itertuples():
        if row.type == "dir":
            ours[row.path] = ("dir", None)
        elif row.type == "symlink":
            ours[row.path] = ("symlink", row.linkname)
        else:
            ours[row.path] = ("file", img.read(row.path))
    assert ours == expected
    # The bulk replay (layers that only add) and the entry-by-entry replay agree on everything.
    entries = img._index()
    bulk, stepwise = replay(entries), replay(entries, bulk=False)
    assert bulk.state == stepwise.state
    assert bulk.status == stepwise.status
    assert bulk.status_layer == stepwise.status_layer
    assert bulk.link_targets == stepwise.link_targets
    assert bulk.removed == stepwise.removed
    assert sorted(zip(*bulk.changes.columns(), strict=True)) == sorted(
        zip(*stepwise.changes.columns(), strict=True)
    )


def test_history_that_does_not_pair_is_flagged_not_fatal(tmp_path: Path) -> None:
    b = ImageBuilder()
    b.layer([File("/a", b"1")], created_by="RUN one")
    b.layer([File("/b", b"2")], created_by="RUN two")
    b.layer([File("/c", b"3")], created_by="RUN three")
    del b._history[1:]  # as crane append / ko / jib leave it: fewer history entries than layers
    b.save_docker(tmp_path / "short.tar")
    img = lf.open_image(tmp_path / "short.tar")
    assert img.layers["created_by"].tolist()[0] == "RUN one"
    assert img.layers["created_by"].isna().tolist() == [False, True, True]
    assert any("1 non-empty steps for 3 layers" in w for w in img.warnings)
    assert len(img.files) == 3

    b = ImageBuilder()
    b.layer([File("/a", b"1")], created_by="RUN one")
    b._history.append({"created_by": "RUN phantom"})  # more steps than layers
    b.save_docker(tmp_path / "long.tar")
    img = lf.open_image(tmp_path / "long.tar")
    assert img.history["layer"].tolist()[0] == 0 and img.history["layer"].isna().tolist()[1]
    assert any("2 non-empty steps for 1 layers" in w for w in img.warnings)


# --------------------------------------------------------------------------- chunk boundaries
def _tar_with_every_header_kind() -> bytes:
    members = []
    for name, data in [
        ("etc/a", b"hello"),
        ("etc/" + "long-name-" * 15, b"long"),  # PAX path record
        ("big", bytes(range(256)) * 1100),  # larger than any chunk below
        ("etc/\u00e9t\u00e9", b"utf-8 name"),
        ("empty", b""),
    ]:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        members.append((info, data, tarfile.PAX_FORMAT))
    link = tarfile.TarInfo("etc/l")
    link.type, link.linkname = tarfile.SYMTYPE, "a" * 150  # PAX linkpath record
    members.append((link, b"", tarfile.PAX_FORMAT))
    members.append((tarfile.TarInfo("etc/.wh.gone"), b"", tarfile.PAX_FORMAT))
    gnu = tarfile.TarInfo("gnu/" + "g" * 120)  # a GNU long name ("L" header)
    gnu.size = 3
    members.append((gnu, b"gnu", tarfile.GNU_FORMAT))
    out = b""
    for info, data, fmt in members:
        out += info.tobuf(fmt, "utf-8", "surrogateescape") + data + bytes(-len(data) % 512)
    return out + bytes(1024)


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(1, 3000), min_size=1, max_size=400))
def test_scan_gives_the_same_entries_however_the_bytes_are_chunked(cuts: list[int]) -> None:
    # Compressed layers reach the parser in chunks of any size: headers, PAX records and file
    # data straddle the boundaries. The result must equal the one-piece (memory-mapped) parse.
    data = _tar_with_every_header_kind()
    chunks, pos = [], 0
    for n in itertools.cycle(cuts):
        if pos >= len(data):
            break
        chunks.append(data[pos : pos + n])
        pos += n
    whole_seen: dict[int, bytes] = {}
    chunked_seen: dict[int, bytes] = {}
    whole = scan_tar([memoryview(data)], "whole", want_content=lambda e: e.size < 1000,
                     on_content=lambda i, e, b: whole_seen.__setitem__(i, b))  # fmt: skip
    chunked = scan_tar(iter(chunks), "chunked", want_content=lambda e: e.size < 1000,
                       on_content=lambda i, e, b: chunked_seen.__setitem__(i, b))  # fmt: skip
    assert chunked == whole
    assert chunked_seen == whole_seen
    assert {e.path for e in whole} >= {"/etc/a", "/big", "/gnu/" + "g" * 120, "/empty"}
    big = next(e for e in whole if e.path == "/big")
    assert big.sha256 == hashlib.sha256(bytes(range(256)) * 1100).hexdigest()
    assert data[big.offset : big.offset + big.size] == bytes(range(256)) * 1100
