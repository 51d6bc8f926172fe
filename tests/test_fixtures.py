"""Every image in ../shared/data opens (or fails with the right error), with known answers."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import merged_view, require_shared_data, tarfile_reference

import layerforensics as lf
from layerforensics import errors
from layerforensics.builder import ImageBuilder

# path under shared/data -> (format, number of images, layers of the default image)
OPENS = {
    "Dedockify/example3/example3.tar.gz": ("docker-archive", 1, 8),
    "Dedockify/example3/hello.tar.gz": ("docker-archive", 1, 1),
    "Whaler/test-image.tar": ("docker-archive+oci", 1, 1),
    "containers-image/docker-archive/almostempty.tar": ("docker-archive", 1, 1),
    "dive/test-docker-image.tar": ("docker-archive", 1, 14),
    "dive/test-kaniko-image.tar": ("docker-archive", 1, 14),
    "dive/test-oci-estargz-image.tar": ("oci-layout", 1, 1),
    "dive/test-oci-gzip-image.tar": ("oci-layout", 1, 1),
    "dive/test-oci-uncompressed-image.tar": ("oci-layout", 1, 1),
    "dive/test-oci-zstd-image.tar": ("oci-layout", 1, 1),
    "ggshield/docker-example.tar.xz": ("docker-archive", 1, 3),
    "go-containerregistry/layout/test_gc_index": ("oci-layout", 3, 1),
    "go-containerregistry/layout/test_index": ("oci-layout", 4, 1),
    "go-containerregistry/layout/test_index_one_image": ("oci-layout", 1, 1),
    "go-containerregistry/mutate/overwritten_file.tar": ("docker-archive", 1, 3),
    "go-containerregistry/mutate/source_image.tar": ("docker-archive", 1, 1),
    "go-containerregistry/mutate/whiteout_dir.tar": ("docker-archive", 1, 4),
    "go-containerregistry/mutate/whiteout_image.tar": ("docker-archive", 1, 3),
    "go-containerregistry/tarball/hello-world-v25.tar": ("docker-archive+oci", 1, 1),
    "go-containerregistry/tarball/no_manifest.tar": ("docker-v1", 1, 1),
    "go-containerregistry/tarball/test_bundle.tar": ("docker-archive", 2, 1),
    "go-containerregistry/tarball/test_image_1.tar": ("docker-archive", 1, 1),
    "go-containerregistry/tarball/test_image_2.tar": ("docker-archive", 1, 1),
    "go-containerregistry/tarball/test_link.tar": ("docker-archive", 2, 1),
    "go-containerregistry/tarball/test_load_manifest.tar": ("docker-archive", 1, 1),
    "moby/integration-cli/emptyLayer.tar": ("docker-v1", 1, 3),
    "oras-py/ocilayout1": ("oci-layout", 1, 1),
    "oras-py/ocilayout2": ("oci-layout", 2, 1),
    "skopeo/integration/uncompressed-image-s1": ("skopeo-dir(schema1)", 1, 1),
    "skopeo/integration/uncompressed-image-s2": ("skopeo-dir", 1, 1),
    "skopeo/systemtest/docker-two-images.tar.xz": ("docker-archive", 2, 1),
    "stereoscope/oci/multiplatform_oci_dir": ("oci-layout", 2, 1),
    "stereoscope/oci/valid-oci.tar": ("oci-layout", 1, 1),
    "stereoscope/oci/valid_oci_dir": ("oci-layout", 2, 1),
    "trivy/fanal/alpine-310.tar.gz": ("docker-archive", 1, 1),
    "trivy/fanal/test.oci": ("oci-layout", 1, 1),
    "trivy/fanal/test_image_tag.oci": ("oci-layout", 1, 1),
}

FAILS = {
    # bare layers and file trees are not images
    "container-diff/la-croix1.tar": (errors.NotAnImageError, "not a container image"),
    "go-containerregistry/crane/content.tar": (errors.NotAnImageError, "single layer"),
    "go-containerregistry/crane/content.tar.zst": (errors.NotAnImageError, "single layer"),
    "go-containerregistry/tarball/content.tar": (errors.NotAnImageError, "single layer"),
    "moby/tarsum/xattr/layer.tar": (errors.NotAnImageError, "not a container image"),
    # dive's non-OCI "images" are README placeholders in the shared copy
    "dive/test-gzip-image.tar": (errors.NotAnImageError, "README.md"),
    "go-containerregistry/tarball/null_manifest.tar": (
        errors.NotAnImageError,
        "manifest.json is null",
    ),
    "go-containerregistry/layout/test_index_media_type": (errors.ArtifactError, "artifact"),
    "go-containerregistry/layout/test_gc_image_unknown_mediatype": (
        errors.MissingBlobError,
        "missing",
    ),
    "docker-explorer/overlay2.v2.tgz": (errors.NotAnImageError, "open_host"),
    "docker-explorer/aufs.v1.tgz": (errors.NotAnImageError, "open_host"),
    "stereoscope/oci/invalid_file": (errors.InvalidJSONError, "not valid JSON"),
    "stereoscope/oci/no_manifests": (errors.NotAnImageError, "manifests: null"),
    "stereoscope/oci/valid_manifest": (errors.InvalidJSONError, "not valid JSON"),
    "trivy/fanal/test_bad_index_json.oci": (errors.InvalidJSONError, "index.json"),
    "trivy/fanal/test_index_json_dir.oci": (errors.InvalidJSONError, "is a directory"),
    "trivy/fanal/test_invalid_oci_image.oci": (errors.MissingBlobError, "missing"),
    "trivy/fanal/test_no_valid_manifests.oci": (errors.NotAnImageError, "manifests: null"),
    "containers-image/oci-layout/manifest": (errors.MissingBlobError, "missing"),
}

# OCI layouts whose layer blobs are text placeholders: they open, and indexing says "corrupt".
PLACEHOLDER_LAYERS = [
    "containers-image/oci-layout/delete_image_only_one_image",
    "containers-image/oci-layout/delete_image_multiple_images",
]


@pytest.mark.parametrize("rel", sorted(OPENS))
def test_fixture_opens_and_verifies(rel: str) -> None:
    path = require_shared_data() / rel
    fmt, images, layer_count = OPENS[rel]
    listing = lf.list_images(path)
    assert len(listing) == images
    ref = listing["ref"].dropna().iloc[0] if images > 1 and listing["ref"].notna().any() else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", errors.DigestMismatchWarning)
        img = lf.open_image(path, ref=ref)
        layers = img.layers
    assert img.format == fmt
    assert len(layers) == layer_count
    mismatches = [w for w in caught if issubclass(w.category, errors.DigestMismatchWarning)]
    if rel == "moby/integration-cli/emptyLayer.tar":
        assert layers["verified"].isna().all()  # pre-1.10: nothing declares a diff_id
    else:
        assert layers["verified"].all(), img.warnings
        assert not mismatches
    assert (layers["diff_id"].str.len() == 71).all()
    # every frame builds and agrees with the others
    files = img.files
    assert int(layers["entries"].sum()) == len(files)
    fs = img.filesystem()
    assert set(fs["path"]).isdisjoint(set(img.deleted["path"]))
    img.close()


@pytest.mark.parametrize("rel", sorted(OPENS))
def test_filesystem_matches_an_independent_tarfile_application(rel: str) -> None:
    # Every image of every fixture that opens: our merged view against the same OCI rules
    # applied with Python's tarfile to each layer (paths, types, sizes, symlink targets).
    path = require_shared_data() / rel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", errors.DigestMismatchWarning)
        listing = lf.list_images(path)
        refs = listing["ref"].fillna(listing["image_id"]).tolist() if len(listing) > 1 else [None]
        for ref in refs:
            img = lf.open_image(path, ref=ref)
            assert merged_view(img) == tarfile_reference(img), ref
            img.close()


@pytest.mark.parametrize("rel", sorted(FAILS))
def test_fixture_fails_with_the_right_error(rel: str) -> None:
    path = require_shared_data() / rel
    error, text = FAILS[rel]
    with pytest.raises(error) as info:
        img = lf.open_image(path)
        img.files  # noqa: B018 - a frame that needs every layer
    assert text in str(info.value)
    assert str(path) in str(info.value) or info.value.source.startswith(str(path))


@pytest.mark.parametrize("rel", PLACEHOLDER_LAYERS)
def test_placeholder_layers_are_reported_corrupt_not_empty(rel: str) -> None:
    path = require_shared_data() / rel
    listing = lf.list_images(path)
    img = lf.open_image(path, ref=listing["ref"].dropna().iloc[0])
    # metadata works without touching layers
    assert len(img.history) == 2 and img.layer_count == 1
    assert img.config["architecture"] == "amd64"
    with pytest.raises(errors.CorruptArchiveError, match="truncated"):
        img.layers  # noqa: B018


def test_config_edited_after_naming_is_a_warning_then_strict_error() -> None:
    # go-containerregistry's fixture: the config was edited after it was named by its digest.
    path = (
        require_shared_data()
        / "go-containerregistry/mutate/source_image_with_empty_layer_history.tar"
    )
    with pytest.warns(errors.DigestMismatchWarning, match="config digest mismatch"):
        img = lf.open_image(path)
    assert any("config digest mismatch" in w for w in img.warnings)
    with pytest.raises(errors.DigestMismatchError):
        lf.open_image(path, strict=True)


# dive.md section 3.1: diff_id, regular-file bytes and tree node count per layer
DIVE_LAYERS = [
    ("23bc2b70b2014dec0ac22f27bb93e9babd08cdd6f1115d0c955b9ff22b382f5a", 1154361, "ADD"),
    ("a65b7d7ac139a0e4337bc3c73ce511f937d6140ef61a0108f7d4b8aab8d67274", 6405, "ADD"),
    ("93e208d471756ffbac88cf9c25feb442007f221d3bd73231e27b747a0a68927c", 0, "RUN"),
    ("4abad3abe3cb99ad7a492a9d9f6b3d66287c1646843c74128bbbec4f7be5aa9e", 6405, "RUN"),
    ("14c9a6ffcb6a0f32d1035f97373b19608e2d307961d8be156321c3f1c1504cbf", 6405, "RUN"),
    ("778fb5770ef466f314e79cc9dc418eba76bfc0a64491ce7b167b76aa52c736c4", 6405, "RUN"),
    ("f275b8a31a71deb521cc048e6021e2ff6fa52bedb25c9b7bbe129a0195ddca5f", 6405, "RUN"),
    ("dd1effc5eb19894c3e9b57411c98dd1cf30fa1de4253c7fae53c9cea67267d83", 6405, "RUN"),
    ("8d1869a0a066cdd12e48d648222866e77b5e2814f773bb3bd8774ab4052f0f1d", 6405, "RUN"),
    ("bc2e36423fa31a97223fd421f22c35466220fa160769abf697b8eb58c896b468", 0, "RUN"),
    ("7f648d45ee7b6de2292162fba498b66cbaaf181da9004fcceef824c72dbae445", 2187, "ADD"),
    ("a4b8f95f266d5c063c9a9473c45f2f85ddc183e37941b5e6b6b9d3c00e8e0457", 6405, "RUN"),
    ("22a44d45780a541e593a8862d80f3e14cb80b6bf76aa42ce68dc207a35bf3a4a", 6405, "RUN"),
    ("ba689cac6a98c92d121fa5c9716a1bab526b8bb1fd6d43625c575b79e97300c5", 6405, "RUN"),
]


@pytest.fixture(scope="module")
def dive_image() -> lf.Image:
    return lf.open_image(require_shared_data() / "dive/test-docker-image.tar")


def test_dive_layers_match_dive(dive_image: lf.Image) -> None:
    layers = dive_image.layers
    assert layers["diff_id"].tolist() == ["sha256:" + d for d, _, _ in DIVE_LAYERS]
    assert layers["size"].tolist() == [s for _, s, _ in DIVE_LAYERS]
    assert layers["instruction"].astype(str).tolist() == [i for _, _, i in DIVE_LAYERS]
    assert int(layers["size"].sum()) == 1220598  # dive's sizeBytes
    assert len(dive_image.files) == 451  # "Analyzing image [layers:14 files:451 ...]"
    assert len(dive_image.history) == 15
    assert dive_image.history["empty_layer"].sum() == 1


def test_dive_per_layer_changes(dive_image: lf.Image) -> None:
    """dive.md's per-layer change sets, without dive's "directory re-emitted = modified" noise."""
    ch = dive_image.changes

    def at(layer: int, change: str) -> set[str]:
        rows = ch[(ch["layer"] == layer) & (ch["change"] == change)]
        return set(rows["path"])

    assert at(1, "added") == {"/somefile.txt"}
    assert at(2, "added") == {
        "/root/example",
        "/root/example/really",
        "/root/example/really/nested",
    }
    assert at(3, "added") == {"/root/example/somefile1.txt"}
    assert at(4, "modified") == {"/root/example/somefile1.txt"}  # chmod 444: a copy-up
    assert at(7, "deleted") == {"/root/example/somefile3.txt"}
    assert at(7, "added") == {"/root/saved.txt"}
    assert at(9, "deleted") == {
        "/root/example",
        "/root/example/really",
        "/root/example/really/nested",
        "/root/example/somefile1.txt",
        "/root/example/somefile2.txt",
    }
    assert at(10, "added") == {"/root/.data", "/root/.data/tag.sh", "/root/.data/test.sh"}
    assert at(13, "modified") == {"/root/saved.txt"}
    m = ch[(ch["layer"] == 4) & (ch["path"] == "/root/example/somefile1.txt")].iloc[0]
    assert m["prev_layer"] == 3 and m["cause"] == "write"
    files = dive_image.files.set_index(["layer", "entry"])
    # chmod is a copy-up: the same bytes stored twice
    v3 = files[(files["path"] == "/root/example/somefile1.txt")]
    assert v3["sha256"].nunique() == 1 and len(v3) == 2


def test_dive_deleted_and_recovered(dive_image: lf.Image) -> None:
    deleted = dive_image.deleted.set_index("path")
    assert deleted.loc["/root/example/somefile3.txt", "deleted_layer"] == 7
    assert deleted.loc["/root/example/somefile3.txt", "layer"] == 6
    assert deleted.loc["/root/example/somefile1.txt", "layer"] == 4  # the chmod-ed version
    assert deleted.loc["/root/example/somefile1.txt", "cause"] == "whiteout"
    original = dive_image.read("/somefile.txt")
    assert len(original) == 6405
    assert dive_image.read("/root/example/somefile3.txt", layer=6) == original
    assert dive_image.read("/root/saved.txt") == original


def test_kaniko_matches_dive_replica_counts() -> None:
    img = lf.open_image(require_shared_data() / "dive/test-kaniko-image.tar")
    layers = img.layers
    assert set(layers["compression"].astype(str)) == {"gzip"}
    assert int(layers["size"].sum()) == 1326410  # dive.md 3.2 sizeBytes
    assert int(layers["size"].iloc[0]) == 1231733


def test_estargz_entries_are_tagged() -> None:
    img = lf.open_image(require_shared_data() / "dive/test-oci-estargz-image.tar")
    files = img.files
    synthetic = set(files.loc[files["synthetic"], "path"])
    assert "/stargz.index.json" in synthetic
    assert "/stargz.index.json" not in set(img.filesystem()["path"])  # not a file of the image
    assert files.set_index("path").loc["/stargz.index.json", "status"] == "marker"
    assert not files.loc[~files["synthetic"], "path"].str.contains("stargz.index.json").any()


def test_multi_platform_selection() -> None:
    path = require_shared_data() / "stereoscope/oci/multiplatform_oci_dir"
    listing = lf.list_images(path)
    platforms = sorted(listing["platform"])
    assert len(platforms) == 2
    other = next(p for p in platforms if p != "linux/amd64")
    img = lf.open_image(path, platform=other)
    assert img.platform == other
    with pytest.raises(errors.PlatformError, match="present"):
        lf.open_image(path, platform="plan9/mips")


def test_containerd_store_save_skips_absent_platforms() -> None:
    img = lf.open_image(require_shared_data() / "Whaler/test-image.tar")
    assert img.layers["compression"].tolist() == ["gzip"]
    assert img.read("/hello").startswith(b"\x7fELF")


@pytest.mark.parametrize(
    ("rel", "name"),
    [
        ("go-containerregistry/tarball/test_bundle.tar", None),
        ("skopeo/systemtest/docker-two-images.tar.xz", None),
    ],
)
def test_multi_image_archives_need_a_ref(rel: str, name: str | None) -> None:
    path = require_shared_data() / rel
    listing = lf.list_images(path)
    assert len(listing) == 2
    with pytest.raises(errors.ImageReferenceError, match="pass ref="):
        lf.open_image(path)
    for tags in listing["tags"]:
        img = lf.open_image(path, ref=tags[0])
        assert tags[0] in img.tags
    with pytest.raises(errors.ImageReferenceError, match="no image"):
        lf.open_image(path, ref="does-not-exist:1")


def test_symlinked_layer_tar_is_resolved_inside_the_archive() -> None:
    img = lf.open_image(
        require_shared_data() / "go-containerregistry/tarball/test_link.tar",
        ref=lf.list_images(require_shared_data() / "go-containerregistry/tarball/test_link.tar")[
            "tags"
        ][1][0],
    )
    assert img.layers["verified"].all()


def test_opaque_whiteouts_from_a_real_docker_build() -> None:
    img = lf.open_image(require_shared_data() / "Dedockify/example3/example3.tar.gz")
    opaque = img.files[img.files["type"] == "opaque"]
    assert len(opaque) >= 1
    assert opaque["whiteout_target"].notna().all()
    assert not img.filesystem()["path"].str.contains(r"\.wh\.").any()


def test_xattrs_are_kept() -> None:
    data = require_shared_data() / "moby/tarsum/xattr/layer.tar"
    b = ImageBuilder()
    b.raw_layer(data.read_bytes())
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "x.tar"
        b.save_docker(out)
        img = lf.open_image(out)
        xattrs = img.files["xattrs"].dropna().tolist()
        assert any("security.capability" in x for x in xattrs)


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        (["la-croix2.tar", "la-croix-wh.tar"], "la-croix-wh-actual"),
        (["la-croix2.tar", "la-croix-update.tar"], "la-croix-update-actual"),
        (["la-croix2.tar", "la-croix-dir-update.tar"], "la-croix-dir-update-actual"),
        (["la-croix1.tar"], "la-croix1-actual"),
        (["la-croix2.tar"], "la-croix2-actual"),
    ],
)
def test_container_diff_expected_trees(tmp_path: Path, layers: list[str], expected: str) -> None:
    base = require_shared_data() / "container-diff"
    b = ImageBuilder()
    for name in layers:
        b.raw_layer((base / name).read_bytes(), created_by=f"ADD {name} /")
    b.save_docker(tmp_path / "img.tar")
    img = lf.open_image(tmp_path / "img.tar")
    fs = img.filesystem()
    files = fs[fs["type"] == "file"]
    want = {
        "/" + p.relative_to(base / expected).as_posix(): p.read_bytes()
        for p in (base / expected).rglob("*")
        if p.is_file()
    }
    assert set(files["path"]) == set(want)
    for path, content in want.items():
        assert img.read(path) == content
    if "la-croix-wh.tar" in layers:
        deleted = set(img.deleted["path"])
        assert {"/lime.txt", "/nest", "/nest/f1.txt"} <= deleted
        assert img.read("/lime.txt", layer=0) == (base / "la-croix2-actual/lime.txt").read_bytes()


def test_history_pairing_with_empty_layers(dive_image: lf.Image) -> None:
    h = dive_image.history
    assert pd.isna(h.loc[1, "layer"]) and bool(h.loc[1, "empty_layer"])
    assert h["layer"].dropna().tolist() == list(range(14))


def test_stereoscope_engine_config_history_and_build_args(tmp_path: Path) -> None:
    """A real classic-builder config (20 steps, 7 layers, `|4 K=V` build args) with stand-in layers."""
    import hashlib
    import io
    import json
    import tarfile

    config = json.loads(
        (require_shared_data() / "stereoscope/docker/engine-config.json").read_bytes()
    )
    empty = io.BytesIO()
    tarfile.open(fileobj=empty, mode="w").close()
    layer = empty.getvalue()
    config["rootfs"]["diff_ids"] = ["sha256:" + hashlib.sha256(layer).hexdigest()] * 7
    raw = json.dumps(config).encode()
    members = {
        "config.json": raw,
        **{f"{n}/layer.tar": layer for n in range(7)},
        "manifest.json": json.dumps(
            [
                {
                    "Config": "config.json",
                    "RepoTags": ["anchore:1"],
                    "Layers": [f"{n}/layer.tar" for n in range(7)],
                }
            ]
        ).encode(),
    }
    with tarfile.open(tmp_path / "img.tar", "w") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    img = lf.open_image(tmp_path / "img.tar")
    h = img.history
    assert len(h) == 20 and int(h["empty_layer"].sum()) == 13
    assert h["layer"].dropna().tolist() == list(range(7))
    assert img.layers["instruction"].astype(str).tolist()[2:4] == ["COPY", "RUN"]
    run = h[h["build_args"].map(len) == 4].iloc[0]
    assert run["instruction"] == "RUN"
    assert run["build_args"]["ANCHORE_ENGINE_VERSION"] == "0.8.1"
    assert run["build_args"]["ANCHORE_COMMIT"] == "a395d942e5a3abb174e8e2cc593664ab9117037a"
    assert not run["arguments"].startswith("|4")
    steps = dict(zip(h["step"], h["instruction"].astype(str), strict=True))
    assert [steps[i] for i in (2, 7, 8, 9, 11, 16, 17, 18, 19)] == [
        "ARG",
        "MAINTAINER",
        "LABEL",
        "ENV",
        "EXPOSE",
        "HEALTHCHECK",
        "USER",
        "ENTRYPOINT",
        "CMD",
    ]
    dockerfile = img.dockerfile()
    assert (
        "ARG ANCHORE_ENGINE_VERSION=0.8.1" in dockerfile and "WORKDIR /anchore-engine" in dockerfile
    )
