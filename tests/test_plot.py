"""The wasted-space charts: assertions on the artists (bar lengths, labels), not just no error."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.image import imread
from matplotlib.patches import Rectangle
from test_waste import _forensic_image

import layerforensics as lf
from layerforensics import plot


@pytest.fixture(scope="module")
def img(tmp_path_factory: pytest.TempPathFactory) -> lf.Image:
    return _forensic_image(tmp_path_factory.mktemp("plot"))


@pytest.fixture(autouse=True)
def _close() -> None:
    yield
    plt.close("all")


def _bars(ax: plt.Axes) -> list[Rectangle]:
    return [p for c in ax.containers for p in c.patches]


def test_layer_waste_bars(img: lf.Image) -> None:
    ax = plot.layer_waste_bars(img)
    kept, over, gone = (list(c.datavalues) for c in ax.containers)
    assert kept == [50, 1000, 5, 460]
    assert over == [1000, 400, 0, 0]
    assert gone == [570, 0, 10, 0]
    # stacked: the "deleted later" bar of layer 0 starts where kept + overwritten end
    assert ax.containers[2].patches[0].get_x() == 1050
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["0: ADD rootfs.tar /", "1: RUN chmod +x /a", "2: RUN rm -rf /d /missing",
                      "3: RUN mv /c /moved"]  # fmt: skip
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "kept in final image",
        "overwritten later",
        "deleted later",
    ]
    assert ax.xaxis.get_major_formatter()(1500, 0) == "1.5 kB"
    ax2 = plot.layer_waste_bars(img, base=False)
    assert list(ax2.containers[0].datavalues) == [1000, 5, 460]


def test_cumulative_size(img: lf.Image) -> None:
    ax = plot.cumulative_size(img)
    stored, visible = ax.get_lines()[:2]
    assert list(stored.get_ydata()) == [1620, 3020, 3035, 3495]
    assert list(visible.get_ydata()) == [1620, 2020, 1465, 1515]
    assert [t.get_text() for t in ax.get_xticklabels()][3] == "3: RUN mv /c /moved"
    assert any("1.98 kB wasted" in t.get_text() or "2.0 kB wasted" in t.get_text()
               for t in ax.texts)  # fmt: skip


def test_top_waste(img: lf.Image) -> None:
    ax = plot.top_waste(img, n=3)
    assert [p.get_width() for p in _bars(ax)] == [1000, 400, 300]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["/a", "/b", "/d/x"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "overwritten",
        "copy-up",
        "deleted",
    ]
    assert _bars(ax)[0].get_facecolor()[:3] == matplotlib.colors.to_rgb(
        plot.CAUSE_COLORS["copy-up"]
    )


def test_filesystem_icicle(img: lf.Image) -> None:
    ax = plot.filesystem_icicle(img)
    rects = {(round(p.get_y()), p.get_x(), p.get_width()) for p in ax.patches}
    # final: /a 1000 /keep 50 /moved 10 at the root, /b 450, /o/new 5 -> 1515
    assert (0, 0, 1515) in rects
    assert (1, 0, 1510) in rects  # "(files)" of / : a + keep + moved + b
    assert (1, 1510, 5) in rects  # /o
    labels = [t.get_text() for t in ax.texts]
    assert "/\n1.5 kB" in labels and "(files)\n1.5 kB" in labels


def test_shorteners() -> None:
    long = "/usr/lib/python3.11/site-packages/numpy/core/_multiarray_umath.cpython-311.so"
    s = plot.shorten_path(long, 40)
    assert len(s) <= 40 and s.endswith("_multiarray_umath.cpython-311.so")
    assert plot.shorten_path("/etc/passwd") == "/etc/passwd"
    step = "/bin/sh -c #(nop) ADD file:" + "ab" * 32 + " in / "
    assert plot.shorten_step(step) == "ADD file:abababab… in /"
    assert plot.shorten_step(None) == "(no history)"
    assert len(plot.shorten_step("RUN " + "x" * 200, 30)) == 30


def test_saves_png(img: lf.Image, tmp_path: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for fn, ax in zip(
        (plot.layer_waste_bars, plot.cumulative_size, plot.top_waste, plot.filesystem_icicle),
        axes.flat,
        strict=True,
    ):
        assert fn(img, ax=ax) is ax
    fig.savefig(tmp_path / "all.png")
    assert (tmp_path / "all.png").stat().st_size > 10_000


# title, x label, y label of each chart (what a reader of the PNG sees)
CHARTS = {
    "layer_waste_bars": (
        "What each layer stores, and what of it the final image needs",
        "regular-file bytes stored by the layer",
        "layer: build step",
    ),
    "cumulative_size": (
        "Image size, layer by layer",
        "layer: build step",
        "image size after layer",
    ),
    "top_waste": (
        "Top 6 wasted paths",  # /a, /b, /d/x, /d/y, /o/old, /c
        "reclaimable bytes (what squashing saves)",
        "path",
    ),
    "filesystem_icicle": (
        "Final filesystem by directory",
        "bytes of regular files in the final filesystem",
        "directory level",
    ),
}


@pytest.mark.parametrize("chart", sorted(CHARTS))
def test_chart_renders_to_png(img: lf.Image, tmp_path: Path, chart: str) -> None:
    ax = getattr(plot, chart)(img)
    out = tmp_path / f"{chart}.png"
    ax.figure.savefig(out, dpi=80)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5_000  # a drawn chart, not an empty canvas
    title, xlabel, ylabel = CHARTS[chart]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (title, xlabel, ylabel)
    # the rendered image is not blank: many distinct colours (bars, text, legend)
    pixels = imread(out)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 300
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20
