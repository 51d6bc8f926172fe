"""The ``DataFrame.lf`` accessor on layerforensics frames: readable sizes, a path tree, quick plots.

Importing :mod:`layerforensics.accessor` registers it (``import layerforensics`` does too once
the lead wires it). It only attaches to frames shaped like ours; on any other frame ``df.lf``
raises :class:`AttributeError`, so ``hasattr(df, "lf")`` tells them apart.

>>> img.files.lf.tree(max_depth=2)           # doctest: +SKIP
>>> img.layers.lf.human()                    # doctest: +SKIP
>>> img.filesystem().lf.largest(10).lf.plot()  # doctest: +SKIP
"""

from __future__ import annotations

import html
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from .display import human_size

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["FRAME_KINDS", "LayerFramesAccessor", "PathTree", "frame_kind"]

#: Frame kinds and the columns that identify each (checked in this order).
FRAME_KINDS: dict[str, tuple[str, ...]] = {
    "files": ("layer", "entry", "path", "type", "size", "status"),
    "secrets": ("rule", "fingerprint", "secret"),
    "changes": ("layer", "path", "change", "size"),
    "deleted": ("path", "size", "layer", "deleted_layer"),
    "waste": ("path", "count", "reclaimable"),
    "filesystem": ("path", "type", "size", "layer", "entry"),
    "layers": ("layer", "diff_id", "size"),
    "history": ("step", "created_by", "empty_layer"),
}

#: Byte-count columns that :meth:`LayerFramesAccessor.human` formats.
SIZE_COLUMNS = (
    "size",
    "compressed_size",
    "tar_size",
    "total_size",
    "kept_size",
    "reclaimable",
    "wasted_dive",
    "wasted_bytes",
    "bytes",
    "stored_bytes",
    "visible_bytes",
    "cumulative_bytes",
)


def frame_kind(df: pd.DataFrame) -> str | None:
    """Which layerforensics frame ``df`` looks like (see :data:`FRAME_KINDS`), or None."""
    cols = set(df.columns)
    for kind, required in FRAME_KINDS.items():
        if set(required) <= cols:
            return kind
    return None


@dataclass(frozen=True)
class PathTree:
    """A rendered directory tree (``str(tree)``; shown as ``<pre>`` in notebooks)."""

    text: str
    paths: int

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<pre style='line-height:1.25'>{html.escape(self.text)}</pre>"


class _Node:
    __slots__ = ("children", "files", "is_dir", "mark", "size")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.size = 0
        self.files = 0
        self.is_dir = False
        self.mark = ""


@pd.api.extensions.register_dataframe_accessor("lf")
class LayerFramesAccessor:
    """``df.lf`` on the frames of :class:`layerforensics.Image` (and of analyses on them).

    Raises
    ------
    AttributeError
        ``df`` is not one of our frames (see :data:`FRAME_KINDS` for the columns checked).
    """

    def __init__(self, df: pd.DataFrame) -> None:
        kind = frame_kind(df)
        if kind is None:
            expected = "; ".join(f"{k}: {', '.join(v)}" for k, v in FRAME_KINDS.items())
            raise AttributeError(
                "df.lf works on layerforensics frames only; this frame has none of the column "
                f"sets {expected}"
            )
        self._df = df
        self.kind: str = kind

    # ------------------------------------------------------------------ tables
    def human(self, columns: list[str] | None = None) -> pd.DataFrame:
        """A copy with byte counts as readable text (``13.4 kB``), modes as ``-rwxr-xr-x``.

        Parameters
        ----------
        columns
            Which columns to format (default: every column of :data:`SIZE_COLUMNS` present).

        Returns
        -------
        DataFrame
            Same columns; formatted ones are ``string`` dtype, ``mode`` becomes symbolic text.
        """
        out = self._df.copy()
        cols = columns if columns is not None else [c for c in SIZE_COLUMNS if c in out]
        for c in cols:
            out[c] = pd.array([human_size(v) for v in out[c]], dtype="string")
        if columns is None and "mode" in out:
            out["mode"] = self.modes()
        return out

    def modes(self) -> pd.Series:
        """Symbolic modes (``-rwsr-xr-x``) from ``mode`` and ``type``; ``string`` dtype."""
        if "mode" not in self._df:
            raise KeyError("this frame has no 'mode' column")
        kinds = {
            "dir": stat.S_IFDIR,
            "symlink": stat.S_IFLNK,
            "char": stat.S_IFCHR,
            "block": stat.S_IFBLK,
            "fifo": stat.S_IFIFO,
        }
        types = self._df["type"].astype("string") if "type" in self._df else None
        values = []
        for i, m in enumerate(self._df["mode"]):
            if m is pd.NA or m is None:
                values.append(None)
                continue
            t = str(types.iloc[i]) if types is not None else "file"
            values.append(stat.filemode(int(m) | kinds.get(t, stat.S_IFREG)))
        return pd.Series(values, index=self._df.index, dtype="string", name="mode")

    def largest(self, n: int = 10, column: str = "size") -> pd.DataFrame:
        """The ``n`` rows with the largest ``column`` (ties keep frame order; missing last)."""
        return self._df.sort_values(
            column, ascending=False, na_position="last", kind="stable"
        ).head(n)

    def under(self, prefix: str) -> pd.DataFrame:
        """Rows whose ``path`` is ``prefix`` or below it (``/etc`` matches ``/etc/passwd``)."""
        self._need("path")
        p = "/" + prefix.strip("/")
        paths = self._df["path"].astype("string")
        if p == "/":
            return self._df
        mask = (paths == p) | paths.str.startswith(p + "/")
        return self._df.loc[mask.fillna(False).astype(bool)]

    # ------------------------------------------------------------------ tree
    def tree(
        self,
        *,
        max_depth: int | None = None,
        max_children: int = 40,
        root: str = "/",
    ) -> PathTree:
        """The paths of this frame as a directory tree with sizes (largest first).

        Directory sizes add up the ``size`` of everything listed below them. Rows of a
        ``changes`` frame are marked ``+`` added, ``~`` modified, ``-`` deleted; rows of
        ``files`` with status deleted or overwritten are marked ``-`` / ``~``.

        Parameters
        ----------
        max_depth
            Levels shown below ``root`` (None: all).
        max_children
            Children shown per directory; the rest are summarised in one line.
        root
            Start the tree at this directory.
        """
        self._need("path")
        df = self.under(root) if root != "/" else self._df
        top = _Node()
        top.is_dir = True
        base = "/" + root.strip("/") if root.strip("/") else ""
        sizes = df["size"] if "size" in df else pd.Series(0, index=df.index)
        types = df["type"].astype("string") if "type" in df else None
        marks = None
        if "change" in df:
            marks = (
                df["change"].astype("string").map({"added": "+", "modified": "~", "deleted": "-"})
            )
        elif "status" in df:
            marks = df["status"].astype("string").map({"deleted": "-", "overwritten": "~"})
        for i, (path, size) in enumerate(zip(df["path"], sizes, strict=True)):
            if path is pd.NA or path is None:
                continue
            rel = str(path)[len(base) :].strip("/")
            node = top
            parts = [x for x in rel.split("/") if x]
            s = 0 if size is pd.NA or size is None else int(size)
            node.size += s
            node.files += 1
            for part in parts:
                node.is_dir = True
                node = node.children.setdefault(part, _Node())
                node.size += s
                node.files += 1
            if types is not None and str(types.iloc[i]) == "dir":
                node.is_dir = True
            if marks is not None and isinstance(marks.iloc[i], str):
                node.mark = marks.iloc[i]
        lines = [f"{base or '/'}  ({human_size(top.size)}, {len(df):,} rows)"]

        def walk(node: _Node, prefix: str, depth: int) -> None:
            if max_depth is not None and depth >= max_depth:
                return
            kids = sorted(node.children.items(), key=lambda kv: (-kv[1].size, kv[0]))
            shown = kids[:max_children]
            for j, (name, child) in enumerate(shown):
                last = j == len(shown) - 1 and len(kids) <= max_children
                branch = "└── " if last else "├── "
                label = name + ("/" if child.is_dir else "")
                mark = f"{child.mark} " if child.mark else ""
                lines.append(f"{prefix}{branch}{mark}{label}  {human_size(child.size)}")
                walk(child, prefix + ("    " if last else "│   "), depth + 1)
            if len(kids) > max_children:
                rest = kids[max_children:]
                lines.append(
                    f"{prefix}└── … {len(rest)} more ({human_size(sum(c.size for _, c in rest))})"
                )

        walk(top, "", 0)
        return PathTree("\n".join(lines), len(df))

    # ------------------------------------------------------------------ plots
    def plot(self, n: int = 15, ax: Axes | None = None) -> Axes:
        """A quick chart suited to the frame; returns the Axes (never calls ``plt.show()``).

        ``layers``: bytes per layer. ``history``: nothing to size, raises TypeError. Frames
        with paths: the ``n`` largest paths (``reclaimable`` for ``waste``, else ``size``),
        coloured by change / status / type.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 1.2 + 0.3 * n if self.kind != "layers" else 4))
        from .display import human_size as fmt

        if self.kind == "layers":
            df = self._df
            ax.bar(df["layer"].astype(int), df["size"].fillna(0).astype("int64"), color="#0072b2")
            ax.set_xlabel("layer")
            ax.set_ylabel("bytes of file data")
            ax.yaxis.set_major_formatter(lambda v, _pos: fmt(v))
            ax.set_title("Size per layer", fontsize=10)
            return ax
        if "path" not in self._df:
            raise TypeError(f"no quick plot for a {self.kind} frame")
        column = "reclaimable" if self.kind == "waste" else "size"
        top = self.largest(n, column)
        y = list(range(len(top)))
        hue = next((c for c in ("change", "status", "cause", "type") if c in top), None)
        palette = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9"]
        colors = "#0072b2"
        if hue is not None:
            levels = list(dict.fromkeys(top[hue].astype("string").fillna("?")))
            lut = {lv: palette[k % len(palette)] for k, lv in enumerate(levels)}
            colors = [lut[v] for v in top[hue].astype("string").fillna("?")]
            from matplotlib.patches import Patch

            ax.legend(
                handles=[Patch(color=c, label=lv) for lv, c in lut.items()],
                fontsize=8,
                frameon=False,
                loc="lower right",
            )
        ax.barh(y, top[column].fillna(0).astype("int64"), color=colors)
        labels = [p if len(p) <= 50 else "…" + p[-49:] for p in top["path"].astype(str)]
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(lambda v, _pos: fmt(v))
        ax.set_title(f"Largest {len(top)} paths ({self.kind}, by {column})", fontsize=10)
        return ax

    def _need(self, column: str) -> None:
        if column not in self._df:
            raise KeyError(f"a {self.kind} frame has no {column!r} column")
