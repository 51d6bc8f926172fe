"""Wasted space: dive's numbers to the last digit, and the corrected default mode.

Expected values for dive come from dive's own tests and goldens (see shared/docs/dive.md §3);
those for the default mode and the hand-made images are computed by hand in the comments.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import require_shared_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layerforensics as lf
from layerforensics.builder import Dir, File, ImageBuilder, Opaque, Whiteout
from layerforensics.waste import efficiency, layer_waste, waste


def _dive_image(name: str) -> Path:
    path = require_shared_data() / "dive" / name
    if not path.is_file():
        pytest.fail(f"{path} is missing from the shared fixtures")
    return path


@pytest.fixture(scope="module")
def dive_test_image() -> lf.Image:
    return lf.open_image(_dive_image("test-docker-image.tar"))


# ------------------------------------------------------------------------------ dive mode


def test_dive_mode_matches_dive_test_image(dive_test_image: lf.Image) -> None:
    e = efficiency(dive_test_image, mode="dive")
    # dive/image/docker/image_archive_analysis_test.go
    assert e.score == 0.9844212134184309
    assert e.wasted_bytes == 32025
    assert e.user_wasted_percent == 0.4834911001404049
    assert e.size_bytes == 1220598
    assert e.user_size_bytes == 66237
    assert e.file_count == 451  # "Analyzing image [layers:14 files:451 ...]"
    assert e.mode == "dive"
    # export_test.snap fileReference, in this order
    assert e.inefficient.to_dict("records") == [
        {"path": "/root/saved.txt", "count": 2, "wasted_bytes": 12810},
        {"path": "/root/example/somefile1.txt", "count": 2, "wasted_bytes": 12810},
        {"path": "/root/example/somefile3.txt", "count": 2, "wasted_bytes": 6405},
    ]


def test_dive_mode_matches_kaniko_replica() -> None:
    img = lf.open_image(_dive_image("test-kaniko-image.tar"))
    e = efficiency(img, mode="dive")
    assert e.score == 0.9793688490216431
    assert e.wasted_bytes == 46245
    assert e.size_bytes == 1326410
    assert e.user_size_bytes == 94677
    assert e.user_wasted_percent == 0.4884502043790995
    assert e.file_count == 457
    assert list(e.inefficient["path"]) == [
        "/root/saved.txt",
        "/root/example/somefile1.txt",
        "/root/example/somefile3.txt",
    ]
    assert list(e.inefficient["wasted_bytes"]) == [18498, 18498, 9249]


def test_dive_mode_single_layer_oci_gives_nan_user_percent() -> None:
    img = lf.open_image(_dive_image("test-oci-uncompressed-image.tar"))
    e = efficiency(img, mode="dive")
    assert (e.score, e.wasted_bytes, e.size_bytes, e.user_size_bytes) == (1.0, 0, 11189, 0)
    assert math.isnan(e.user_wasted_percent)
    assert e.to_dict()["user_wasted_percent"] is None
    # the corrected mode never says nan
    assert efficiency(img).user_wasted_percent == 0.0


def test_dive_unit_test_image_from_efficiency_test_go(tmp_path: Path) -> None:
    # dive/filetree/efficiency_test.go: /etc/nginx is an implicit directory (no tar entry), so
    # dive's whiteout of it counts 0 bytes: 15000 / 20000 = 0.75, one inefficiency of 7000.
    b = ImageBuilder()
    b.layer([File("/etc/nginx/nginx.conf", b"a" * 2000), File("/etc/nginx/public", b"b" * 3000)])
    b.layer([File("/etc/nginx/nginx.conf", b"c" * 5000), File("/etc/athing", b"d" * 10000)])
    b.layer([Whiteout("/etc/nginx")])
    b.save_docker(tmp_path / "nginx.tar")
    img = lf.open_image(tmp_path / "nginx.tar")
    e = efficiency(img, mode="dive")
    assert e.score == 0.75
    assert e.inefficient.to_dict("records") == [
        {"path": "/etc/nginx/nginx.conf", "count": 2, "wasted_bytes": 7000}
    ]
    # corrected: stored 20000, final /etc/athing 10000 only
    d = efficiency(img)
    assert (d.size_bytes, d.final_bytes, d.reclaimable_bytes, d.score) == (20000, 10000, 10000, 0.5)


# ------------------------------------------------------------------------------ hand-made image

A = b"A" * 1000


def _forensic_image(path: Path) -> lf.Image:
    """Every kind of waste, with sizes chosen so the sums can be checked by hand.

    L0  /a 1000, /keep 50, dir /d with /d/x 300 and /d/y 200, /o/old 70        stores 1620
    L1  /a again, same bytes, chmod 755 (copy-up); /b 400                      stores 1400
    L2  rm -rf /d; whiteout of a path that never existed; /c 10; /o made
        opaque with /o/new 5                                                   stores   15
    L3  /b rewritten (450 other bytes); mv /c /moved                           stores  460
    """
    b = ImageBuilder()
    b.layer(
        [
            File("/a", A),
            File("/keep", b"k" * 50),
            Dir("/d"),
            File("/d/x", b"x" * 300),
            File("/d/y", b"y" * 200),
            File("/o/old", b"o" * 70),
        ],
        created_by="ADD rootfs.tar /",
    )
    b.layer([File("/a", A, mode=0o755), File("/b", b"1" * 400)], created_by="RUN chmod +x /a")
    b.layer(
        [
            Whiteout("/d"),
            Whiteout("/missing"),
            File("/c", b"c" * 10),
            Dir("/o"),
            Opaque("/o"),
            File("/o/new", b"n" * 5),
        ],
        created_by="RUN rm -rf /d /missing",
    )
    b.layer(
        [File("/b", b"2" * 450), Whiteout("/c"), File("/moved", b"c" * 10)],
        created_by="RUN mv /c /moved",
    )
    b.save_docker(path / "forensic.tar")
    return lf.open_image(path / "forensic.tar")


@pytest.fixture(scope="module")
def forensic(tmp_path_factory: pytest.TempPathFactory) -> lf.Image:
    return _forensic_image(tmp_path_factory.mktemp("waste"))


def test_default_mode_counts_what_squashing_saves(forensic: lf.Image) -> None:
    e = efficiency(forensic)
    # stored 1620 + 1400 + 15 + 460 = 3495; final /a 1000 + /keep 50 + /b 450 + /o/new 5
    # + /moved 10 = 1515; reclaimable 1980; user size 3495 - 1620 = 1875
    assert e.mode == "layerforensics"
    assert e.size_bytes == 3495
    assert e.final_bytes == 1515
    assert e.reclaimable_bytes == e.wasted_bytes == 1980
    assert e.user_size_bytes == 1875
    assert e.score == 1515 / 3495
    assert e.user_wasted_percent == 1980 / 1875


def test_dive_mode_on_hand_made_image_shows_the_documented_quirks(forensic: lf.Image) -> None:
    e = efficiency(forensic, mode="dive")
    # L2 leaves in name order: .wh.d (dir: 300 + 200 = 500 under /d), .wh.missing (target
    # missing: aborts L2, so /c and /o/new are never seen, /missing leaves -1), ...
    # L3: .wh.c 0 bytes, /b 450, /moved 10.  Opaque ignored: /o/old stays.
    # cum: /a 2000 /keep 50 /d/x 300 /d/y 200 /o/old 70 /b 850 /d 500 /c 0 /moved 10 = 3980
    # min: 1000 + 50 + 300 + 200 + 70 + 400 + 500 + 0 + 10 - 1 (/missing) = 2529
    assert e.score == 2529 / 3980
    assert e.inefficient.to_dict("records") == [
        {"path": "/a", "count": 2, "wasted_bytes": 2000},
        {"path": "/b", "count": 2, "wasted_bytes": 850},
    ]
    assert e.wasted_bytes == 2850
    assert e.size_bytes == 3495
    assert e.user_wasted_percent == 2850 / 1875
    # nodes: L0 a keep d d/x d/y o o/old; L1 a b; L2 .wh.d .wh.missing c o o/new; L3 .wh.c b moved
    assert e.file_count == 17
    # the reclaimable figure is mode-independent
    assert e.reclaimable_bytes == 1980


def test_waste_table(forensic: lf.Image) -> None:
    w = waste(forensic).set_index("path")
    assert set(w.index) == {"/a", "/b", "/c", "/d/x", "/d/y", "/o/old"}
    assert w["reclaimable"].sum() == 1980
    expect = {
        # path: count, layers, total, kept, reclaimable, dive, first, last, deleted_layer, cause
        "/a": (2, [0, 1], 2000, 1000, 1000, 2000, 0, 1, None, "copy-up"),
        "/b": (2, [1, 3], 850, 450, 400, 850, 1, 3, None, "overwritten"),
        "/c": (1, [2], 10, 0, 10, 0, 2, 3, 3, "moved-away"),
        "/d/x": (1, [0], 300, 0, 300, 0, 0, 2, 2, "deleted"),
        "/d/y": (1, [0], 200, 0, 200, 0, 0, 2, 2, "deleted"),
        "/o/old": (1, [0], 70, 0, 70, 0, 0, 2, 2, "deleted"),
    }
    for path, exp in expect.items():
        r = w.loc[path]
        got = (
            int(r["count"]),
            list(r["layers"]),
            int(r["total_size"]),
            int(r["kept_size"]),
            int(r["reclaimable"]),
            int(r["wasted_dive"]),
            int(r["first_layer"]),
            int(r["last_layer"]),
            None if pd.isna(r["deleted_layer"]) else int(r["deleted_layer"]),
            str(r["cause"]),
        )
        assert got == exp, path
    assert list(waste(forensic)["path"][:2]) == ["/a", "/b"]  # largest reclaimable first
    assert waste(forensic)["cause"].dtype == "category"


def test_layer_waste(forensic: lf.Image) -> None:
    lw = layer_waste(forensic).set_index("layer")
    cols = [
        "stored_bytes",
        "added_bytes",
        "modified_bytes",
        "deleted_bytes",
        "kept_bytes",
        "overwritten_later_bytes",
        "deleted_later_bytes",
        "reclaimable_bytes",
        "cumulative_bytes",
        "visible_bytes",
    ]
    got = {int(i): [int(v) for v in row] for i, row in lw[cols].iterrows()}
    assert got == {
        0: [1620, 1620, 0, 0, 50, 1000, 570, 1570, 1620, 1620],
        1: [1400, 400, 1000, 0, 1000, 400, 0, 400, 3020, 2020],
        2: [15, 15, 0, 570, 5, 0, 10, 10, 3035, 1465],
        3: [460, 10, 450, 10, 460, 0, 0, 0, 3495, 1515],
    }
    assert lw["reclaimable_bytes"].sum() == efficiency(forensic).reclaimable_bytes
    # visible size after each layer equals the merged filesystem at that layer
    for layer in range(4):
        fs = forensic.filesystem(layer)
        assert int(fs.loc[fs["type"] == "file", "size"].sum()) == lw.at[layer, "visible_bytes"]
    assert str(lw.at[3, "created_by"]) == "RUN mv /c /moved"


def test_default_mode_on_dive_test_image(dive_test_image: lf.Image) -> None:
    # dive.md §2.5: 1220598 stored - 1188573 final = 32025, for other reasons than dive's 32025
    e = efficiency(dive_test_image)
    assert (e.size_bytes, e.final_bytes, e.reclaimable_bytes) == (1220598, 1188573, 32025)
    w = waste(dive_test_image).set_index("path")
    assert dict(w["cause"].astype(str)) == {
        "/root/example/somefile1.txt": "deleted",  # copied, chmod-ed, then rm -rf'd
        "/root/example/somefile2.txt": "deleted",  # dive never counts this one
        "/root/example/somefile3.txt": "moved-away",
        "/root/saved.txt": "copy-up",  # chmod +x
    }
    assert dict(w["wasted_dive"]) == {
        "/root/example/somefile1.txt": 12810,
        "/root/example/somefile2.txt": 0,
        "/root/example/somefile3.txt": 6405,
        "/root/saved.txt": 12810,
    }


def test_result_object(forensic: lf.Image) -> None:
    e = efficiency(forensic)
    with pytest.raises(AttributeError):
        e.score = 1.0  # type: ignore[misc]
    d = e.to_dict()
    assert d["reclaimable_bytes"] == 1980 and d["mode"] == "layerforensics"
    assert d["inefficient"][0] == {"path": "/a", "count": 2, "wasted_bytes": 1000}
    html = e._repr_html_()
    assert "1.5 kB" in html or "2.0 kB" in html
    assert "<code>/a</code>" in html
    with pytest.raises(ValueError):
        efficiency(forensic, mode="docker")  # type: ignore[arg-type]


def test_empty_and_clean_images(tmp_path: Path) -> None:
    b = ImageBuilder()
    b.layer([File("/empty", b"")])
    b.save_docker(tmp_path / "one.tar")
    img = lf.open_image(tmp_path / "one.tar")
    for mode in ("dive", "layerforensics"):
        e = efficiency(img, mode=mode)  # type: ignore[arg-type]
        assert e.score == 1.0 and e.wasted_bytes == 0 and len(e.inefficient) == 0
    assert len(waste(img)) == 0


def test_analyses_are_computed_once_and_returned_as_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from layerforensics import waste as waste_mod

    calls: list[int] = []
    real = waste_mod.dive_analysis

    def counting(files: pd.DataFrame, n_layers: int) -> object:
        calls.append(n_layers)
        return real(files, n_layers)

    monkeypatch.setattr(waste_mod, "dive_analysis", counting)
    img = _forensic_image(tmp_path)
    first = efficiency(img, mode="dive")
    w = waste(img)  # needs dive's list for wasted_dive: reuses the analysis
    assert efficiency(img, mode="dive") == first
    assert calls == [4]
    assert w.loc[w["path"] == "/a", "wasted_dive"].tolist() == [2000]
    # callers may modify what they get without changing the next answer
    w.loc[:, "reclaimable"] = 0
    first.inefficient.loc[:, "wasted_bytes"] = 0
    assert int(waste(img)["reclaimable"].sum()) == 1980
    assert int(efficiency(img, mode="dive").inefficient["wasted_bytes"].iloc[0]) == 2000
    e = efficiency(img)
    e.inefficient.loc[:, "wasted_bytes"] = 0
    assert efficiency(img).inefficient["wasted_bytes"].tolist()[0] == 1000
    # a fresh image of the same file computes again
    efficiency(lf.open_image(tmp_path / "forensic.tar"), mode="dive")
    assert calls == [4, 4]


@pytest.mark.parametrize("name", ["test-docker-image.tar", "test-kaniko-image.tar"])
def test_default_totals_agree_with_the_merged_filesystem(name: str, forensic: lf.Image) -> None:
    # final_bytes and file_count come from files["status"], not from filesystem(); they must
    # say the same (kaniko repeats "/" in every layer, which the merged view does not list)
    for img in (lf.open_image(_dive_image(name)), forensic):
        fs = img.filesystem()
        e = efficiency(img)
        assert e.final_bytes == int(fs.loc[fs["type"] == "file", "size"].sum())
        assert e.file_count == len(fs)


# --- property: the default mode against an independent count of the layer tars --------------

_DIRS = ("/d", "/d/e")
_FILES = ("/f", "/d/g", "/d/e/h", "/d/e/i")


@st.composite
def _layer_specs(draw: st.DrawFn) -> list[list]:
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        entries: list = []
        for _ in range(draw(st.integers(0, 6))):
            kind = draw(st.sampled_from(["file", "file", "dir", "whiteout", "opaque"]))
            if kind == "file":
                size = draw(st.integers(0, 50))
                entries.append(File(draw(st.sampled_from(_FILES)), b"z" * size))
            elif kind == "dir":
                entries.append(Dir(draw(st.sampled_from(_DIRS))))
            elif kind == "whiteout":
                entries.append(Whiteout(draw(st.sampled_from(_DIRS + _FILES))))
            else:
                d = draw(st.sampled_from(_DIRS))
                entries += [Dir(d), Opaque(d)]
        layers.append(entries)
    return layers


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=_layer_specs())
def test_default_mode_equals_hand_count_of_the_tars(tmp_path: Path, spec: list[list]) -> None:
    from test_waste_engine import count

    b = ImageBuilder()
    for n, entries in enumerate(spec):
        b.layer(entries, created_by=f"RUN step {n}")
    path = tmp_path / "prop.tar"
    b.save_docker(path)
    c = count(path, "docker-save")
    img = lf.open_image(path)
    e = efficiency(img)
    assert (e.size_bytes, e.final_bytes) == (sum(c.stored), c.final_bytes)
    assert e.reclaimable_bytes == sum(c.stored) - c.final_bytes
    assert int(e.inefficient["wasted_bytes"].sum()) == e.reclaimable_bytes
    lw = layer_waste(img)
    assert [int(x) for x in lw["stored_bytes"]] == c.stored
    assert [int(x) for x in lw["kept_bytes"]] == c.kept
    assert [int(x) for x in lw["deleted_bytes"]] == c.deleted_here
    assert [int(x) for x in lw["deleted_later_bytes"]] == c.deleted_later
    assert [int(x) for x in lw["overwritten_later_bytes"]] == c.overwritten_later
    w = waste(img)
    assert int(w["reclaimable"].sum()) == e.reclaimable_bytes
