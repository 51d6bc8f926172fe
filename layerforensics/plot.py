"""Charts of wasted space (matplotlib).

Every function takes an opened :class:`~layerforensics.image.Image`, draws on ``ax`` (a new
figure when ``None``) and returns the Axes; none calls ``plt.show()``. The numbers come from
:mod:`layerforensics.waste`; this module only lays them out.

* :func:`layer_waste_bars` -- per layer, stacked: bytes kept / overwritten later / deleted later;
* :func:`cumulative_size` -- image size after each layer, stored vs. what a squash would keep;
* :func:`top_waste` -- the N paths whose repeated or deleted copies cost the most;
* :func:`filesystem_icicle` -- the final filesystem by directory, as an icicle chart.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator

from . import waste as _waste
from ._output import human_size

if TYPE_CHECKING:
    from .image import Image

__all__ = [
    "cumulative_size",
    "filesystem_icicle",
    "human_bytes",
    "layer_waste_bars",
    "shorten_path",
    "shorten_step",
    "top_waste",
]

#: Colours: kept, overwritten later, deleted later (colour-blind safe, Okabe-Ito).
KEPT, OVERWRITTEN, DELETED = "#8c8c8c", "#e69f00", "#d55e00"
CAUSE_COLORS = {
    "overwritten": OVERWRITTEN,
    "copy-up": "#56b4e9",
    "deleted": DELETED,
    "moved-away": "#cc79a7",
}


human_bytes = human_size  # the public name charts have always used


def _axis_bytes(n: float, _pos: object = None) -> str:
    """Axis tick label: three significant digits so close ticks stay distinct (``1.16 MB``)."""
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


_BYTES = FuncFormatter(_axis_bytes)


def shorten_path(path: str, width: int = 40) -> str:
    """Keep the end of a long path (the file name matters most): ``/usr/…/site-packages/x.py``."""
    if len(path) <= width:
        return path
    parts = path.split("/")
    tail = parts[-1]
    if len(tail) + 2 >= width:
        return "…" + tail[-(width - 1) :]
    head = "/" + parts[1] if len(parts) > 2 else ""
    out = tail
    for comp in reversed(parts[2:-1]):
        if len(head) + len(comp) + len(out) + 4 > width:
            break
        out = comp + "/" + out
    return f"{head}/…/{out}" if head and not out.startswith(parts[1] + "/") else "…/" + out


_PREFIXES = re.compile(r"^(/bin/sh -c\s+)?(#\(nop\)\s*)?")


def shorten_step(created_by: str | None, width: int = 38) -> str:
    """A build step as a short label: shell prefix dropped, ``file:<hash>`` cut, truncated."""
    if created_by is None or created_by != created_by:  # None or NA/NaN
        return "(no history)"
    s = _PREFIXES.sub("", str(created_by)).strip()
    s = re.sub(r"\|\d+ ", "", s)  # buildkit's "|1 ARG=x" prefix
    s = re.sub(r"(file|dir):([0-9a-f]{8})[0-9a-f]{56}", r"\1:\2…", s)
    s = re.sub(r"\s+", " ", s).replace(" # buildkit", "")
    return s if len(s) <= width else s[: width - 1] + "…"


def _ax(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _layer_labels(lw: object, width: int) -> list[str]:
    return [
        f"{int(r.layer)}: {shorten_step(r.created_by, width)}"
        for r in lw.itertuples()  # type: ignore[attr-defined]
    ]


def layer_waste_bars(
    image: Image, ax: Axes | None = None, *, base: bool = True, label_width: int = 38
) -> Axes:
    """Horizontal stacked bars, one per layer (bottom layer at the top, like a Dockerfile).

    Each bar is the regular-file bytes the layer stores, split into what the final image still
    shows (grey), what a later layer overwrites (orange) and what a later layer deletes (red).
    Orange and red together are the layer's reclaimable bytes.

    Parameters
    ----------
    image
        An opened image.
    ax
        Axes to draw on; a new figure when ``None``.
    base
        Include layer 0. Pass ``False`` when a large base layer dwarfs the rest.
    label_width
        Maximum characters of a build-step label.
    """
    lw = _waste.layer_waste(image)
    if not base:
        lw = lw.loc[lw["layer"] > 0]
    ax = _ax(ax, (9, 1.2 + 0.38 * max(len(lw), 1)))
    y = list(range(len(lw)))
    kept = lw["kept_bytes"].astype("int64").to_numpy()
    over = lw["overwritten_later_bytes"].astype("int64").to_numpy()
    gone = lw["deleted_later_bytes"].astype("int64").to_numpy()
    ax.barh(y, kept, color=KEPT, label="kept in final image")
    ax.barh(y, over, left=kept, color=OVERWRITTEN, label="overwritten later")
    ax.barh(y, gone, left=kept + over, color=DELETED, label="deleted later")
    ax.set_yticks(y, _layer_labels(lw, label_width), fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(_BYTES)
    ax.set_xlabel("regular-file bytes stored by the layer")
    ax.set_ylabel("layer: build step")
    total = kept + over + gone
    for yi, t, w in zip(y, total, over + gone, strict=True):
        if w:
            ax.annotate(
                f"{human_bytes(w)} wasted",
                (t, yi),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
                color=DELETED,
            )
    ax.set_xlim(0, max(int(total.max(initial=0)), 1) * 1.22)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    ax.set_title(
        "What each layer stores, and what of it the final image needs", fontsize=10, pad=22
    )
    return ax


def cumulative_size(image: Image, ax: Axes | None = None, *, label_width: int = 30) -> Axes:
    """Image size after each layer: bytes stored so far vs. bytes a squash would keep.

    The upper step line is what the layers store (what a pull transfers, uncompressed), the
    lower one what the merged filesystem holds at that point; the shaded gap is the space
    wasted so far. The x axis is labelled with the build steps.
    """
    lw = _waste.layer_waste(image)
    ax = _ax(ax, (max(6.0, 0.55 * len(lw) + 2), 4.5))
    x = lw["layer"].to_numpy()
    stored = lw["cumulative_bytes"].astype("int64").to_numpy()
    visible = lw["visible_bytes"].astype("int64").to_numpy()
    ax.step(x, stored, where="mid", color="#0072b2", marker="o", ms=3, label="stored in layers")
    ax.step(x, visible, where="mid", color=KEPT, marker="o", ms=3, label="visible (squashed)")
    ax.fill_between(x, visible, stored, step="mid", color=DELETED, alpha=0.25, label="wasted")
    ax.set_xticks(x, _layer_labels(lw, label_width), rotation=40, ha="right", fontsize=7)
    ax.yaxis.set_major_formatter(_BYTES)
    ax.set_xlabel("layer: build step")
    ax.set_ylabel("image size after layer")
    lo = min(visible.min(), stored.min()) if len(x) else 0
    hi = max(stored.max() if len(x) else 0, 1)
    span = hi - lo
    ax.set_ylim(max(0, lo - 0.1 * span) if span else 0, hi + 0.12 * (span or hi))
    if len(x):
        ax.annotate(
            f"{human_bytes(stored[-1])} stored\n{human_bytes(stored[-1] - visible[-1])} wasted",
            (x[-1], stored[-1]),
            xytext=(-6, 6),
            textcoords="offset points",
            ha="right",
            fontsize=8,
        )
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_title("Image size, layer by layer", fontsize=10)
    return ax


def top_waste(image: Image, n: int = 15, ax: Axes | None = None, *, width: int = 45) -> Axes:
    """The ``n`` paths with the most reclaimable bytes, coloured by cause.

    The bar length is what squashing would save on that path (every stored copy except the one
    the final filesystem shows); the label shows how many copies and which layers.
    """
    w = _waste.waste(image)
    w = w.loc[w["reclaimable"].fillna(0) > 0].head(n)
    ax = _ax(ax, (9, 1.2 + 0.35 * max(len(w), 1)))
    y = list(range(len(w)))
    colors = [CAUSE_COLORS[str(c)] for c in w["cause"]]
    vals = w["reclaimable"].astype("int64").to_numpy()
    ax.barh(y, vals, color=colors)
    ax.set_yticks(y, [shorten_path(str(p), width) for p in w["path"]], fontsize=8)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(_BYTES)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    for yi, v, r in zip(y, vals, w.itertuples(), strict=True):
        lay = ",".join(str(x) for x in r.layers)
        ax.annotate(
            f"{human_bytes(v)}  ×{int(r.count)} (layers {lay})",
            (v, yi),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    ax.set_xlim(0, max(int(vals.max(initial=0)), 1) * 1.45)
    present = [c for c in _waste.CAUSES if c in set(map(str, w["cause"]))]
    ax.legend(
        handles=[Patch(color=CAUSE_COLORS[c], label=c) for c in present],
        loc="lower right",
        fontsize=8,
        frameon=False,
    )
    ax.set_xlabel("reclaimable bytes (what squashing saves)")
    ax.set_ylabel("path")
    ax.set_title(f"Top {len(w)} wasted paths", fontsize=10)
    if not len(w):
        ax.text(0.5, 0.5, "no wasted space", ha="center", va="center", transform=ax.transAxes)
    return ax


def filesystem_icicle(
    image: Image, ax: Axes | None = None, *, max_depth: int = 3, min_label: float = 0.04
) -> Axes:
    """The final filesystem as an icicle: one row per directory level, width ∝ bytes.

    Row 0 is ``/``; each rectangle below a directory is one of its subdirectories (or
    ``(files)``, the files directly inside it), so a row adds up to the row above.
    Rectangles narrower than ``min_label`` of the total are left unlabelled.
    """
    ds = _waste.directory_sizes(image, max_depth=max_depth)
    ax = _ax(ax, (10, 1.0 + 0.9 * (ds["depth"].max() + 1 if len(ds) else 1)))
    total = int(ds.loc[ds["depth"] == 0, "size"].iloc[0]) if len(ds) else 0
    cmap = plt.get_cmap("tab20")
    start: dict[str, float] = {"/": 0.0}
    color_of: dict[str, object] = {"/": "#cccccc"}
    next_color = 0
    for r in ds.itertuples():
        path, depth, size = str(r.path), int(r.depth), int(r.size)
        if depth == 0:
            x0 = 0.0
        else:
            parent = str(r.parent)
            if parent not in start:
                continue
            x0 = start[parent]
            start[parent] = x0 + size
        start[path] = x0
        if depth == 1:
            color = "#dddddd" if path.endswith("(files)") else cmap(next_color % 20)
            next_color += 1
        else:
            color = color_of.get(str(r.parent), "#cccccc")
        color_of[path] = color
        ax.add_patch(
            Rectangle((x0, depth), size, 0.95, facecolor=color, edgecolor="white", linewidth=0.8)
        )
        if total and size / total >= min_label:
            name = str(r.name)
            ax.text(
                x0 + size / 2,
                depth + 0.47,
                f"{name}\n{human_bytes(size)}",
                ha="center",
                va="center",
                fontsize=7,
                clip_on=True,
            )
    depth_max = int(ds["depth"].max()) if len(ds) else 0
    ax.set_xlim(0, max(total, 1))
    ax.set_ylim(depth_max + 1, 0)
    ax.set_yticks(
        [d + 0.47 for d in range(depth_max + 1)], [f"depth {d}" for d in range(depth_max + 1)]
    )
    ax.xaxis.set_major_formatter(_BYTES)
    ax.set_xlabel("bytes of regular files in the final filesystem")
    ax.set_ylabel("directory level")
    ax.set_title("Final filesystem by directory", fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax
