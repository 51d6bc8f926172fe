"""The default (corrected) wasted-space mode on images built by real engines.

Every expected number is counted here, independently of the library, straight from the layer
tars with :mod:`tarfile`: regular-file bytes stored per layer, then the final filesystem
replayed by hand (whiteouts, opaque directories, type changes). Spot checks that follow from
the Dockerfile itself (the deleted big file, the chmod copy-up) are asserted as well.

Engine behaviour relied on (see tests/test_engine_images.py): dockerd's classic builder on
overlay2 writes a removed-and-recreated directory as an opaque directory, buildah (vfs) as one
whiteout per old child; buildah's first RUN layer adds its mount points (/etc/hosts, ...).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import posixpath
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import engines
import pytest
from engines import BuildCase

import layerforensics as lf

pytestmark = pytest.mark.engine

MID = hashlib.shake_256(b"layerforensics waste mid.bin").digest(20 * 1024)  # chmod copy-up
BIG = hashlib.shake_256(b"layerforensics waste big.bin").digest(300 * 1024)  # rm'd file

CASE = BuildCase(
    "waste",
    """\
FROM localhost/lf-base:1
COPY mid.bin /data/mid.bin
RUN chmod 600 /data/mid.bin
COPY big.bin /big.bin
RUN rm /big.bin
RUN mkdir -p /tree/a && cp /data/mid.bin /tree/a/one && echo two > /tree/two
RUN rm -rf /tree
RUN mkdir -p /re/sub && echo 1 > /re/sub/f && echo 22 > /re/g
RUN rm -rf /re && mkdir /re && echo 333 > /re/h
""",
    context={"mid.bin": MID, "big.bin": BIG},
)
# Dockerfile line -> layer number (FROM is layer 0; every RUN/COPY makes one layer).
STEPS = [ln for ln in CASE.dockerfile.splitlines() if ln.split()[0] in ("FROM", "RUN", "COPY")]
ENCODINGS = ("docker-save", "skopeo-oci-gzip")


def step(prefix: str) -> int:
    hits = [i for i, s in enumerate(STEPS) if s.startswith(prefix)]
    assert len(hits) == 1, prefix
    return hits[0]


# --- the independent count ------------------------------------------------------------------


@contextmanager
def layer_tars(path: Path, encoding: str) -> Iterator[list[tarfile.TarFile]]:
    """The layer tars of a ``docker save`` archive or an OCI layout directory, bottom first."""
    opened: list[Any] = []
    try:
        if encoding == "docker-save":
            outer = tarfile.open(path)
            opened.append(outer)
            manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
            assert len(manifest) == 1
            blobs: list[IO[bytes]] = [
                outer.extractfile(name)  # type: ignore[misc]
                for name in manifest[0]["Layers"]
            ]
        else:
            index = json.loads((path / "index.json").read_text())

            def blob(digest: str) -> Path:
                algo, hexd = digest.split(":")
                return path / "blobs" / algo / hexd

            (desc,) = index["manifests"]
            oci_manifest = json.loads(blob(desc["digest"]).read_text())
            blobs = []
            for layer in oci_manifest["layers"]:
                fh = open(blob(layer["digest"]), "rb")  # closed in the finally below
                opened.append(fh)
                assert fh.read(2) == b"\x1f\x8b", "skopeo's default OCI copy is gzip"
                fh.seek(0)
                blobs.append(gzip.GzipFile(fileobj=fh))
        tars = [tarfile.open(fileobj=b, mode="r|") for b in blobs]
        opened.extend(tars)
        yield tars
    finally:
        for obj in reversed(opened):
            obj.close()


def _norm(name: str) -> str:
    """``./a/b/`` -> ``/a/b``; ``./`` -> ``/``."""
    return posixpath.normpath("/" + name.lstrip("/"))


def _below(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


@dataclass
class Count:
    """What the layer tars say, counted by hand."""

    stored: list[int] = field(default_factory=list)  # regular-file bytes per layer
    deleted_here: list[int] = field(default_factory=list)  # lower bytes each layer removes
    overwritten_later: list[int] = field(default_factory=list)
    deleted_later: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    final_bytes: int = 0
    final_files: dict[str, int] = field(default_factory=dict)  # path -> size


def count(path: Path, encoding: str) -> Count:
    # state: path -> (type, size, layer) of the version visible after the layers so far
    state: dict[str, tuple[str, int, int]] = {}
    c = Count()

    def drop(victims: list[str], layer: int, how: str) -> None:
        for v in victims:
            typ, size, origin = state.pop(v)
            if typ == "file":
                if how == "overwritten":
                    c.overwritten_later[origin] += size
                else:
                    c.deleted_later[origin] += size
                    c.deleted_here[layer] += size

    with layer_tars(path, encoding) as tars:
        for n, tar in enumerate(tars):
            c.stored.append(0)
            for lst in (c.deleted_here, c.overwritten_later, c.deleted_later):
                lst.append(0)
            lower = dict(state)  # whiteouts only hide what the layers below hold
            writes: list[tuple[str, str, int]] = []
            for m in tar:
                p = _norm(m.name)
                base = posixpath.basename(p)
                parent = posixpath.dirname(p)
                if base == ".wh..wh..opq":
                    drop([q for q in lower if q in state and _below(q, parent) and q != parent],
                         n, "deleted")  # fmt: skip
                elif base.startswith(".wh."):
                    target = posixpath.join(parent, base[4:])
                    drop([q for q in lower if q in state and _below(q, target)], n, "deleted")
                else:
                    typ = "file" if m.isreg() else "dir" if m.isdir() else "other"
                    size = m.size if m.isreg() else 0
                    c.stored[n] += size
                    writes.append((p, typ, size))
            for p, typ, size in writes:
                if p == "/":
                    continue
                if p in state:
                    old_typ = state[p][0]
                    # a dir over a dir only changes metadata; its children stay
                    if not (typ == "dir" and old_typ == "dir"):
                        drop([p], n, "overwritten")
                    if typ != "dir" and old_typ == "dir":  # type change hides the subtree
                        drop([q for q in list(state) if _below(q, p) and q != p], n, "deleted")
                    else:
                        state.pop(p, None)
                state[p] = (typ, size, n)
    c.kept = [0] * len(c.stored)
    for p, (typ, size, origin) in state.items():
        if typ == "file":
            c.kept[origin] += size
            c.final_files[p] = size
    c.final_bytes = sum(c.final_files.values())
    return c


# --- tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(engine_image: Callable[..., dict[str, Path]]) -> Callable[[str], dict[str, Path]]:
    cache: dict[str, dict[str, Path]] = {}

    def get(builder: str) -> dict[str, Path]:
        if builder not in cache:
            cache[builder] = engine_image(CASE, builder, ENCODINGS)
        return cache[builder]

    return get


MATRIX = [
    pytest.param(b, e, id=f"{b}-{e}") for b in engines.BUILDERS for e in ENCODINGS
]  # fmt: skip


@pytest.mark.parametrize(("builder", "encoding"), MATRIX)
def test_count_is_sane(built: Callable[..., dict[str, Path]], builder: str, encoding: str) -> None:
    """The hand count itself follows the Dockerfile (so it can judge the library)."""
    c = count(built(builder)[encoding], encoding)
    assert len(c.stored) == len(STEPS)
    assert c.stored[step("COPY mid.bin")] == len(MID)
    assert c.stored[step("RUN chmod")] == len(MID)  # copy-up: the whole file again
    assert c.stored[step("COPY big.bin")] == len(BIG)
    assert c.deleted_here[step("RUN rm /big.bin")] == len(BIG)
    assert c.deleted_here[step("RUN rm -rf /tree")] == len(MID) + len(b"two\n")
    assert c.deleted_here[step("RUN rm -rf /re")] == len(b"1\n") + len(b"22\n")
    assert c.final_files["/data/mid.bin"] == len(MID)
    assert c.final_files["/re/h"] == len(b"333\n")
    assert not any(p.startswith(("/tree", "/big.bin", "/re/g", "/re/sub")) for p in c.final_files)
    # reclaimable: the first mid.bin, big.bin, /tree's two files, /re's two old files
    extra = 2 + 3 + 4 + len(MID) + len(BIG) + len(MID)
    assert sum(c.stored) - c.final_bytes == extra


@pytest.mark.parametrize(("builder", "encoding"), MATRIX)
def test_efficiency_matches_layer_tars(
    built: Callable[..., dict[str, Path]], builder: str, encoding: str
) -> None:
    path = built(builder)[encoding]
    c = count(path, encoding)
    img = lf.open_image(path)
    e = img.efficiency()
    assert e.mode == "layerforensics"
    assert e.size_bytes == sum(c.stored)
    assert e.final_bytes == c.final_bytes
    assert e.reclaimable_bytes == sum(c.stored) - c.final_bytes
    assert e.wasted_bytes == e.reclaimable_bytes
    assert e.user_size_bytes == sum(c.stored[1:])
    assert e.user_wasted_percent == e.reclaimable_bytes / sum(c.stored[1:])
    assert e.score == c.final_bytes / sum(c.stored)
    assert int(e.inefficient["wasted_bytes"].sum()) == e.reclaimable_bytes
    top = e.inefficient.set_index("path")["wasted_bytes"]
    assert top["/big.bin"] == len(BIG)
    assert top["/data/mid.bin"] == len(MID)  # the copy-up costs one full copy
    assert top["/tree/a/one"] == len(MID)


@pytest.mark.parametrize(("builder", "encoding"), MATRIX)
def test_layer_waste_matches_layer_tars(
    built: Callable[..., dict[str, Path]], builder: str, encoding: str
) -> None:
    path = built(builder)[encoding]
    c = count(path, encoding)
    lw = lf.open_image(path).layer_waste()
    assert lw["layer"].tolist() == list(range(len(STEPS)))
    got = {col: [int(x) for x in lw[col]] for col in lw.columns if col.endswith("_bytes")}
    assert got["stored_bytes"] == c.stored
    assert got["kept_bytes"] == c.kept
    assert got["deleted_bytes"] == c.deleted_here
    assert got["overwritten_later_bytes"] == c.overwritten_later
    assert got["deleted_later_bytes"] == c.deleted_later
    assert got["reclaimable_bytes"] == [
        s - k for s, k in zip(c.stored, c.kept, strict=True)
    ]  # fmt: skip
    cum = [sum(c.stored[: i + 1]) for i in range(len(c.stored))]
    assert got["cumulative_bytes"] == cum
    assert got["visible_bytes"][-1] == c.final_bytes


@pytest.mark.parametrize(("builder", "encoding"), MATRIX)
def test_waste_causes(built: Callable[..., dict[str, Path]], builder: str, encoding: str) -> None:
    w = lf.open_image(built(builder)[encoding]).waste().set_index("path")
    mid = w.loc["/data/mid.bin"]
    assert (str(mid["cause"]), int(mid["count"]), mid["layers"]) == (
        "copy-up",
        2,
        [step("COPY mid.bin"), step("RUN chmod")],
    )
    assert (int(mid["kept_size"]), int(mid["reclaimable"])) == (len(MID), len(MID))
    big = w.loc["/big.bin"]
    assert str(big["cause"]) == "deleted"
    assert int(big["deleted_layer"]) == step("RUN rm /big.bin")
    assert (int(big["kept_size"]), int(big["reclaimable"])) == (0, len(BIG))
    for p in ("/tree/a/one", "/tree/two", "/re/g", "/re/sub/f"):
        assert str(w.loc[p, "cause"]) == "deleted", p
    assert int(w.loc["/tree/a/one", "deleted_layer"]) == step("RUN rm -rf /tree")
    assert int(w.loc["/re/g", "deleted_layer"]) == step("RUN rm -rf /re")
    assert "/re/h" not in w.index
