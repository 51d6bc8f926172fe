"""Images built by real engines (dockerd classic builder, buildah), read back in every encoding.

Every expectation here comes from what the Dockerfile does (and from documented engine
behaviour, noted where it matters), never from the library's own output. The one exception is
:func:`test_encodings_agree`, which demands that all encodings of ONE build give identical frames.

Engine behaviour the expectations rely on (seen with Debian bookworm's docker.io 20.10 and
buildah 1.28):

- the base image ``localhost/lf-base:1`` is one layer: /bin, /bin/busybox, /bin/<applet> symlinks,
  /etc, /tmp, /root;
- RUN, COPY and ADD make one layer each; ARG and ENV make none; WORKDIR makes a layer (holding the
  new directory) with dockerd's classic builder but none with buildah;
- buildah's first RUN layer also adds the mount points it prepared for the build container
  (/dev, /proc, /run, /sys, /etc/hostname, /etc/hosts, /etc/resolv.conf);
- a directory removed and re-created is written as an opaque directory by dockerd (overlay2)
  but as one explicit whiteout per old child by buildah (vfs).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import engines
import pandas as pd
import pytest
from conftest import merged_view, tarfile_reference
from engines import BuildCase
from pandas.testing import assert_frame_equal

pytestmark = pytest.mark.engine

BUILDERS = engines.BUILDERS
ENCODINGS = engines.ENCODINGS

# What each encoding's layer blobs really are (sniffed, whatever the media type claims:
# skopeo's uncompressed OCI copy keeps the media type ...tar+gzip).
EXPECTED_COMPRESSION = {
    "docker-save": "none",
    "podman-docker-archive": "none",
    "podman-oci-archive": "gzip",
    "skopeo-oci-gzip": "gzip",
    "skopeo-oci-zstd": "zstd",
    "skopeo-oci-uncompressed": "none",
    "skopeo-oci-archive-zstd": "zstd",
}
# Encodings that keep the Docker image config as built (the others carry an OCI config).
DOCKER_CONFIG_ENCODINGS = {"docker-save", "podman-docker-archive"}
# Columns allowed to differ between encodings of the same image.
ENCODING_COLUMNS = ["compression", "digest", "compressed_size", "media_type"]

BASE_FS = {
    "/bin": "dir",
    "/bin/busybox": "file",
    "/etc": "dir",
    "/tmp": "dir",
    "/root": "dir",
    **{f"/bin/{a}": "symlink" for a in engines.BASE_APPLETS},
}
BUILDAH_RUN_ARTIFACTS = {
    "/dev": "dir",
    "/proc": "dir",
    "/run": "dir",
    "/sys": "dir",
    "/etc/hostname": "file",
    "/etc/hosts": "file",
    "/etc/resolv.conf": "file",
}

BIG = hashlib.shake_256(b"layerforensics big.bin").digest(256 * 1024)

SECRET = BuildCase(
    "secret",
    """\
FROM localhost/lf-base:1
ARG TOKEN=tok-123
ENV APP_MODE=prod
RUN echo "secret" > /secret.txt
RUN echo "token=$TOKEN mode=$APP_MODE" > /build.txt
RUN rm /secret.txt
""",
)
OPAQUE = BuildCase(
    "opaque",
    """\
FROM localhost/lf-base:1
RUN mkdir -p /d/sub && echo 1 > /d/sub/f && echo 2 > /d/g
RUN rm -rf /d && mkdir /d && echo 3 > /d/h
""",
)
HARDLINK = BuildCase(
    "hardlink",
    """\
FROM localhost/lf-base:1
RUN echo data > /a && ln /a /b
RUN rm /a
""",
)
TYPECHANGE = BuildCase(
    "typechange",
    """\
FROM localhost/lf-base:1
RUN echo f > /p && mkdir /q && echo x > /q/y
RUN rm /p && mkdir /p && echo z > /p/z && rm -rf /q && echo notdir > /q
""",
)
MULTIRM = BuildCase(
    "multirm",
    """\
FROM localhost/lf-base:1
RUN mkdir /w && echo 1 > /w/1 && echo 2 > /w/2 && echo 3 > /w/3 && echo x > /x
RUN rm /w/1 /w/2 /x
""",
)
COPY_FILES = {
    "files/one.txt": b"one\n",
    "files/two.txt": b"two\n",
    "files/sub/three.txt": b"three\n",
}
COPY = BuildCase(
    "copy",
    """\
FROM localhost/lf-base:1
COPY files/ /app/
COPY big.bin /big.bin
RUN chmod 600 /big.bin
WORKDIR /srv
""",
    context={**COPY_FILES, "big.bin": BIG},
)
CASES = [SECRET, OPAQUE, HARDLINK, TYPECHANGE, MULTIRM, COPY]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def layer_steps(case: BuildCase, builder: str) -> list[str]:
    """The Dockerfile lines that produce a layer; the list index is the layer number."""
    steps = []
    for raw in case.dockerfile.splitlines():
        line = raw.strip()
        instr = line.split(maxsplit=1)[0].upper() if line and not line.startswith("#") else ""
        if instr in ("FROM", "RUN", "COPY", "ADD") or (instr == "WORKDIR" and builder == "docker"):
            steps.append(line)
    return steps


def L(case: BuildCase, builder: str, prefix: str) -> int:
    """Layer number of the (unique) Dockerfile line starting with ``prefix``."""
    hits = [i for i, s in enumerate(layer_steps(case, builder)) if s.startswith(prefix)]
    assert len(hits) == 1, (prefix, layer_steps(case, builder))
    return hits[0]


def expected_fs(case: BuildCase, builder: str, added: dict[str, str]) -> dict[str, str]:
    fs = {**BASE_FS, **added}
    if builder == "buildah" and any(s.startswith("RUN") for s in layer_steps(case, builder)):
        fs.update(BUILDAH_RUN_ARTIFACTS)
    return fs


# --- fixtures ----------------------------------------------------------------------------
_OPENED: dict[tuple[str, str, str], Any] = {}


@pytest.fixture(scope="session")
def lf() -> Any:
    try:
        import layerforensics
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        pytest.fail(f"layerforensics not importable: {exc}")
    return layerforensics


@pytest.fixture(scope="session")
def open_built(engine_image: Callable[..., dict[str, Path]], lf: Any) -> Callable[..., Any]:
    """``open_built(case, builder, encoding) -> lf.Image`` (memoised for the session)."""

    def get(case: BuildCase, builder: str, encoding: str) -> Any:
        key = (case.name, builder, encoding)
        if key not in _OPENED:
            _OPENED[key] = lf.open_image(engine_image(case, builder)[encoding])
        return _OPENED[key]

    return get


def matrix(cases: list[BuildCase]) -> list[Any]:
    return [
        pytest.param(c, b, e, id=f"{c.name}-{b}-{e}")
        for c in cases
        for b in BUILDERS
        for e in ENCODINGS
    ]


def by_layer(df: pd.DataFrame, layer: int) -> pd.DataFrame:
    return df[df["layer"] == layer]


def one_row(df: pd.DataFrame, **where: Any) -> pd.Series:
    sel = df
    for col, val in where.items():
        sel = sel[sel[col] == val]
    assert len(sel) == 1, f"expected one row where {where}, got {len(sel)}:\n{sel.to_string()}"
    return sel.iloc[0]


def fs_types(img: Any) -> dict[str, str]:
    fs = img.filesystem()
    return {p: str(t) for p, t in zip(fs["path"], fs["type"], strict=True) if p != "/"}


# --- every image, every encoding ---------------------------------------------------------
@pytest.mark.parametrize(("case", "builder", "encoding"), matrix(CASES))
def test_layers_and_history(open_built, case: BuildCase, builder: str, encoding: str) -> None:
    img = open_built(case, builder, encoding)
    steps = layer_steps(case, builder)
    layers = img.layers
    assert list(layers["layer"]) == list(range(len(steps)))
    assert layers["verified"].tolist() == [True] * len(steps), layers[["layer", "verified"]]
    assert list(layers["diff_id"]) == img.config["rootfs"]["diff_ids"]
    assert set(layers["compression"].astype(str)) == {EXPECTED_COMPRESSION[encoding]}
    assert img.image_id.startswith("sha256:")
    for i, step in enumerate(steps[1:], start=1):
        instr = step.split()[0]
        assert layers["instruction"].iloc[i] == instr, (i, step, layers["instruction"].tolist())
        if instr == "RUN":
            created_by = str(layers["created_by"].iloc[i])
            assert step[4:] in created_by, (step, created_by)

    hist = img.history
    filled = hist[~hist["empty_layer"].astype(bool)]
    assert filled["layer"].tolist() == list(range(len(steps))), hist[["step", "layer"]]
    empty = hist[hist["empty_layer"].astype(bool)]
    assert empty["layer"].isna().all()
    instrs = [x.split()[0] for x in case.dockerfile.splitlines() if x.strip()]
    dockerfile_meta = [
        i for i in instrs if i in ("ARG", "ENV") or (i == "WORKDIR" and builder == "buildah")
    ]
    # The base image's own history entry (buildah commit) has no empty entries after it.
    assert [str(x) for x in empty["instruction"]] == dockerfile_meta
    # the merged view equals the OCI rules applied to the layers by Python's tarfile
    assert merged_view(img) == tarfile_reference(img)


@pytest.mark.parametrize(("case", "builder", "encoding"), matrix([SECRET]))
def test_secret(open_built, case: BuildCase, builder: str, encoding: str) -> None:
    img = open_built(case, builder, encoding)
    l_secret = L(case, builder, 'RUN echo "secret"')
    l_build = L(case, builder, 'RUN echo "token')
    l_rm = L(case, builder, "RUN rm")

    assert fs_types(img) == expected_fs(case, builder, {"/build.txt": "file"})
    assert img.read("/build.txt") == b"token=tok-123 mode=prod\n"
    assert img.read("/secret.txt", layer=l_secret) == b"secret\n"
    with pytest.raises(KeyError):  # PathNotFoundError is a KeyError
        img.read("/secret.txt")

    deleted = img.deleted
    assert deleted["path"].tolist() == ["/secret.txt"]
    row = one_row(deleted, path="/secret.txt")
    assert (row["type"], row["size"], row["layer"], row["deleted_layer"], row["cause"]) == (
        "file",
        7,
        l_secret,
        l_rm,
        "whiteout",
    )

    files = img.files
    orig = one_row(by_layer(files, l_secret), path="/secret.txt")
    assert (orig["type"], orig["size"], orig["sha256"]) == ("file", 7, sha(b"secret\n"))
    assert (orig["status"], orig["status_layer"]) == ("deleted", l_rm)
    marker = one_row(by_layer(files, l_rm), whiteout_target="/secret.txt")
    assert (marker["type"], marker["status"]) == ("whiteout", "marker")
    assert img.layers["entries"].iloc[l_rm] == 1
    assert img.layers["size"].iloc[l_secret] == 7  # buildah's extra files there are empty

    ch = img.changes
    added = one_row(ch, layer=l_secret, path="/secret.txt")
    assert (added["change"], added["type"], added["cause"]) == ("added", "file", "write")
    assert pd.isna(added["prev_layer"])
    gone = one_row(ch, layer=l_rm, path="/secret.txt")
    assert (gone["change"], gone["prev_layer"], gone["cause"]) == ("deleted", l_secret, "whiteout")
    assert one_row(ch, layer=l_build, path="/build.txt")["change"] == "added"

    # build args and ENV values stay in the metadata
    assert "APP_MODE=prod" in img.config["config"]["Env"]
    runs = img.history[img.history["instruction"] == "RUN"]["created_by"]
    assert len(runs) == 3 and all("TOKEN=tok-123" in str(c) for c in runs), runs.tolist()

    # every file version is visible to a scan, including the deleted secret
    seen = {(r.layer, r.path): data for r, data in img.iter_contents()}
    assert seen[(l_secret, "/secret.txt")] == b"secret\n"
    assert seen[(l_build, "/build.txt")] == b"token=tok-123 mode=prod\n"


@pytest.mark.parametrize(("case", "builder", "encoding"), matrix([OPAQUE]))
def test_opaque_dir(open_built, case: BuildCase, builder: str, encoding: str) -> None:
    img = open_built(case, builder, encoding)
    l1, l2 = L(case, builder, "RUN mkdir"), L(case, builder, "RUN rm -rf /d")
    # dockerd writes d/.wh..wh..opq, buildah one .wh. per old child
    cause = "opaque" if builder == "docker" else "whiteout"

    assert fs_types(img) == expected_fs(case, builder, {"/d": "dir", "/d/h": "file"})
    assert img.read("/d/h") == b"3\n"
    assert img.read("/d/g", layer=l1) == b"2\n"
    assert img.read("/d/sub/f", layer=l1) == b"1\n"

    deleted = img.deleted.sort_values("path")
    assert deleted["path"].tolist() == ["/d/g", "/d/sub", "/d/sub/f"]
    assert deleted["type"].astype(str).tolist() == ["file", "dir", "file"]
    assert deleted["layer"].tolist() == [l1] * 3
    assert deleted["deleted_layer"].tolist() == [l2] * 3
    assert deleted["cause"].astype(str).tolist() == [cause] * 3

    ch = img.changes
    for path in ("/d/g", "/d/sub", "/d/sub/f"):
        row = one_row(ch, layer=l2, path=path)
        assert (row["change"], row["prev_layer"], row["cause"]) == ("deleted", l1, cause), path
    row = one_row(ch, layer=l2, path="/d/h")
    assert (row["change"], row["cause"]) == ("added", "write")

    files = img.files
    if builder == "docker":
        marker = one_row(by_layer(files, l2), type="opaque")
        assert (marker["whiteout_target"], marker["status"]) == ("/d", "marker")
    for path in ("/d/g", "/d/sub/f"):
        row = one_row(by_layer(files, l1), path=path)
        assert (row["status"], row["status_layer"]) == ("deleted", l2)


@pytest.mark.parametrize(("case", "builder", "encoding"), matrix([HARDLINK]))
def test_hardlink_outlives_source(open_built, case: BuildCase, builder: str, encoding: str) -> None:
    img = open_built(case, builder, encoding)
    l1, l2 = L(case, builder, "RUN echo data"), L(case, builder, "RUN rm /a")

    fs = fs_types(img)
    assert fs.pop("/b") in ("hardlink", "file")
    assert fs == expected_fs(case, builder, {})
    assert img.read("/b") == b"data\n"
    assert img.read("/b", layer=l1) == b"data\n"
    assert img.read("/a", layer=l1) == b"data\n"

    row = one_row(img.deleted, path="/a")
    assert (row["layer"], row["deleted_layer"], row["cause"]) == (l1, l2, "whiteout")
    assert img.deleted["path"].tolist() == ["/a"]

    files = by_layer(img.files, l1)
    link = one_row(files, path="/b")
    assert link["type"] == "hardlink"
    assert str(link["linkname"]).lstrip("/") == "a"
    assert one_row(files, path="/a")["sha256"] == sha(b"data\n")
    gone = one_row(img.changes, layer=l2, path="/a")
    assert (gone["change"], gone["prev_layer"], gone["cause"]) == ("deleted", l1, "whiteout")


@pytest.mark.parametrize(("case", "builder", "encoding"), matrix([TYPECHANGE]))
def test_type_changes(open_built, case: BuildCase, builder: str, encoding: str) -> None:
    img = open_built(case, builder, encoding)
    l1, l2 = L(case, builder, "RUN echo f"), L(case, builder, "RUN rm /p")

    assert fs_types(img) == expected_fs(case, builder, {"/p": "dir", "/p/z": "file", "/q": "file"})
    assert img.read("/q") == b"notdir\n"
    assert img.read("/p/z") == b"z\n"
    assert img.read("/p", layer=l1) == b"f\n"
    assert img.read("/q/y", layer=l1) == b"x\n"

    ch = img.changes
    for path, new_type in (("/p", "dir"), ("/q", "file")):
        row = one_row(ch, layer=l2, path=path)
        got = (row["change"], row["type"], row["prev_layer"], row["cause"])
        assert got == ("modified", new_type, l1, "type-change"), path
    y = one_row(ch, layer=l2, path="/q/y")
    assert (y["change"], y["prev_layer"], y["cause"]) == ("deleted", l1, "type-change")

    deleted = img.deleted
    y = one_row(deleted, path="/q/y")
    assert (y["layer"], y["deleted_layer"], y["cause"]) == (l1, l2, "type-change")
    assert set(deleted["path"]) <= {"/q/y", "/p", "/q"}, deleted

    old_q = one_row(by_layer(img.files, l1), path="/q/y")
    assert (old_q["status"], old_q["status_layer"]) == ("deleted", l2)


@pytest.mark.parametrize(("case", "builder", "encoding"), matrix([MULTIRM]))
def test_several_whiteouts_in_one_layer(
    open_built, case: BuildCase, builder: str, encoding: str
) -> None:
    # On overlayfs (kernel >= 5.8) all whiteouts of one layer share an inode, so dockerd writes
    # the 2nd and later `.wh.` entries as regular files carrying a linkname (e.g. `.wh.x` with
    # linkname `w/1`). They are whiteouts all the same.
    img = open_built(case, builder, encoding)
    l1, l2 = L(case, builder, "RUN mkdir /w"), L(case, builder, "RUN rm")
    gone = ["/w/1", "/w/2", "/x"]

    assert fs_types(img) == expected_fs(case, builder, {"/w": "dir", "/w/3": "file"})
    assert img.read("/w/3") == b"3\n"
    assert img.read("/x", layer=l1) == b"x\n"
    assert img.read("/w/2", layer=l1) == b"2\n"

    deleted = img.deleted.sort_values("path")
    assert deleted["path"].tolist() == gone
    assert deleted["layer"].tolist() == [l1] * 3
    assert deleted["deleted_layer"].tolist() == [l2] * 3
    assert deleted["cause"].astype(str).tolist() == ["whiteout"] * 3

    layer2 = by_layer(img.files, l2)
    markers = layer2[layer2["whiteout_target"].notna()].sort_values("whiteout_target")
    assert markers["whiteout_target"].tolist() == gone
    assert markers["type"].astype(str).tolist() == ["whiteout"] * 3
    assert markers["status"].astype(str).tolist() == ["marker"] * 3
    assert markers["linkname"].isna().all(), markers
    assert set(layer2["path"]) - set(markers["path"]) == {"/w"}
    for path in gone:
        row = one_row(img.changes, layer=l2, path=path)
        assert (row["change"], row["prev_layer"], row["cause"]) == ("deleted", l1, "whiteout")


@pytest.mark.parametrize(("case", "builder", "encoding"), matrix([COPY]))
def test_copy_chmod_workdir(open_built, case: BuildCase, builder: str, encoding: str) -> None:
    img = open_built(case, builder, encoding)
    l_app, l_big = L(case, builder, "COPY files/"), L(case, builder, "COPY big.bin")
    l_chmod = L(case, builder, "RUN chmod")
    app = {"/app": "dir", "/app/sub": "dir", "/big.bin": "file"}
    app.update({"/app/" + k.removeprefix("files/"): "file" for k in COPY_FILES})
    if builder == "docker":  # the classic builder commits WORKDIR's new directory
        app["/srv"] = "dir"
    assert fs_types(img) == expected_fs(case, builder, app)
    assert img.config["config"]["WorkingDir"] == "/srv"

    fs = img.filesystem().set_index("path")
    for rel, data in COPY_FILES.items():
        path = "/app/" + rel.removeprefix("files/")
        assert img.read(path) == data
        assert fs.loc[path, "sha256"] == sha(data)
        assert fs.loc[path, "layer"] == l_app
        row = one_row(img.changes, layer=l_app, path=path)
        assert (row["change"], row["cause"]) == ("added", "write")

    # chmod copies the whole file up into a new layer: same bytes, new mode
    assert img.read("/big.bin") == BIG
    assert (fs.loc["/big.bin", "mode"], fs.loc["/big.bin", "layer"]) == (0o600, l_chmod)
    assert fs.loc["/big.bin", "sha256"] == sha(BIG)
    files = img.files[img.files["path"] == "/big.bin"].sort_values("layer")
    assert files["layer"].tolist() == [l_big, l_chmod]
    assert files["sha256"].tolist() == [sha(BIG)] * 2
    assert files["size"].tolist() == [len(BIG)] * 2
    assert files["mode"].tolist() == [0o644, 0o600]
    assert files["status"].astype(str).tolist() == ["overwritten", "present"]
    assert files["status_layer"].iloc[0] == l_chmod
    row = one_row(img.changes, layer=l_chmod, path="/big.bin")
    assert (row["change"], row["prev_layer"], row["cause"]) == ("modified", l_big, "write")
    assert row["size"] == len(BIG)
    assert img.deleted.empty
    if builder == "docker":
        assert img.layers["instruction"].iloc[-1] == "WORKDIR"


# --- all encodings of one build agree ----------------------------------------------------
def _norm(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    df = df.drop(columns=[c for c in ENCODING_COLUMNS if c in df.columns])
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


@pytest.mark.parametrize(
    ("case", "builder"),
    [pytest.param(c, b, id=f"{c.name}-{b}") for c in CASES for b in BUILDERS],
)
def test_encodings_agree(open_built, case: BuildCase, builder: str) -> None:
    ref = open_built(case, builder, "docker-save")
    oci_ref = open_built(case, builder, "skopeo-oci-gzip")
    frames = {
        "files": (lambda i: i.files, ["layer", "entry"]),
        "changes": (lambda i: i.changes, ["layer", "path"]),
        "filesystem": (lambda i: i.filesystem(), ["path"]),
        "deleted": (lambda i: i.deleted, ["path", "layer"]),
        "layers": (lambda i: i.layers, ["layer"]),
        "history": (lambda i: i.history, ["step"]),
    }
    failures = []
    for enc in ENCODINGS[1:]:
        img = open_built(case, builder, enc)
        # The config bytes (so the image id) change when containers/image converts a Docker
        # manifest to OCI: it drops container, container_config, docker_version.
        family = ref if enc in DOCKER_CONFIG_ENCODINGS else oci_ref
        if img.image_id != family.image_id:
            failures.append(f"{enc}: image_id {img.image_id} != {family.image_id}")
        for key in ("rootfs", "history"):
            if img.config[key] != ref.config[key]:
                failures.append(f"{enc}: config[{key!r}] differs from docker-save's")
        for name, (get, keys) in frames.items():
            try:
                assert_frame_equal(_norm(get(img), keys), _norm(get(ref), keys))
            except AssertionError as exc:
                failures.append(f"{enc}: {name} differs from docker-save: {exc}")
        for layer in range(len(ref.layers)):
            try:
                assert_frame_equal(
                    _norm(img.filesystem(layer), ["path"]), _norm(ref.filesystem(layer), ["path"])
                )
            except AssertionError as exc:
                failures.append(f"{enc}: filesystem({layer}) differs: {exc}")
    assert not failures, "\n".join(failures)


# --- docker save a b -o multi.tar --------------------------------------------------------
MULTI_TAGS = {"secret": "localhost/lf-multi-secret:1", "hardlink": "localhost/lf-multi-hardlink:1"}


def _config_id(docker_save: Path) -> str:
    """Image id of a single-image docker save, straight from its manifest.json and config."""
    with tarfile.open(docker_save) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert len(manifest) == 1
        return "sha256:" + sha(tar.extractfile(manifest[0]["Config"]).read())  # type: ignore[union-attr]


def test_multi_image_save(engine_session, engine_image, engine_guard, lf) -> None:
    cases = [SECRET, HARDLINK]
    for c in cases:  # skip/fail per policy before touching dockerd
        engine_image(c, "docker")
    multi = engine_guard(engine_session.multi_save, cases, [MULTI_TAGS[c.name] for c in cases])

    listing = lf.list_images(multi)
    assert len(listing) == 2, listing
    assert {"ref", "tags", "image_id", "platform", "layers", "created"} <= set(listing.columns)
    for c in cases:
        tag = MULTI_TAGS[c.name]
        single = engine_image(c, "docker")["docker-save"]
        expected_id = _config_id(single)
        row = listing[listing["image_id"] == expected_id]
        assert len(row) == 1, (expected_id, listing)
        assert tag == row["ref"].iloc[0] or tag in list(row["tags"].iloc[0]), row
        assert row["layers"].iloc[0] == len(layer_steps(c, "docker"))

        img = lf.open_image(multi, ref=tag)
        assert img.image_id == expected_id
        assert tag in img.tags
        alone = lf.open_image(single)
        keys = ["layer", "entry"]
        assert_frame_equal(_norm(img.files, keys), _norm(alone.files, keys))
        assert_frame_equal(_norm(img.deleted, ["path"]), _norm(alone.deleted, ["path"]))

    with pytest.raises(lf.errors.ImageReferenceError):
        lf.open_image(multi)
