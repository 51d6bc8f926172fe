"""Summary card, masking, human sizes and the DataFrame.lf accessor, on real example images."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest
from _examples import build_examples, make_examples_module

import layerforensics as lf
from layerforensics.accessor import frame_kind
from layerforensics.display import human_size, mask_text, summary_html

matplotlib.use("Agg")
EX = make_examples_module()


def test_examples_are_small_deterministic_and_format_valid(
    examples: dict[str, Path], tmp_path: Path
) -> None:
    again = build_examples(tmp_path)
    for name, path in examples.items():
        assert path.stat().st_size < 100 * 1024
        assert path.read_bytes() == again[name].read_bytes()
    assert re.fullmatch(r"ghp_[A-Za-z0-9]{36}", EX.GITHUB_TOKEN)
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", EX.AWS_ACCESS_KEY_ID)
    assert "FAKE" in EX.GITHUB_TOKEN.upper() and "fake" in EX.AWS_SECRET_ACCESS_KEY.lower()


def test_classic_secret_layout(classic: lf.Image) -> None:
    d = classic.deleted
    assert d["path"].tolist() == ["/app/.env"]
    assert int(d["layer"].iloc[0]) == 3 and int(d["deleted_layer"].iloc[0]) == 4
    assert EX.GITHUB_TOKEN.encode() in classic.read("/app/.env", layer=3)
    h = classic.history
    assert h["build_args"].map(lambda a: a.get("NPM_TOKEN")).dropna().tolist() == [EX.NPM_TOKEN]
    assert f"DB_PASSWORD={EX.DB_PASSWORD}" in classic.config["config"]["Env"]


def test_layers_demo_covers_every_overlay_behaviour(demo: lf.Image) -> None:
    ch = demo.changes
    causes = set(zip(ch["change"].astype(str), ch["cause"].astype(str), strict=True))
    assert {("modified", "write"), ("deleted", "whiteout"), ("deleted", "opaque")} <= causes
    types = set(demo.files["type"].astype(str))
    assert {"hardlink", "symlink", "opaque", "whiteout"} <= types
    conf = demo.files[demo.files["path"] == "/etc/app.conf"]
    assert conf["sha256"].nunique() == 1 and sorted(conf["mode"].tolist()) == [0o600, 0o644]


def test_human_size() -> None:
    assert human_size(0) == "0 B"
    assert human_size(999) == "999 B"
    assert human_size(1000) == "1.0 kB"
    assert human_size(13_400) == "13 kB"
    assert human_size(250_000_000) == "250 MB"
    assert human_size(pd.NA) == ""
    assert human_size(None) == ""


def test_mask_text_masks_values_not_references() -> None:
    line = (
        f"|1 NPM_TOKEN={EX.NPM_TOKEN} /bin/sh -c echo ${{NPM_TOKEN}} && git clone {EX.GITHUB_TOKEN}"
    )
    masked = mask_text(line)
    assert EX.NPM_TOKEN not in masked and EX.GITHUB_TOKEN not in masked
    assert "NPM_TOKEN=npm_FA********" in masked
    assert "${NPM_TOKEN}" in masked
    assert mask_text('ENV DB_PASSWORD="s3cr3t value"') == 'ENV DB_PASSWORD="s3c********"'
    assert mask_text("custom words here", ["words"]) == "custom ******** here"
    assert mask_text(None) == ""


def test_summary_card_without_secret_scan(classic: lf.Image) -> None:
    html = summary_html(classic, secrets=False)
    assert "example/classic-secret:1.0" in html
    assert "linux/amd64" in html
    assert "1 deleted file recoverable (217 B)" in html
    assert EX.NPM_TOKEN not in html  # masked in the build step shown
    assert "NPM_TOKEN=npm_FA********" in html
    assert "secret finding" not in html
    assert html.count("<tr>") == 1 + classic.layer_count


def test_summary_card_with_secrets_and_efficiency(classic: lf.Image) -> None:
    html = summary_html(classic)
    n = len(classic.secrets())
    assert n > 0 and f"{n} secret findings" in html
    score = classic.efficiency().score
    assert f"<span>efficiency</span><span>{score:.1%}" in html
    assert EX.NPM_TOKEN not in html and EX.GITHUB_TOKEN not in html


def test_summary_card_cuts_long_layer_lists(demo: lf.Image) -> None:
    html = summary_html(demo, max_layers=2)
    assert "4 lower layers not shown" in html
    assert html.count("<td class='num'>") == 2 * 2


# ---------------------------------------------------------------------------- accessor
def test_accessor_recognises_our_frames(demo: lf.Image) -> None:
    assert demo.files.lf.kind == "files"
    assert demo.layers.lf.kind == "layers"
    assert demo.history.lf.kind == "history"
    assert demo.changes.lf.kind == "changes"
    assert demo.deleted.lf.kind == "deleted"
    assert demo.filesystem().lf.kind == "filesystem"
    assert frame_kind(pd.DataFrame({"a": [1]})) is None


def test_accessor_refuses_unrelated_frames() -> None:
    df = pd.DataFrame({"path": ["/a"], "size": [1]})
    with pytest.raises(AttributeError, match="layerforensics frames only"):
        _ = df.lf
    assert not hasattr(df, "lf")


def test_accessor_human_and_modes(demo: lf.Image) -> None:
    fs = demo.filesystem()
    human = fs.lf.human()
    row = human[human["path"] == "/usr/local/bin/busybox"].iloc[0]
    assert row["mode"] == "-rwxr-xr-x"
    assert row["size"] == "640 B"
    conf = human[human["path"] == "/etc/app.conf"].iloc[0]
    assert conf["mode"] == "-rw-------"
    assert human["size"].dtype == "string"
    tmp = human[human["path"] == "/usr/local/bin/sh"].iloc[0]
    assert tmp["mode"] == "lrwxrwxrwx"
    assert fs["size"].dtype == "Int64"  # the original is untouched
    layers = demo.layers.lf.human()
    assert layers["compressed_size"].str.endswith("kB").all()


def test_accessor_tree_largest_under(demo: lf.Image) -> None:
    fs = demo.filesystem()
    tree = fs.lf.tree(max_depth=2)
    text = str(tree)
    assert text.splitlines()[0].startswith("/  (")
    assert "├── usr/" in text or "└── usr/" in text
    assert "    └── " in text or "    ├── " in text
    assert "<pre" in tree._repr_html_()
    ch = demo.changes.lf.tree()
    # a path's mark is its last change: motd was modified, then deleted
    assert "- srcpkgcache.bin" in str(ch) and "- motd" in str(ch) and "~ app.conf" in str(ch)
    assert fs.lf.largest(2)["path"].tolist() == ["/usr/local/bin/busybox", "/usr/local/bin/ls"]
    assert set(fs.lf.under("/usr/local")["path"]) == {
        "/usr/local",
        "/usr/local/bin",
        "/usr/local/bin/busybox",
        "/usr/local/bin/ls",
        "/usr/local/bin/sh",
    }


def test_accessor_plots_return_axes(demo: lf.Image) -> None:
    import matplotlib.pyplot as plt

    ax = demo.layers.lf.plot()
    assert len(ax.patches) == demo.layer_count
    ax2 = demo.files.lf.plot(n=5)
    assert len(ax2.patches) == 5
    assert next(t.get_text() for t in ax2.get_yticklabels()) == str(
        demo.files.sort_values("size", ascending=False)["path"].iloc[0]
    )
    with pytest.raises(TypeError):
        demo.history.lf.plot()
    plt.close("all")


def test_card_explorer_and_sql_decompress_each_layer_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With secrets wanted, the scan is the indexing pass: no layer is decompressed again."""
    import layerforensics.image as image_module
    from layerforensics.builder import File, ImageBuilder
    from layerforensics.explore import explore

    b = ImageBuilder()
    b.layer([File("/app/.env", b"GITHUB_TOKEN=ghp_" + b"x7Rk2Qm9Lp4Tz8Vn3Wb6Yc1Hd5Jf0Gs2Ae4K\n")])
    b.layer([File("/app/run.sh", b"#!/bin/sh\n")])
    b.save_oci(tmp_path / "img.tar", compression="gzip")
    rereads: list[str] = []
    original = image_module.open_decompressed

    def counting(raw: Any, label: str) -> Any:
        rereads.append(label)
        return original(raw, label)

    monkeypatch.setattr(image_module, "open_decompressed", counting)
    for use in (
        lambda img: img._repr_html_(),
        lambda img: explore(img),
        lambda img: img.sql("select count(*) from secrets"),
    ):
        img = lf.open_image(tmp_path / "img.tar")
        use(img)
        assert img.secrets_scanned
        assert rereads == []
