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
``image.changes``, ``image.filesystem()``, ``image.layers``); no layer is read again. Each
analysis is computed once per image and remembered in the image (``efficiency`` in both modes,
``waste`` and ``layer_waste`` share their intermediate results); every call returns a copy.

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
import pyarrow as pa
import pyarrow.compute as pc

from ._output import human_size

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
            ("wasted", human_size(self.wasted_bytes)),
            ("user wasted", _pct(self.user_wasted_percent)),
            ("size", human_size(self.size_bytes)),
            ("user size", human_size(self.user_size_bytes)),
            ("reclaimable by squashing", human_size(self.reclaimable_bytes)),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        top = self.inefficient.head(10)
        ineff = "".join(
            f"<tr><td>{int(r.count)}</td><td>{html.escape(human_size(int(r.wasted_bytes)))}</td>"
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


def _pct(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf"
    return f"{x:.2%}"


# --------------------------------------------------------------------------------------------
# small vectorised helpers


def _dirname(paths: pd.Series) -> pd.Series:
    """Parent of each absolute path; ``""`` for children of the root.

    A regular expression rather than ``str.rpartition``: on Arrow-backed strings it runs in
    one C call (``rpartition`` builds three Python columns).
    """
    if not len(paths):
        return paths.astype("str")
    return paths.astype("str").str.replace(r"/[^/]*$", "", regex=True)


def _basename(paths: pd.Series) -> pd.Series:
    if not len(paths):
        return paths.astype("str")
    return paths.astype("str").str.replace(r"(?s)^.*/", "", regex=True)


def _isin(paths: pd.Series, values: Iterable[str]) -> np.ndarray:
    """``paths.isin(values)`` as a bool array, hashed in Arrow (pandas converts every string of
    an Arrow-backed column to a Python object first, which is ten times slower)."""
    arr = pa.array(paths.astype("str").array)
    vals = pa.array([v for v in values if isinstance(v, str)], type=arr.type)
    hit = pc.is_in(arr, value_set=vals).fill_null(False)
    return np.array(hit.to_numpy(zero_copy_only=False), dtype=bool)


def _content_rows(
    files: pd.DataFrame, columns: list[str], types: Iterable[str] = ("file",)
) -> pd.DataFrame:
    """``columns`` of the rows of ``files`` of the given types that belong to the image (not
    eStargz extras). Only the columns asked for are copied: the frame has many more."""
    mask = files["type"].isin(list(types))
    if "synthetic" in files:
        mask &= ~files["synthetic"].fillna(False).astype(bool)
    return files.loc[mask, columns]


def _n_layers(image: Image) -> int:
    return len(image.layers)


_CACHE_KEY = "_waste_cache"


def _cache(image: Image) -> dict[str, Any]:
    """Per-image memo of the analyses below (an image's frames never change once built).

    Stored in the image's ``__dict__`` next to its ``cached_property`` frames, so it lives and
    dies with the image. Callers get copies of cached DataFrames, never the cached objects.
    """
    return image.__dict__.setdefault(_CACHE_KEY, {})


def _dive_of(image: Image) -> _Dive:
    """:func:`dive_analysis` of ``image``, computed once per image."""
    c = _cache(image)
    if "dive" not in c:
        c["dive"] = dive_analysis(image.files, _n_layers(image))
    return c["dive"]


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

    # aggregate per path (efficiencyMap), on integer path codes in discovery order
    sightings = sightings.sort_values("seq", kind="stable")
    code, uniq = pd.factorize(sightings["spath"])
    num = pd.DataFrame({"code": code, "size": sightings["size"].to_numpy(dtype="int64")})
    g = num.groupby("code", sort=True)["size"]
    agg = pd.DataFrame({"count": g.size(), "cum": g.sum(), "min": g.min()})
    seq = sightings["seq"].to_numpy(dtype="int64")
    second = (num.groupby("code", sort=False).cumcount() == 1).to_numpy()
    seq2 = np.full(len(uniq), -1, dtype="int64")
    seq2[code[second]] = seq[second]
    agg["seq2"] = seq2[agg.index.to_numpy()]
    seen = set(uniq.tolist()) if failed_paths else set()
    sum_min = int(agg["min"].sum()) - len(set(failed_paths) - seen)
    sum_cum = int(agg["cum"].sum())
    score = 1.0 if sum_cum == 0 else sum_min / sum_cum

    ineff = agg.loc[agg["count"] >= 2]
    # Go: sort.Sort ascending by cumulative size over the discovery order (insertion sort,
    # stable, for <= 12 items); reports print that list reversed.
    ineff = ineff.sort_values(["cum", "seq2"], ascending=[False, False], kind="stable")
    inefficient = pd.DataFrame(
        {
            # the path strings of the inefficient rows only (agg is indexed by path code)
            "path": pd.array(np.asarray(uniq, dtype=object)[ineff.index.to_numpy()], "string"),
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


def _closed_paths(paths: pd.Series) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """Integer codes for ``paths`` in a table that also holds every ancestor directory.

    Returns ``(codes, table, parent)``: ``table[codes[i]] == paths[i]``, and ``parent[c]`` is
    the code of ``table[c]``'s parent directory (``-1`` for children of the root). Only the
    distinct paths go through string operations (in Arrow); tree walks then run on integers.
    """
    encoded = pc.dictionary_encode(pa.array(paths.astype("str").array))
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype("int64")
    table = encoded.dictionary
    parents: list[np.ndarray] = []
    start = 0
    while start < len(table):
        par = _arrow_dirname(table[start:])
        pos = pc.index_in(par, value_set=table).fill_null(-1).to_numpy().astype("int64")
        missing = (pos < 0) & pc.not_equal(par, "").to_numpy(zero_copy_only=False)
        start = len(table)
        if missing.any():
            new = pc.dictionary_encode(par.filter(pa.array(missing)))
            pos[missing] = start + new.indices.to_numpy(zero_copy_only=False)
            table = pa.concat_arrays([table, new.dictionary])
        parents.append(pos)
    parent = np.concatenate(parents) if parents else np.zeros(0, dtype="int64")
    return codes, table, parent


def _arrow_dirname(paths: pa.Array) -> pa.Array:
    """Parent of each absolute path (``""`` for children of the root), in one Arrow pass."""
    return pc.list_element(pc.split_pattern(paths, "/", max_splits=1, reverse=True), 0)


def _dive_nodes(f: pd.DataFrame) -> pd.DataFrame:
    """Every node of every per-layer tree dive builds (explicit and implicit parents).

    Columns: layer, path (raw names, ``.wh.`` kept), size, is_dir, is_wh, code (the path's
    number), pcode (its parent's number, -1 under the root), walk (the path's rank in dive's
    walk order: byte-wise with "/" sorting before every other character).
    """
    codes, table, parent = _closed_paths(f["path"])
    width = max(len(table), 1)
    walk = np.empty(len(table), dtype="int64")
    walk[pc.sort_indices(pc.replace_substring(table, "/", "\x00")).to_numpy()] = np.arange(
        len(table)
    )
    # the last component starts with ".wh..wh.." (opaque marker) or ".wh." (whiteout)
    opaque_t = pc.match_substring_regex(table, r"/\.wh\.\.wh\.\.[^/]*$").to_numpy(
        zero_copy_only=False
    )
    wh_t = pc.match_substring_regex(table, r"/\.wh\.[^/]*$").to_numpy(zero_copy_only=False)
    layer = f["layer"].to_numpy(dtype="int64")
    entry = f["entry"].to_numpy(dtype="int64")
    opaque = opaque_t[codes] if len(codes) else np.zeros(0, dtype=bool)
    # later payload of the same path in the same layer replaces the earlier one
    order = np.lexsort((entry, layer))
    order = order[~opaque[order]]
    key = layer[order] * width + codes[order]
    last = ~pd.Series(key).duplicated(keep="last").to_numpy()
    ex = order[last]
    ex_key = key[last]
    size = f["size"].to_numpy(dtype="int64")
    is_dir = (f["type"] == "dir").to_numpy(dtype=bool)
    # implicit parents (blank payload: size 0, not a directory); opaque markers only create these
    seed_l = np.concatenate([layer[ex], layer[opaque]])
    seed_c = np.concatenate([codes[ex], codes[opaque]])
    found: list[np.ndarray] = []
    while len(seed_c):
        p = parent[seed_c]
        ok = p >= 0
        k = np.unique(seed_l[ok] * width + p[ok])
        found.append(k)
        seed_l, seed_c = k // width, k % width
    anc = np.unique(np.concatenate(found)) if found else np.zeros(0, dtype="int64")
    implicit = anc[~np.isin(anc, ex_key)]
    node_l = np.concatenate([layer[ex], implicit // width])
    node_c = np.concatenate([codes[ex], implicit % width])
    return pd.DataFrame(
        {
            "layer": node_l,
            "path": pd.arrays.ArrowStringArray(table.take(node_c).cast(pa.large_string())),
            "size": np.concatenate([size[ex], np.zeros(len(implicit), dtype="int64")]),
            "is_dir": np.concatenate([is_dir[ex], np.zeros(len(implicit), dtype=bool)]),
            "is_wh": wh_t[node_c] if len(node_c) else np.zeros(0, dtype=bool),
            "code": node_c,
            "pcode": parent[node_c] if len(node_c) else np.zeros(0, dtype="int64"),
            "walk": walk[node_c] if len(node_c) else np.zeros(0, dtype="int64"),
        }
    ).astype({"path": "str"})


def _stripped(paths: pd.Series) -> pd.Series:
    """dive's ``node.Path()``: the ``.wh.`` prefix removed from the last component."""
    if not len(paths):
        return paths.astype("str")
    return paths.astype("str").str.replace(r"/\.wh\.([^/]*)$", r"/\1", regex=True)


def _dive_sightings(nodes: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The leaves dive's efficiency visitor sees, in visit order, with their sizes.

    Returns the sightings (columns ``seq``, ``layer``, ``spath``, ``size``) and the paths of
    whiteouts whose target was missing (each aborted the rest of its layer).
    """
    # a leaf is a node that is nobody's parent in its layer: compare (layer, path) keys as ints
    code = nodes["code"].to_numpy(dtype="int64")
    pcode = nodes["pcode"].to_numpy(dtype="int64")
    width = max(int(code.max(initial=0)), int(pcode.max(initial=0))) + 1
    lay = nodes["layer"].to_numpy(dtype="int64")
    own_key = lay * width + code
    parent_key = (lay * width + pcode)[pcode >= 0]
    leaves = nodes.loc[~np.isin(own_key, parent_key)].copy()
    walk_order = np.lexsort((leaves["walk"].to_numpy(), leaves["layer"].to_numpy()))
    leaves = leaves.iloc[walk_order].reset_index(drop=True)
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
    # a node is relevant when it is a target or below one: mark the targets' path codes, then
    # spread the mark down the parent links (one vectorised step per level of depth)
    code = nodes["code"].to_numpy(dtype="int64")
    pcode = nodes["pcode"].to_numpy(dtype="int64")
    width = int(max(code.max(initial=-1), pcode.max(initial=-1))) + 1
    parent_of = np.full(width, width, dtype="int64")  # `width`: a sentinel slot, never marked
    parent_of[code] = np.where(pcode >= 0, pcode, width)
    marked = np.zeros(width + 1, dtype=bool)
    marked[code[_isin(nodes["path"], targets)]] = True
    while True:
        spread = marked[:width] | marked[parent_of]
        if (spread == marked[:width]).all():
            break
        marked[:width] = spread
    rel = marked[code]
    ev = nodes.loc[rel | is_wh].copy()
    ev["spath"] = ev["path"]
    ev.loc[ev["is_wh"], "spath"] = _stripped(ev.loc[ev["is_wh"], "path"])
    ev["key"] = ev["path"].str.replace("/", "\x00", regex=False) + _POST
    ev = ev.sort_values(["layer", "key"], kind="stable")
    events: dict[int, list[tuple[str, bool, int, bool]]] = {}
    for layer, path, spath, size, is_dir, w in zip(
        ev["layer"].tolist(),
        ev["path"].tolist(),
        ev["spath"].tolist(),
        ev["size"].tolist(),
        ev["is_dir"].tolist(),
        ev["is_wh"].tolist(),
        strict=True,
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


def _totals(image: Image) -> dict[str, int]:
    """Regular-file byte totals from ``image.files`` alone (cached per image).

    ``final`` and ``final_entries`` equal what ``image.filesystem()`` shows (regular-file bytes
    and number of rows) -- the surviving version of every path is the row whose status is
    ``present`` -- without building the merged frame.
    """
    c = _cache(image)
    if "totals" not in c:
        files = image.files
        reg = _content_rows(files, ["size", "layer", "status"])
        size = reg["size"].fillna(0).to_numpy(dtype="int64")
        layer = reg["layer"].to_numpy(dtype="int64")
        present = files["status"].eq("present").fillna(False).to_numpy(dtype=bool)
        reg_present = reg["status"].eq("present").fillna(False).to_numpy(dtype=bool)
        entries = files.loc[present, "path"]
        c["totals"] = {
            "stored": int(size.sum()),
            "base": int(size[layer == 0].sum()),
            "final": int(size[reg_present].sum()),
            # "/" is not a row of the merged view; a path is present at most once otherwise,
            # but kaniko-style archives repeat "/" in every layer
            "final_entries": int(entries.loc[entries.ne("/").fillna(True)].nunique()),
        }
    return c["totals"]


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

    Notes
    -----
    Both modes are computed once per image and remembered: a second call (or :func:`waste`,
    which shares the per-path aggregation and dive's analysis) costs almost nothing.

    Examples
    --------
    >>> img = lf.open_image("test-docker-image.tar")           # doctest: +SKIP
    >>> efficiency(img, mode="dive").score                     # doctest: +SKIP
    0.9844212134184309
    """
    if mode not in ("layerforensics", "dive"):
        raise ValueError(f"mode must be 'layerforensics' or 'dive', not {mode!r}")
    t = _totals(image)
    stored, final = t["stored"], t["final"]
    reclaimable = stored - final
    if mode == "dive":
        d = _dive_of(image)
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
            inefficient=d.inefficient.copy(),
        )
    user_size = stored - t["base"]
    if reclaimable == 0:
        uwp = 0.0
    elif user_size == 0:
        uwp = math.inf
    else:
        uwp = reclaimable / user_size
    agg = _path_agg(image).agg
    w = agg.loc[agg["reclaimable"].to_numpy() > 0]
    w = w.sort_values(["reclaimable", "path"], ascending=[False, True], kind="stable")
    inefficient = pd.DataFrame(
        {
            "path": pd.array(w["path"].to_numpy(), dtype="string"),
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
        file_count=t["final_entries"],
        inefficient=inefficient,
    )


def _go_div(a: int, b: int) -> float:
    """float64(a) / float64(b) with IEEE results for a zero divisor, as Go computes it."""
    if b == 0:
        return math.nan if a == 0 else math.copysign(math.inf, a)
    return a / b


@dataclass(frozen=True)
class _PathAgg:
    """Per-path aggregation shared by :func:`efficiency` and :func:`waste`.

    ``agg``: one row per listed path (stored twice or more, or not present at the end), in
    path order; numpy columns ``path`` (object), ``count``, ``total_size``, ``kept_size``,
    ``reclaimable``, ``first_layer``, ``last_layer`` (int64), ``deleted_layer`` (float64, nan
    when the path survives), ``any_present``, ``copy_up`` (bool), ``code`` (int64, the path's
    group number in ``rows``).
    ``rows``: the content rows of those paths sorted by path, layer, entry, with a ``_code``
    column.
    """

    agg: pd.DataFrame
    rows: pd.DataFrame


def _path_agg(image: Image) -> _PathAgg:
    c = _cache(image)
    if "paths" in c:
        return c["paths"]
    files = image.files
    rows = _content_rows(
        files,
        ["layer", "entry", "path", "type", "size", "sha256", "status", "status_layer"],
        _CONTENT_TYPES,
    )
    # unknown (NA) status: not present
    present = (rows["status"] == "present").to_numpy(dtype=bool)
    # only paths stored twice or not present at the end can be listed: filter before grouping
    allcode, alluniq = pd.factorize(rows["path"])
    cand = np.bincount(allcode, minlength=1)[allcode] >= 2
    cand |= ~present
    keep = np.isin(allcode, allcode[cand])
    # rows in (path, layer, entry) order: only the candidate paths are ranked (in Arrow,
    # byte-wise, which is code point order as Python compares str); a path's code is its rank
    kept_codes = allcode[keep]
    candidates = np.unique(kept_codes)
    names = pa.array(alluniq.array).take(pa.array(candidates))
    by_rank = pc.sort_indices(names).to_numpy()
    rank = np.empty(len(candidates), dtype="int64")
    rank[by_rank] = np.arange(len(candidates))
    path_rank = rank[np.searchsorted(candidates, kept_codes)]
    rows = rows.loc[keep]
    order = np.lexsort(
        (rows["entry"].to_numpy(dtype="int64"), rows["layer"].to_numpy(dtype="int64"), path_rank)
    )
    rows = rows.iloc[order]
    code = path_rank[order]
    uniq = names.take(pa.array(by_rank)).to_numpy(zero_copy_only=False)  # the path of each code
    size = rows["size"].fillna(0).to_numpy(dtype="int64")
    present = (rows["status"] == "present").to_numpy(dtype=bool)
    deleted_row = (rows["status"] == "deleted").to_numpy(dtype=bool)
    gone = rows["status_layer"].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    sha_code = pd.factorize(rows["sha256"], use_na_sentinel=True)[0]
    num = pd.DataFrame(
        {
            "code": code,
            "size": size,
            "kept": np.where(present, size, 0),
            "present": present,
            "layer": rows["layer"].to_numpy(dtype="int64"),
            "gone": np.where(deleted_row, gone, np.nan),
            "sha": sha_code,  # -1 for a missing hash: counted as one value, like dropna=False
            "isfile": (rows["type"] == "file").to_numpy(dtype=bool),
        }
    )
    g = num.groupby("code", sort=True)
    a = g.agg(
        count=("size", "size"),
        total_size=("size", "sum"),
        kept_size=("kept", "sum"),
        any_present=("present", "any"),
        first_layer=("layer", "min"),
        last_layer=("layer", "max"),
        deleted_layer=("gone", "max"),
        n_sha=("sha", "nunique"),
        all_files=("isfile", "all"),
    )
    count = a["count"].to_numpy(dtype="int64")
    any_present = a["any_present"].to_numpy(dtype=bool)
    deleted_layer = a["deleted_layer"].to_numpy(dtype="float64")
    agg = pd.DataFrame(
        {
            "code": a.index.to_numpy(dtype="int64"),
            "path": uniq[a.index.to_numpy()],
            "count": count,
            "total_size": a["total_size"].to_numpy(dtype="int64"),
            "kept_size": a["kept_size"].to_numpy(dtype="int64"),
            "first_layer": a["first_layer"].to_numpy(dtype="int64"),
            "last_layer": np.fmax(a["last_layer"].to_numpy(dtype="float64"), deleted_layer).astype(
                "int64"
            ),
            "deleted_layer": deleted_layer,
            "any_present": any_present,
            "copy_up": a["all_files"].to_numpy(dtype=bool)
            & (a["n_sha"].to_numpy() == 1)
            & (count >= 2),
        }
    )
    agg["reclaimable"] = agg["total_size"] - agg["kept_size"]
    agg = agg.loc[(count >= 2) | ~any_present].reset_index(drop=True)
    rows = rows.assign(_code=code)
    rows = rows.loc[np.isin(code, agg["code"].to_numpy())]
    c["paths"] = _PathAgg(agg=agg, rows=rows)
    return c["paths"]


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

    Notes
    -----
    Computed once per image (the result is remembered; each call returns a fresh copy).
    """
    c = _cache(image)
    key = "waste" if _with_dive else "waste-nodive"
    if key not in c:
        c[key] = _waste_table(image, _with_dive)
    return c[key].copy()


def _waste_table(image: Image, with_dive: bool) -> pd.DataFrame:
    pa = _path_agg(image)
    agg, sel = pa.agg, pa.rows
    # the ascending list of layers storing each path: unique (code, layer) pairs, split per code
    pairs = sel[["_code", "layer"]].drop_duplicates()  # already sorted by path, layer
    pc = pairs["_code"].to_numpy()
    pl = pairs["layer"].to_numpy(dtype="int64")
    bounds = np.flatnonzero(np.diff(pc)) + 1
    layers = pd.Series(
        [part.tolist() for part in np.split(pl, bounds)] if len(pl) else [],
        index=pd.unique(pc) if len(pc) else pd.Index([], dtype="int64"),
        dtype=object,
    )

    deleted = ~agg["any_present"].to_numpy() & ~np.isnan(agg["deleted_layer"].to_numpy())
    # moved-away: the deleting layer stores the same (non-empty) content under another path
    moved = np.zeros(len(agg), dtype=bool)
    if deleted.any():
        last = sel.drop_duplicates("_code", keep="last").set_index("_code")
        dcodes = agg["code"].to_numpy()[deleted]
        cand = last.loc[dcodes, ["path", "sha256", "size"]].assign(
            _dl=agg["deleted_layer"].to_numpy()[deleted].astype("int64")
        )
        cand = cand.loc[cand["sha256"].notna().to_numpy() & cand["size"].fillna(0).gt(0).to_numpy()]
        if len(cand):
            added = _content_rows(image.files, ["layer", "path", "sha256"])
            hit = cand.reset_index().merge(
                added, left_on=["_dl", "sha256"], right_on=["layer", "sha256"], suffixes=("", "_n")
            )
            hit = hit.loc[(hit["path"] != hit["path_n"]).fillna(False).to_numpy()]
            moved = np.isin(agg["code"].to_numpy(), hit["_code"].to_numpy())
    cause = np.select(
        [deleted & moved, deleted, agg["copy_up"].to_numpy()],
        ["moved-away", "deleted", "copy-up"],
        default="overwritten",
    )
    out = pd.DataFrame(
        {
            "path": pd.array(agg["path"].to_numpy(), dtype="string"),
            "count": pd.array(agg["count"].to_numpy(), dtype="Int64"),
            "layers": layers.reindex(agg["code"].to_numpy()).to_numpy(),
            "total_size": pd.array(agg["total_size"].to_numpy(), dtype="Int64"),
            "kept_size": pd.array(agg["kept_size"].to_numpy(), dtype="Int64"),
            "reclaimable": pd.array(agg["reclaimable"].to_numpy(), dtype="Int64"),
            "wasted_dive": pd.array(np.zeros(len(agg), dtype="int64"), dtype="Int64"),
            "first_layer": pd.array(agg["first_layer"].to_numpy(), dtype="Int64"),
            "last_layer": pd.array(agg["last_layer"].to_numpy(), dtype="Int64"),
            "deleted_layer": pd.array(
                np.where(deleted, agg["deleted_layer"].to_numpy(), np.nan), dtype="Int64"
            ),
            "cause": pd.Categorical(cause, categories=list(CAUSES)),
        }
    )
    if with_dive:
        d = _dive_of(image)
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

    Notes
    -----
    Computed once per image (the result is remembered; each call returns a fresh copy).
    """
    c = _cache(image)
    if "layer_waste" not in c:
        c["layer_waste"] = _layer_waste_table(image)
    return c["layer_waste"].copy()


def _layer_waste_table(image: Image) -> pd.DataFrame:
    files = image.files
    n = _n_layers(image)
    reg = _content_rows(files, ["size", "layer", "status", "status_layer"])
    size = reg["size"].fillna(0).to_numpy(dtype="int64")
    layer = reg["layer"].to_numpy(dtype="int64")
    status = reg["status"].astype("string").fillna("present")
    status_layer = reg["status_layer"].astype("Float64").to_numpy(dtype="float64", na_value=-1)
    has_status_layer = status_layer >= 0
    status_layer = status_layer.astype("int64")

    def by_layer(mask: np.ndarray, where: np.ndarray = layer) -> np.ndarray:
        """Bytes of the rows in ``mask``, summed per layer number ``where`` (exact int64)."""
        out = np.zeros(n, dtype="int64")
        np.add.at(out, where[mask], size[mask])
        return out

    present = status.eq("present").to_numpy(dtype=bool)
    overwritten = status.isin(["overwritten", "shadowed"]).to_numpy(dtype=bool)
    deleted = status.eq("deleted").to_numpy(dtype=bool)
    stored = by_layer(np.ones(len(reg), dtype=bool))
    kept = by_layer(present)
    over = by_layer(overwritten)
    dell = by_layer(deleted)
    deleted_here = by_layer(deleted & has_status_layer, status_layer)

    ch = image.changes
    is_file = ch["type"].astype("string").eq("file").fillna(False).to_numpy(dtype=bool)
    ch_layer = ch["layer"].to_numpy(dtype="int64")
    ch_size = ch["size"].fillna(0).to_numpy(dtype="int64")
    change = ch["change"].astype("string")

    def changed(kind: str) -> np.ndarray:
        m = is_file & change.eq(kind).fillna(False).to_numpy(dtype=bool)
        out = np.zeros(n, dtype="int64")
        np.add.at(out, ch_layer[m], ch_size[m])
        return out

    added, modified = changed("added"), changed("modified")
    # visible size after each layer: +size where a version appears, -size where it goes away
    gone = status.isin(list(_GONE)).to_numpy(dtype=bool) & has_status_layer
    delta = stored - by_layer(gone, status_layer)
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
            "visible_bytes": np.cumsum(delta),
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
