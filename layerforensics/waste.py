"""Wasted space: dive's efficiency score reproduced exactly, and a corrected one.

Three questions about the bytes an image stores:

* :func:`efficiency` -- one number (and a few totals) for the whole image, either exactly as
  `dive <https://github.com/wagoodman/dive>`_ computes it (``mode="dive"``, quirks included) or
  as "what would squashing the image save" (``mode="layerforensics"``, the default);
* :func:`waste` -- which paths are stored more than once or deleted, and why;
* :func:`layer_waste` -- which layers store bytes the final image does not need.

:func:`directory_sizes` aggregates the final filesystem by directory (for the icicle chart in
:mod:`layerforensics.plot`).

Everything here works from the frames the core already built (``image.files``,
``image.changes``, ``image.filesystem()``, ``image.layers``); no layer is read again.

Differences between the two modes
---------------------------------
``mode="dive"`` copies dive v0.13.1 (``dive/filetree/efficiency.go``) to the last digit:

1. only the *leaves* of each layer's tree are counted (a directory with children in a layer is
   not a sighting; an empty directory, a symlink, a hardlink or a whiteout is one, with 0 bytes);
2. a path seen in two or more layers is "inefficient" and its *whole* cumulative size, including
   the copy the image must keep, counts as wasted (upstream issue #684);
3. the score is ``sum(smallest size of each path) / sum(all sightings)`` -- a different quantity
   from the wasted bytes;
4. a whiteout of a file counts 0 bytes; a whiteout of a directory counts the squashed size of the
   directory under the directory's *own* path, which normally has no other sighting, so deleting
   a whole directory adds no waste at all (``rm -rf /root/example`` in dive's test image);
5. opaque-directory markers (``.wh..wh..opq``) are ignored: lower files under an opaque directory
   stay in dive's squashed tree;
6. a whiteout whose target is not in the squashed lower tree (always the case in layer 0) aborts
   the rest of that layer's walk, in byte-wise name order, and leaves ``-1`` in the numerator
   when the path is never seen again;
7. sizes are tar header sizes (hardlinks 0), the base is exactly layer 0, and the user wasted
   percent is ``wasted / user size`` with Go's float semantics: ``nan`` for 0/0, ``inf`` for x/0;
8. ties in the inefficient-file list keep dive's order (reverse discovery order of the second
   sighting). dive sorts with Go's ``sort.Sort``, which is stable only up to 12 entries; for
   longer lists with equal sizes the order of the tied rows may differ from dive's.

``mode="layerforensics"`` answers "how many bytes would squashing the image save":

* ``size_bytes`` is the regular-file bytes stored in all layers (``image.layers["size"]``
  summed), ``final_bytes`` those of the final filesystem, ``reclaimable_bytes`` the difference
  and ``score = final_bytes / size_bytes`` (1.0 for an image without file bytes);
* ``wasted_bytes`` equals ``reclaimable_bytes``: the copy that is kept is not waste, and every
  deleted file counts, whether it was deleted on its own or with its directory;
* opaque directories hide what is below them; a whiteout with a missing target hides nothing
  and aborts nothing;
* hardlinks and symlinks store no file bytes; metadata-only rewrites (``chmod``) count the full
  copy they store (the layer really holds the bytes again);
* ``user_wasted_percent`` is ``reclaimable / user size`` (user size = bytes stored above layer
  0) and never ``nan``: 0.0 when nothing is reclaimable, ``inf`` when only layer 0 stores
  bytes and some of them are reclaimable.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .image import Image

__all__ = [
    "CAUSES",
    "CI_DEFAULTS",
    "Efficiency",
    "check_rules",
    "directory_sizes",
    "dive_analysis",
    "efficiency",
    "layer_waste",
    "parse_bytes",
    "read_dive_ci",
    "waste",
]

Mode = Literal["layerforensics", "dive"]

#: The values of ``waste(image)["cause"]``.
CAUSES = ("overwritten", "copy-up", "deleted", "moved-away")

#: Entry types that store a path's content (directories and whiteout markers do not).
_CONTENT_TYPES = ("file", "symlink", "hardlink", "char", "block", "fifo")
_GONE = ("overwritten", "deleted", "shadowed")
# Sorts after every real name character: makes a directory follow its children (post-order).
_POST = "\x00\U0010ffff"


# --------------------------------------------------------------------------------------------
# result object


@dataclass(frozen=True)
class Efficiency:
    """How efficiently an image stores its files (returned by :func:`efficiency`).

    Attributes
    ----------
    score
        Between 0 and 1, higher is better. ``dive``: dive's efficiency score.
        ``layerforensics``: ``final_bytes / size_bytes``.
    wasted_bytes
        ``dive``: dive's ``wastedBytes`` (every copy of every inefficient path).
        ``layerforensics``: same as ``reclaimable_bytes``.
    user_wasted_percent
        ``wasted_bytes / user_size_bytes`` as a ratio (0.48 means 48 %).
    size_bytes
        ``dive``: sum of the tar header sizes of every entry of every layer.
        ``layerforensics``: regular-file bytes stored over all layers.
    user_size_bytes
        ``size_bytes`` minus what layer 0 stores.
    reclaimable_bytes
        Regular-file bytes stored in all layers minus those of the final filesystem: what
        squashing the image would save. Computed the same way in both modes.
    final_bytes
        Regular-file bytes of the final filesystem.
    mode
        ``"layerforensics"`` or ``"dive"``.
    file_count
        ``dive``: dive's "files" figure (nodes of all layer trees). ``layerforensics``: number
        of entries in the final filesystem.
    inefficient
        The worst paths, largest first. Columns: ``path`` (string), ``count`` (Int64: how many
        times stored or deleted), ``wasted_bytes`` (Int64; ``dive``: the cumulative size dive
        reports; ``layerforensics``: the reclaimable bytes of that path).
    """

    score: float
    wasted_bytes: int
    user_wasted_percent: float
    size_bytes: int
    user_size_bytes: int
    reclaimable_bytes: int
    final_bytes: int
    mode: str
    file_count: int
    inefficient: pd.DataFrame = field(compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: every scalar field, ``inefficient`` as a list of records.

        ``nan``/``inf`` in ``user_wasted_percent`` become ``None`` (JSON has neither).
        """
        uwp: float | None = self.user_wasted_percent
        if uwp is not None and not math.isfinite(uwp):
            uwp = None
        return {
            "mode": self.mode,
            "score": self.score,
            "wasted_bytes": self.wasted_bytes,
            "user_wasted_percent": uwp,
            "size_bytes": self.size_bytes,
            "user_size_bytes": self.user_size_bytes,
            "reclaimable_bytes": self.reclaimable_bytes,
            "final_bytes": self.final_bytes,
            "file_count": self.file_count,
            "inefficient": [
                {"path": str(r.path), "count": int(r.count), "wasted_bytes": int(r.wasted_bytes)}
                for r in self.inefficient.itertuples(index=False)
            ],
        }

    def _repr_html_(self) -> str:
        rows = [
            ("score", f"{self.score:.2%}"),
            ("wasted", _human(self.wasted_bytes)),
            ("user wasted", _pct(self.user_wasted_percent)),
            ("size", _human(self.size_bytes)),
            ("user size", _human(self.user_size_bytes)),
            ("reclaimable by squashing", _human(self.reclaimable_bytes)),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        top = self.inefficient.head(10)
        ineff = "".join(
            f"<tr><td>{int(r.count)}</td><td>{html.escape(_human(int(r.wasted_bytes)))}</td>"
            f"<td><code>{html.escape(str(r.path))}</code></td></tr>"
            for r in top.itertuples(index=False)
        )
        more = len(self.inefficient) - len(top)
        tail = f"<p>… and {more} more paths</p>" if more > 0 else ""
        return (
            f"<div><b>Efficiency</b> (mode={html.escape(self.mode)})"
            f"<table>{body}</table>"
            + (
                f"<table><tr><th>count</th><th>wasted</th><th>path</th></tr>{ineff}</table>{tail}"
                if len(top)
                else ""
            )
            + "</div>"
        )

    def __repr__(self) -> str:
        return (
            f"Efficiency(mode={self.mode!r}, score={self.score!r}, "
            f"wasted_bytes={self.wasted_bytes}, user_wasted_percent={self.user_wasted_percent!r}, "
            f"size_bytes={self.size_bytes}, user_size_bytes={self.user_size_bytes}, "
            f"reclaimable_bytes={self.reclaimable_bytes}, inefficient={len(self.inefficient)} "
            "paths)"
        )


def _human(n: float) -> str:
    """SI size like dive and go-humanize print it (``13 kB``)."""
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.1f} {unit}" if abs(n) < 10 else f"{n:.0f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _pct(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf"
    return f"{x:.2%}"


# --------------------------------------------------------------------------------------------
# small vectorised helpers


def _dirname(paths: pd.Series) -> pd.Series:
    """Parent of each absolute path; ``""`` for children of the root."""
    if not len(paths):
        return paths.astype("str")
    return paths.str.rpartition("/")[0]


def _basename(paths: pd.Series) -> pd.Series:
    if not len(paths):
        return paths.astype("str")
    return paths.str.rpartition("/")[2]


def _content_rows(files: pd.DataFrame, types: Iterable[str] = ("file",)) -> pd.DataFrame:
    """Rows of ``files`` of the given types that belong to the image (not eStargz extras)."""
    mask = files["type"].isin(list(types))
    if "synthetic" in files:
        mask &= ~files["synthetic"].fillna(False).astype(bool)
    return files.loc[mask]


def _n_layers(image: Image) -> int:
    return len(image.layers)


# --------------------------------------------------------------------------------------------
# dive's algorithm


@dataclass(frozen=True)
class _Dive:
    score: float
    wasted_bytes: int
    size_bytes: int
    user_size_bytes: int
    file_count: int
    inefficient: pd.DataFrame  # path, count, wasted_bytes (dive's cumulative size), dive order
    layer_sizes: list[int]


def dive_analysis(files: pd.DataFrame, n_layers: int) -> _Dive:
    """dive's efficiency analysis computed from a ``files`` frame (see the module docstring).

    Parameters
    ----------
    files
        ``image.files``: columns ``layer``, ``entry``, ``path``, ``type``, ``size``,
        ``synthetic`` are used.
    n_layers
        Number of layers of the image (layers without entries count 0 bytes).

    Returns
    -------
    _Dive
        ``score``, ``wasted_bytes``, ``size_bytes``, ``user_size_bytes``, ``file_count`` (dive's
        node count), ``layer_sizes`` and ``inefficient`` (columns ``path``, ``count``,
        ``wasted_bytes``; in dive's report order).
    """
    f = files[["layer", "entry", "path", "type", "size"]].copy()
    f["layer"] = f["layer"].astype("int64")
    f["path"] = f["path"].astype("str")
    f["type"] = f["type"].astype("str")
    f["size"] = f["size"].fillna(0).astype("int64")
    drop = f["path"].eq("/")  # "./" is cleaned to "." and skipped by dive
    if "synthetic" in files:
        # Go's tar reader stops at the first end-of-archive and never sees the eStargz TOC;
        # the landmark files are ordinary members that it does see.
        drop |= files["synthetic"].fillna(False).astype(bool) & f["path"].eq("/stargz.index.json")
    f = f.loc[~drop]
    layer_sizes = f.groupby("layer")["size"].sum().reindex(range(n_layers), fill_value=0)
    size_bytes = int(layer_sizes.sum())
    user_size = size_bytes - (int(layer_sizes.iloc[0]) if n_layers else 0)

    nodes = _dive_nodes(f)
    file_count = len(nodes)
    sightings, failed_paths = _dive_sightings(nodes)

    # aggregate per path (efficiencyMap)
    sightings = sightings.sort_values("seq", kind="stable")
    grp = sightings.groupby("spath", sort=False)["size"]
    agg = pd.DataFrame({"count": grp.size(), "cum": grp.sum(), "min": grp.min()})
    second = sightings.loc[sightings.groupby("spath", sort=False).cumcount() == 1]
    agg["seq2"] = second.set_index("spath")["seq"].reindex(agg.index)
    sum_min = int(agg["min"].sum()) - len(set(failed_paths) - set(agg.index))
    sum_cum = int(agg["cum"].sum())
    score = 1.0 if sum_cum == 0 else sum_min / sum_cum

    ineff = agg.loc[agg["count"] >= 2]
    # Go: sort.Sort ascending by cumulative size over the discovery order (insertion sort,
    # stable, for <= 12 items); reports print that list reversed.
    ineff = ineff.sort_values(["cum", "seq2"], ascending=[False, False], kind="stable")
    inefficient = pd.DataFrame(
        {
            "path": pd.array(ineff.index, dtype="string"),
            "count": pd.array(ineff["count"].to_numpy(), dtype="Int64"),
            "wasted_bytes": pd.array(ineff["cum"].to_numpy(), dtype="Int64"),
        }
    )
    return _Dive(
        score=score,
        wasted_bytes=int(ineff["cum"].sum()),
        size_bytes=size_bytes,
        user_size_bytes=user_size,
        file_count=file_count,
        inefficient=inefficient,
        layer_sizes=[int(x) for x in layer_sizes],
    )


def _dive_nodes(f: pd.DataFrame) -> pd.DataFrame:
    """Every node of every per-layer tree dive builds (explicit and implicit parents).

    Columns: layer, path (raw names, ``.wh.`` kept), size, is_dir, is_wh.
    """
    base = _basename(f["path"])
    opaque = base.str.startswith(".wh..wh..")
    ex = f.loc[~opaque].sort_values(["layer", "entry"], kind="stable")
    ex = ex.drop_duplicates(["layer", "path"], keep="last")  # later payload replaces earlier
    explicit = pd.DataFrame(
        {
            "layer": ex["layer"].to_numpy(),
            "path": ex["path"].astype("str").to_numpy(),
            "size": ex["size"].to_numpy(),
            "is_dir": (ex["type"] == "dir").to_numpy(dtype=bool),
        }
    )
    # implicit parents (blank payload: size 0, not a directory); opaque markers only create these
    seeds = pd.concat([explicit[["layer", "path"]], f.loc[opaque, ["layer", "path"]]])
    frontier = pd.DataFrame({"layer": seeds["layer"].to_numpy(), "path": _dirname(seeds["path"])})
    parts = []
    while len(frontier):
        frontier = frontier.loc[frontier["path"].ne("")].drop_duplicates()
        parts.append(frontier)
        frontier = pd.DataFrame(
            {"layer": frontier["layer"].to_numpy(), "path": _dirname(frontier["path"]).to_numpy()}
        )
    anc = pd.concat(parts).drop_duplicates() if parts else explicit[["layer", "path"]].iloc[:0]
    anc = anc.merge(explicit[["layer", "path"]], how="left", on=["layer", "path"], indicator=True)
    implicit = anc.loc[anc["_merge"] == "left_only", ["layer", "path"]].assign(size=0, is_dir=False)
    nodes = pd.concat([explicit, implicit], ignore_index=True)
    nodes["path"] = nodes["path"].astype("str")
    nodes["is_wh"] = _basename(nodes["path"]).str.startswith(".wh.").to_numpy(dtype=bool)
    return nodes


def _stripped(paths: pd.Series) -> pd.Series:
    """dive's ``node.Path()``: the ``.wh.`` prefix removed from the last component."""
    if not len(paths):
        return paths.astype("str")
    parts = paths.str.rpartition("/")
    return parts[0] + "/" + parts[2].str.slice(4)


def _dive_sightings(nodes: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The leaves dive's efficiency visitor sees, in visit order, with their sizes.

    Returns the sightings (columns ``seq``, ``layer``, ``spath``, ``size``) and the paths of
    whiteouts whose target was missing (each aborted the rest of its layer).
    """
    parents = pd.DataFrame({"layer": nodes["layer"], "path": _dirname(nodes["path"])})
    parents = parents.drop_duplicates()
    m = nodes.merge(parents.assign(_p=True), how="left", on=["layer", "path"])
    leaves = nodes.loc[m["_p"].isna().to_numpy()].copy()
    leaves["key"] = leaves["path"].str.replace("/", "\x00", regex=False)
    leaves = leaves.sort_values(["layer", "key"], kind="stable").reset_index(drop=True)
    leaves["seq"] = np.arange(len(leaves))
    leaves["spath"] = leaves["path"]
    wh = leaves["is_wh"].to_numpy()
    if wh.any():
        leaves.loc[wh, "spath"] = _stripped(leaves.loc[wh, "path"])
    sizes = leaves["size"].to_numpy(dtype="int64").copy()
    keep = np.ones(len(leaves), dtype=bool)
    failed: list[str] = []
    if wh.any():
        wh_sizes, fails = _whiteout_sizes(nodes, leaves.loc[wh])
        for seq, size in wh_sizes.items():
            sizes[seq] = size
        lay = leaves["layer"].to_numpy()
        seqs = leaves["seq"].to_numpy()
        for seq in fails:  # abort the rest of that layer's walk
            keep &= ~((lay == lay[seq]) & (seqs >= seq))
            failed.append(str(leaves.at[seq, "spath"]))
    out = leaves.loc[keep, ["seq", "layer", "spath"]].copy()
    out["size"] = sizes[keep]
    return out, failed


def _whiteout_sizes(
    nodes: pd.DataFrame, wh_leaves: pd.DataFrame
) -> tuple[dict[int, int], list[int]]:
    """Size dive gives each whiteout leaf, from its stacked lower tree (``StackTreeRange``).

    Only the part of the trees at or below some whiteout target matters, so only that part is
    simulated (in Python; it is small next to the whole image).
    Returns ``{seq: size}`` and the ``seq`` of the first failing whiteout of each layer.
    """
    is_wh = nodes["is_wh"].to_numpy()
    targets = set(_stripped(nodes.loc[is_wh, "path"]))
    tgt = pd.Index(sorted(targets))
    rel = nodes["path"].isin(tgt).to_numpy().copy()
    cur = nodes["path"]
    while True:
        cur = _dirname(cur)
        live = cur.ne("").to_numpy()
        if not live.any():
            break
        rel |= cur.isin(tgt).to_numpy() & live
    ev = nodes.loc[rel | is_wh].copy()
    ev["spath"] = ev["path"]
    ev.loc[ev["is_wh"], "spath"] = _stripped(ev.loc[ev["is_wh"], "path"])
    ev["key"] = ev["path"].str.replace("/", "\x00", regex=False) + _POST
    ev = ev.sort_values(["layer", "key"], kind="stable")
    events: dict[int, list[tuple[str, bool, int, bool]]] = {}
    for layer, path, spath, size, is_dir, w in zip(
        ev["layer"], ev["path"], ev["spath"], ev["size"], ev["is_dir"], ev["is_wh"], strict=True
    ):
        events.setdefault(int(layer), []).append(
            (spath if w else path, bool(w), int(size), bool(is_dir))
        )
    lookups: dict[int, list[tuple[int, str]]] = {}
    for layer, seq, spath in zip(
        wh_leaves["layer"], wh_leaves["seq"], wh_leaves["spath"], strict=True
    ):
        lookups.setdefault(int(layer), []).append((int(seq), str(spath)))

    tree = _Tree()
    sizes: dict[int, int] = {}
    fails: list[int] = []
    tree0: _Tree | None = None
    for layer in sorted(set(events) | set(lookups)):
        if layer == 0:
            tree0 = _Tree()
            for path, w, size, is_dir in events.get(0, []):
                if not w:
                    tree0.add(path, size, is_dir)
        lower = tree0 if layer == 0 else tree
        for seq, spath in lookups.get(layer, []):
            assert lower is not None
            got = lower.subtree_size(spath)
            if got is None:
                fails.append(seq)
                break
            sizes[seq] = got
        if layer == 0:
            assert tree0 is not None
            tree = tree0.copy()
        for path, w, size, is_dir in events.get(layer, []):
            if w:
                tree.remove(path)
            else:
                tree.add(path, size, is_dir)
    return sizes, fails


class _Tree:
    """A flat path -> (size, is_dir) map with child links: the part of dive's tree we need."""

    __slots__ = ("children", "data")

    def __init__(self) -> None:
        self.data: dict[str, tuple[int, bool]] = {}
        self.children: dict[str, set[str]] = {}

    def copy(self) -> _Tree:
        t = _Tree()
        t.data = dict(self.data)
        t.children = {k: set(v) for k, v in self.children.items()}
        return t

    def add(self, path: str, size: int, is_dir: bool) -> None:
        self.data[path] = (size, is_dir)
        self.children.setdefault(path.rpartition("/")[0], set()).add(path)

    def _walk(self, path: str) -> list[str]:
        out, todo = [], [path]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(self.children.get(p, ()))
        return out

    def remove(self, path: str) -> None:
        if path not in self.data:
            return  # dive records a path error and goes on
        for p in self._walk(path):
            self.data.pop(p, None)
            self.children.pop(p, None)
        self.children.get(path.rpartition("/")[0], set()).discard(path)

    def subtree_size(self, path: str) -> int | None:
        got = self.data.get(path)
        if got is None:
            return None
        if not got[1]:  # not a directory (or an implicit parent: dive's blank payload)
            return 0
        return sum(self.data[p][0] for p in self._walk(path) if p in self.data)


# --------------------------------------------------------------------------------------------
# public API


def efficiency(image: Image, mode: Mode = "layerforensics") -> Efficiency:
    """How efficiently ``image`` stores its files.

    Parameters
    ----------
    image
        An opened image (:func:`layerforensics.open_image`).
    mode
        ``"layerforensics"`` (default): what squashing the image would save, computed correctly
        (opaque directories honoured, deleted directories charged with their files, the kept
        copy not counted as waste). ``"dive"``: exactly dive's numbers, quirks included. The
        module docstring lists every difference.

    Returns
    -------
    Efficiency
        Frozen result with ``score``, ``wasted_bytes``, ``user_wasted_percent``,
        ``size_bytes``, ``user_size_bytes``, ``reclaimable_bytes``, ``final_bytes``, ``mode``,
        ``file_count``, ``inefficient`` (DataFrame: path, count, wasted_bytes), ``to_dict()``.

    Examples
    --------
    >>> img = lf.open_image("test-docker-image.tar")           # doctest: +SKIP
    >>> efficiency(img, mode="dive").score                     # doctest: +SKIP
    0.9844212134184309
    """
    if mode not in ("layerforensics", "dive"):
        raise ValueError(f"mode must be 'layerforensics' or 'dive', not {mode!r}")
    files = image.files
    regular = _content_rows(files)
    stored = int(regular["size"].fillna(0).sum())
    fs = image.filesystem()
    final = int(fs.loc[fs["type"] == "file", "size"].fillna(0).sum())
    reclaimable = stored - final
    if mode == "dive":
        d = dive_analysis(files, _n_layers(image))
        return Efficiency(
            score=d.score,
            wasted_bytes=d.wasted_bytes,
            user_wasted_percent=_go_div(d.wasted_bytes, d.user_size_bytes),
            size_bytes=d.size_bytes,
            user_size_bytes=d.user_size_bytes,
            reclaimable_bytes=reclaimable,
            final_bytes=final,
            mode="dive",
            file_count=d.file_count,
            inefficient=d.inefficient,
        )
    user_size = stored - int(regular.loc[regular["layer"] == 0, "size"].fillna(0).sum())
    if reclaimable == 0:
        uwp = 0.0
    elif user_size == 0:
        uwp = math.inf
    else:
        uwp = reclaimable / user_size
    w = waste(image, _with_dive=False)
    w = w.loc[w["reclaimable"] > 0].sort_values(
        ["reclaimable", "path"], ascending=[False, True], kind="stable"
    )
    inefficient = pd.DataFrame(
        {
            "path": w["path"].astype("string").to_numpy(),
            "count": pd.array(w["count"].to_numpy(), dtype="Int64"),
            "wasted_bytes": pd.array(w["reclaimable"].to_numpy(), dtype="Int64"),
        }
    )
    return Efficiency(
        score=1.0 if stored == 0 else final / stored,
        wasted_bytes=reclaimable,
        user_wasted_percent=uwp,
        size_bytes=stored,
        user_size_bytes=user_size,
        reclaimable_bytes=reclaimable,
        final_bytes=final,
        mode="layerforensics",
        file_count=len(fs),
        inefficient=inefficient,
    )


def _go_div(a: int, b: int) -> float:
    """float64(a) / float64(b) with IEEE results for a zero divisor, as Go computes it."""
    if b == 0:
        return math.nan if a == 0 else math.copysign(math.inf, a)
    return a / b


def waste(image: Image, *, _with_dive: bool = True) -> pd.DataFrame:
    """One row per path stored more than once, or stored and then deleted.

    Only entries that carry a path's content count (regular files, symlinks, hardlinks,
    devices, fifos); directories re-stored because something below them changed are not listed.

    Parameters
    ----------
    image
        An opened image.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``reclaimable`` (largest first), then path. Columns:

        - ``path`` (string): absolute path.
        - ``count`` (Int64): number of versions stored across all layers.
        - ``layers`` (object: list of int): the layers that store a version, ascending.
        - ``total_size`` (Int64): bytes of all stored versions.
        - ``kept_size`` (Int64): bytes of the version the final filesystem shows (0 when deleted).
        - ``reclaimable`` (Int64): ``total_size - kept_size``, what squashing saves on this path.
        - ``wasted_dive`` (Int64): what dive counts as wasted for this path (its cumulative size
          when it is in dive's inefficient list, else 0).
        - ``first_layer`` (Int64): first layer that stores the path.
        - ``last_layer`` (Int64): last layer that touches it (stores it, or deletes it).
        - ``deleted_layer`` (Int64): the layer that deleted it, ``<NA>`` when it survives.
        - ``cause`` (category: overwritten, copy-up, deleted, moved-away): ``copy-up`` when every
          version has the same content (e.g. only ``chmod`` changed), ``moved-away`` when the
          deleting layer adds the same content under another path (``mv``), ``deleted`` when
          the path is gone from the final filesystem, ``overwritten`` otherwise.
    """
    files = image.files
    rows = _content_rows(files, _CONTENT_TYPES)
    rows = rows[["layer", "entry", "path", "type", "size", "sha256", "status", "status_layer"]]
    # only paths stored twice or not present at the end can be listed: filter before grouping
    cand = rows["path"].duplicated(keep=False) | rows["status"].astype("string").ne("present")
    rows = rows.loc[rows["path"].isin(rows.loc[cand.fillna(True), "path"].unique())]
    rows = rows.sort_values(["path", "layer", "entry"], kind="stable")
    size = rows["size"].fillna(0).astype("int64")
    status = rows["status"].astype("string")
    present = status.eq("present").fillna(False)
    gone_layer = rows["status_layer"].where(status.eq("deleted").fillna(False))
    g = rows.assign(
        _size=size,
        _kept=size.where(present, 0),
        _present=present,
        _isfile=rows["type"].astype("str").eq("file"),
        _gone=gone_layer.astype("Float64"),
    ).groupby("path", sort=False)
    agg = pd.DataFrame(
        {
            "count": g.size(),
            "total_size": g["_size"].sum(),
            "kept_size": g["_kept"].sum(),
            "any_present": g["_present"].any(),
            "first_layer": g["layer"].min(),
            "last_layer": g["layer"].max(),
            "deleted_layer": g["_gone"].max(),
            "n_sha": g["sha256"].nunique(dropna=False),
            "all_files": g["_isfile"].all(),
        }
    )
    agg["last_layer"] = (
        agg[["last_layer", "deleted_layer"]].astype("Float64").max(axis=1).astype("Int64")
    )
    agg = agg.loc[(agg["count"] >= 2) | ~agg["any_present"].astype(bool)]
    sel = rows.loc[rows["path"].isin(agg.index)]
    layers = sel.groupby("path", sort=False)["layer"].agg(lambda s: sorted(set(int(x) for x in s)))

    deleted = ~agg["any_present"].astype(bool) & agg["deleted_layer"].notna()
    # moved-away: the deleting layer stores the same (non-empty) content under another path
    moved = pd.Series(False, index=agg.index)
    if deleted.any():
        last = sel.drop_duplicates("path", keep="last").set_index("path")
        cand = last.loc[deleted[deleted].index, ["sha256", "size"]].assign(
            _dl=agg.loc[deleted, "deleted_layer"].astype("int64")
        )
        cand = cand.loc[cand["sha256"].notna() & cand["size"].fillna(0).gt(0)]
        if len(cand):
            added = _content_rows(files)[["layer", "path", "sha256"]]
            hit = cand.reset_index().merge(
                added, left_on=["_dl", "sha256"], right_on=["layer", "sha256"], suffixes=("", "_n")
            )
            hit = hit.loc[hit["path"] != hit["path_n"]]
            moved.loc[hit["path"].unique()] = True
    copy_up = agg["all_files"].astype(bool) & agg["n_sha"].eq(1) & agg["count"].ge(2)
    cause = np.select(
        [deleted & moved, deleted, copy_up.to_numpy()],
        ["moved-away", "deleted", "copy-up"],
        default="overwritten",
    )
    total = agg["total_size"].astype("int64")
    kept = agg["kept_size"].astype("int64")
    out = pd.DataFrame(
        {
            "path": pd.array(agg.index, dtype="string"),
            "count": pd.array(agg["count"].to_numpy(), dtype="Int64"),
            "layers": layers.reindex(agg.index).to_numpy(),
            "total_size": pd.array(total.to_numpy(), dtype="Int64"),
            "kept_size": pd.array(kept.to_numpy(), dtype="Int64"),
            "reclaimable": pd.array((total - kept).to_numpy(), dtype="Int64"),
            "wasted_dive": pd.array(np.zeros(len(agg), dtype="int64"), dtype="Int64"),
            "first_layer": pd.array(agg["first_layer"].to_numpy(), dtype="Int64"),
            "last_layer": pd.array(agg["last_layer"].to_numpy(), dtype="Int64"),
            "deleted_layer": pd.array(
                agg["deleted_layer"].where(deleted).to_numpy(), dtype="Int64"
            ),
            "cause": pd.Categorical(cause, categories=list(CAUSES)),
        }
    )
    if _with_dive:
        d = dive_analysis(files, _n_layers(image))
        wd = d.inefficient.set_index("path")["wasted_bytes"]
        out["wasted_dive"] = (
            pd.Series(out["path"].to_numpy()).map(wd).fillna(0).astype("Int64").to_numpy()
        )
    out = out.sort_values(["reclaimable", "path"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)


def layer_waste(image: Image) -> pd.DataFrame:
    """Per layer: what it adds, changes, deletes, and what of it the final image does not need.

    Parameters
    ----------
    image
        An opened image.

    Returns
    -------
    pandas.DataFrame
        One row per layer (bottom first). All byte counts are regular-file bytes (Int64):

        - ``layer`` (int64), ``created_by`` (string), ``instruction`` (category): from
          ``image.layers``.
        - ``stored_bytes``: bytes this layer's tar stores (``image.layers["size"]``).
        - ``added_bytes``: bytes of files at paths that did not exist below.
        - ``modified_bytes``: bytes of files that replace a lower version of the same path.
        - ``deleted_bytes``: bytes of lower files this layer deletes (whiteouts, opaque dirs).
        - ``kept_bytes``: bytes of this layer the final filesystem still shows.
        - ``overwritten_later_bytes``: bytes a later layer (or a later entry of the same tar)
          replaces.
        - ``deleted_later_bytes``: bytes a later layer deletes.
        - ``reclaimable_bytes``: ``overwritten_later_bytes + deleted_later_bytes``, the bytes this
          layer stores that the final image does not need.
        - ``cumulative_bytes``: bytes stored by this layer and all below it (the image size a
          pull transfers, uncompressed).
        - ``visible_bytes``: bytes of the merged filesystem after this layer (the size a squash
          at this layer would have).
    """
    files = image.files
    n = _n_layers(image)
    idx = pd.RangeIndex(n, name="layer")
    reg = _content_rows(files)
    size = reg["size"].fillna(0).astype("int64")
    status = reg["status"].astype("string").fillna("present")

    def by_layer(mask: pd.Series, key: str = "layer") -> np.ndarray:
        s = size.loc[mask.to_numpy()].groupby(reg.loc[mask.to_numpy(), key].astype("int64")).sum()
        return s.reindex(idx, fill_value=0).to_numpy(dtype="int64")

    stored = by_layer(pd.Series(True, index=reg.index))
    kept = by_layer(status.eq("present"))
    over = by_layer(status.isin(["overwritten", "shadowed"]))
    dell = by_layer(status.eq("deleted"))
    deleted_here = by_layer(status.eq("deleted") & reg["status_layer"].notna(), "status_layer")

    ch = image.changes
    ch = ch.loc[ch["type"].astype("string").eq("file").fillna(False)]
    chs = ch["size"].fillna(0).astype("int64")
    added = (
        chs.loc[ch["change"].eq("added").to_numpy()]
        .groupby(ch.loc[ch["change"].eq("added"), "layer"].astype("int64"))
        .sum()
        .reindex(idx, fill_value=0)
        .to_numpy()
    )
    modified = (
        chs.loc[ch["change"].eq("modified").to_numpy()]
        .groupby(ch.loc[ch["change"].eq("modified"), "layer"].astype("int64"))
        .sum()
        .reindex(idx, fill_value=0)
        .to_numpy()
    )
    # visible size after each layer: +size where a version appears, -size where it goes away
    delta = np.zeros(n + 1, dtype="int64")
    np.add.at(delta, reg["layer"].astype("int64").to_numpy(), size.to_numpy())
    gone = status.isin(list(_GONE)).to_numpy() & reg["status_layer"].notna().to_numpy()
    np.add.at(
        delta,
        reg.loc[gone, "status_layer"].astype("int64").to_numpy(),
        -size.to_numpy()[gone],
    )
    layers = image.layers
    out = pd.DataFrame(
        {
            "layer": np.arange(n, dtype="int64"),
            "created_by": layers["created_by"].astype("string").to_numpy(),
            "instruction": layers["instruction"].to_numpy(),
            "stored_bytes": stored,
            "added_bytes": added,
            "modified_bytes": modified,
            "deleted_bytes": deleted_here,
            "kept_bytes": kept,
            "overwritten_later_bytes": over,
            "deleted_later_bytes": dell,
            "reclaimable_bytes": over + dell,
            "cumulative_bytes": np.cumsum(stored),
            "visible_bytes": np.cumsum(delta[:n]),
        }
    )
    for c in out.columns[3:]:
        out[c] = out[c].astype("Int64")
    out["created_by"] = out["created_by"].astype("string")
    out["instruction"] = pd.Categorical(layers["instruction"].to_numpy())
    return out


def directory_sizes(image: Image, *, max_depth: int = 4) -> pd.DataFrame:
    """The final filesystem's regular-file bytes summed per directory.

    Parameters
    ----------
    image
        An opened image.
    max_depth
        Deepest directory level listed (``/usr`` is depth 1, ``/usr/lib`` depth 2).

    Returns
    -------
    pandas.DataFrame
        Columns ``path`` (string; ``/`` for the root), ``parent`` (string, ``<NA>`` for the
        root), ``name`` (string, last component), ``depth`` (int64, 0 for the root),
        ``size`` (Int64: bytes of regular files at or below it), ``files`` (Int64: number of
        them). Sorted by depth, then parent, then size descending. Files directly inside a
        directory are grouped in a pseudo-child named ``(files)`` so a level always adds up to
        its parent.
    """
    fs = image.filesystem()
    reg = fs.loc[fs["type"] == "file", ["path", "size"]]
    paths = reg["path"].astype("str")
    size = reg["size"].fillna(0).astype("int64")
    parts = [pd.DataFrame({"path": ["/"], "size": [int(size.sum())], "files": [len(reg)]})]
    comps = paths.str.split("/")
    ncomp = comps.str.len()  # "/a/b" -> ["", "a", "b"] -> 3
    for depth in range(1, max_depth + 1):
        below = ncomp > depth + 1  # the file is inside a directory of this depth
        here = ncomp == depth + 1  # the file sits directly in the directory one level up
        if not (below.any() or here.any()):
            break
        anc = comps.str.slice(0, depth + 1).str.join("/")
        loose = comps.str.slice(0, depth).str.join("/") + "/(files)"
        key = anc.where(below, loose.where(here))
        ok = key.notna()
        df = pd.DataFrame({"path": key[ok], "size": size[ok]})
        agg = df.groupby("path", sort=False)["size"].agg(["sum", "size"]).reset_index()
        agg.columns = ["path", "size", "files"]
        parts.append(agg)
    out = pd.concat(parts, ignore_index=True)
    p = out["path"].astype("str")
    parent = _dirname(p).replace("", "/").where(p != "/")
    out = pd.DataFrame(
        {
            "path": p.astype("string"),
            "parent": parent.astype("string"),
            "name": _basename(p).replace("", "/").astype("string"),
            "depth": (p.str.count("/") - (p == "/").astype(int)).astype("int64"),
            "size": out["size"].astype("Int64"),
            "files": out["files"].astype("Int64"),
        }
    )
    out.loc[out["path"].eq("/"), "depth"] = 0
    return out.sort_values(
        ["depth", "parent", "size"],
        ascending=[True, True, False],
        kind="stable",
        na_position="first",
    ).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# CI rules (dive's ``--ci``)

#: dive's rule names, their defaults (from dive's application config) and the accepted keys.
CI_DEFAULTS = {
    "lowestEfficiency": "0.9",
    "highestWastedBytes": "disabled",
    "highestUserWastedPercent": "0.1",
}
_CI_KEYS = {
    k.lower().replace("-", "").replace("_", ""): name
    for name in CI_DEFAULTS
    for k in (name, name.lower())
}
_DISABLED = ("", "disabled", "off", "false")
_SIZE_UNITS = {
    "": 1, "b": 1, "byte": 1, "bytes": 1,
    "k": 10**3, "kb": 10**3, "ki": 2**10, "kib": 2**10,
    "m": 10**6, "mb": 10**6, "mi": 2**20, "mib": 2**20,
    "g": 10**9, "gb": 10**9, "gi": 2**30, "gib": 2**30,
    "t": 10**12, "tb": 10**12, "ti": 2**40, "tib": 2**40,
    "p": 10**15, "pb": 10**15, "pi": 2**50, "pib": 2**50,
    "e": 10**18, "eb": 10**18, "ei": 2**60, "eib": 2**60,
}  # fmt: skip


def parse_bytes(text: str) -> int:
    """A size the way dive's go-humanize ``ParseBytes`` reads it.

    SI and IEC units, case-insensitive: ``"20MB" == "20Mb" == 20_000_000``, ``"50kB" == 50_000``,
    ``"20MiB" == 20_971_520``, ``"1B" == 1``, ``"1,000" == 1000``.

    Raises
    ------
    ValueError
        When the text is not a size.
    """
    m = re.fullmatch(r"\s*([0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"not a size: {text!r}")
    return int(float(m.group(1).replace(",", "")) * _SIZE_UNITS[m.group(2).lower()])


def read_dive_ci(path: str) -> dict[str, str]:
    """The ``rules:`` of a ``.dive-ci`` file (dive's YAML format), as ``{rule: text}``.

    Keys may be dive's camelCase (``lowestEfficiency``) or the kebab/snake-case spellings
    (``lowest-efficiency``, ``lowest_efficiency``). Unknown keys are ignored, as dive ignores
    them (their rule keeps its default); :func:`check_rules` reports them in its output.
    """
    from .errors import LayerForensicsError

    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise LayerForensicsError(path, f"cannot read the CI rules file: {exc.strerror}") from exc
    rules: dict[str, str] = {}
    in_rules = False
    for raw in lines:
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indented = line[0] in " \t"
        key, sep, value = line.strip().partition(":")
        if not sep:
            raise LayerForensicsError(path, f"cannot read line {raw!r} (expected 'key: value')")
        if not indented:
            in_rules = key.strip() == "rules"
            continue
        if in_rules:
            v = value.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            rules[key.strip()] = v
    return rules


def check_rules(
    result: Efficiency, rules: dict[str, str | float | int | None] | None = None
) -> pd.DataFrame:
    """Evaluate dive's three CI rules on an :class:`Efficiency` result.

    Parameters
    ----------
    result
        What :func:`efficiency` returned (either mode).
    rules
        ``{rule: threshold}``; missing rules take dive's defaults (``lowestEfficiency`` 0.9,
        ``highestWastedBytes`` disabled, ``highestUserWastedPercent`` 0.1). A threshold of
        ``None``, ``""``, ``"disabled"``, ``"off"`` or ``"false"`` disables the rule. Keys may
        be camelCase, kebab-case or snake_case.

    Returns
    -------
    pandas.DataFrame
        One row per rule, sorted by rule name (as dive prints them). Columns ``rule``
        (string), ``threshold`` (string, as given), ``value`` (Float64: the measured value),
        ``status`` (category: pass, fail, skip), ``message`` (string).

    Raises
    ------
    layerforensics.errors.LayerForensicsError
        A threshold is not a number / size, a ratio is outside 0..1, or a rule is unknown.
        dive calls this a misconfiguration.
    """
    from .errors import LayerForensicsError

    given: dict[str, str] = {}
    for key, value in (rules or {}).items():
        name = _CI_KEYS.get(key.lower().replace("-", "").replace("_", ""))
        if name is None:
            raise LayerForensicsError("CI rules", f"unknown rule {key!r}")
        given[name] = "disabled" if value is None else str(value)
    merged = {**CI_DEFAULTS, **given}
    rows = []
    for name in sorted(merged):
        text = merged[name].strip()
        if text.lower() in _DISABLED:
            rows.append((name, text, math.nan, "skip", "rule disabled"))
            continue
        if name == "highestWastedBytes":
            try:
                limit: float = parse_bytes(text)
            except ValueError:
                raise LayerForensicsError(
                    "CI rules", f"{name}: {text!r} is not a size (e.g. 20MB, 50kB, 20MiB)"
                ) from None
            value: float = result.wasted_bytes
            ok = not value > limit
            msg = f"wasted bytes {value} {'<=' if ok else '>'} {limit} ({text})"
        else:
            try:
                limit = float(text)
            except ValueError:
                raise LayerForensicsError(
                    "CI rules", f"{name}: {text!r} is not a number (a ratio between 0 and 1)"
                ) from None
            if not 0 <= limit <= 1:
                raise LayerForensicsError(
                    "CI rules", f"{name}: {text} is outside 0..1 (give a ratio: 0.9, not 90)"
                )
            if name == "lowestEfficiency":
                value = result.score
                ok = not limit > value
                msg = f"efficiency {value:.4f} {'>=' if ok else '<'} {limit}"
            else:
                value = result.user_wasted_percent
                ok = not value > limit  # nan passes, inf fails (as in dive)
                msg = f"user wasted {value:.4f} {'<=' if ok else '>'} {limit}"
        rows.append((name, text, float(value), "pass" if ok else "fail", msg))
    out = pd.DataFrame(rows, columns=["rule", "threshold", "value", "status", "message"])
    return out.astype(
        {
            "rule": "string",
            "threshold": "string",
            "value": "Float64",
            "status": pd.CategoricalDtype(["pass", "fail", "skip"]),
            "message": "string",
        }
    )
