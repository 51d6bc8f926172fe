"""``explore(img)``: a dive-like image explorer built from plain ipywidgets (no custom JS).

Left: the layers (index, size, build step) and the file tree of the chosen layer, the merged
filesystem as that layer leaves it, with marks for what the layer changed (``+`` added, ``~``
modified, ``-`` deleted) and ``!`` on paths where a secret was found. Right: any version of the
selected path in any layer, previewed as numbered text or a hex dump (size-capped), with secret
lines highlighted. Filters: changes of this layer, deleted files, wasted paths, secrets, and a
path search.

The tree is lazy: only expanded directories are listed (at most ``page`` children each, with a
"more" row), so a 70k-entry image renders a few dozen rows; a click re-lists only what is
visible. Re-running ``explore(img)`` on the same image restores the selection, the layer, the
filter and the expanded directories.
"""

from __future__ import annotations

import bisect
import html
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as W
import pandas as pd

from .display import human_size, index_with_findings, mask_text

__all__ = ["Explorer", "explore", "hexdump", "text_preview"]

ROOT = "/"
MORE = "\x00more\x00"  # option value prefix of a "show more children" row
NBSP = "\u00a0"
MAX_READ = 64 * 1024 * 1024  # files above this are not read for a preview
FILTERS = ("all", "changes", "deleted", "wasted", "secrets")
MARKS = {"added": "+", "modified": "~", "deleted": "-"}
_STATE: dict[str, dict[str, Any]] = {}  # per image: what re-running the cell restores

STYLE = """
<style>
.lf-tree select, .lf-layers select {font-family: var(--jp-code-font-family, monospace);
  font-size: 12px; white-space: pre}
.lf-preview pre {margin: 0; font-size: 12px; line-height: 1.35; max-height: 480px;
  overflow: auto; white-space: pre; font-family: var(--jp-code-font-family, monospace)}
.lf-preview .ln {color: var(--jp-ui-font-color3, #999); user-select: none}
.lf-preview .hit {background: #fde2e1; color: #9b1c1c; font-weight: bold}
.lf-details .widget-html-content, .lf-preview .widget-html-content,
.lf-status .widget-html-content {line-height: 1.3}
.lf-details td {padding: 0 10px 0 0; font-size: 12px; vertical-align: top; line-height: 1.3}
.lf-details table {border-collapse: collapse; margin-top: 2px}
.lf-legend {font-size: 12px; color: var(--jp-ui-font-color2, #555)}
</style>
"""


def _parent(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or ROOT


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1] or ROOT


# ---------------------------------------------------------------------------- previews
def hexdump(data: bytes, *, limit: int = 4096) -> str:
    """``xxd``-style text of the first ``limit`` bytes."""
    lines = []
    for off in range(0, min(len(data), limit), 16):
        chunk = data[off : off + 16]
        hexes = " ".join(chunk[i : i + 2].hex() for i in range(0, len(chunk), 2))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}: {hexes:<39}  {text}")
    if len(data) > limit:
        lines.append(f"… {len(data) - limit:,} more bytes not shown")
    return "\n".join(lines)


def _is_text(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(sample) - 4  # a multibyte char cut at the sample's end
    return True


def text_preview(data: bytes, *, limit: int = 65536, highlight: set[int] | None = None) -> str:
    """HTML ``<pre>`` of ``data``: numbered lines when it is text, else a hex dump.

    Parameters
    ----------
    data
        The bytes.
    limit
        Bytes shown at most (text); a hex dump shows at most 4 KiB.
    highlight
        1-based line numbers to highlight (secret findings).
    """
    highlight = highlight or set()
    if not _is_text(data):
        return f"<pre>{html.escape(hexdump(data))}</pre>"
    shown = data[:limit].decode("utf-8", errors="replace")
    lines = shown.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    width = len(str(len(lines)))
    out = []
    for i, line in enumerate(lines, 1):
        body = html.escape(line)
        if i in highlight:
            body = f"<span class='hit'>{body}</span>"
        out.append(f"<span class='ln'>{i:>{width}} │ </span>{body}")
    if len(data) > limit:
        out.append(f"<span class='ln'>… {len(data) - limit:,} more bytes not shown</span>")
    return "<pre>" + "\n".join(out) + "</pre>"


# ---------------------------------------------------------------------------- the lazy tree
@dataclass
class _View:
    """The rows of one (layer, filter, search) view, indexed for lazy listing."""

    rows: pd.DataFrame  # path, type, size, mark, vlayer, ventry (+ filesystem columns)
    children: dict[str, list[str]] = field(default_factory=dict)
    pos: dict[str, int] = field(default_factory=dict)
    synthetic: set[str] = field(default_factory=set)
    _sorted: set[str] = field(default_factory=set)
    _keys: list[str] = field(default_factory=list)
    _cum: list[int] = field(default_factory=list)

    @classmethod
    def build(cls, rows: pd.DataFrame, *, count_deleted: bool = True) -> _View:
        rows = rows.sort_values("path", kind="stable").reset_index(drop=True)
        paths = rows["path"].tolist()
        view = cls(rows)
        view.pos = {p: i for i, p in enumerate(paths)}
        children: dict[str, list[str]] = defaultdict(list)
        for p in paths:
            if p != ROOT:
                children[_parent(p)].append(p)
        known = set(view.pos) | {ROOT}
        for par in list(children):
            while par not in known:  # directories only implied by deeper paths
                known.add(par)
                view.synthetic.add(par)
                children[_parent(par)].append(par)
                par = _parent(par)
        view.children = dict(children)
        view._keys = paths
        sizes = rows["size"].fillna(0).astype("int64")
        if not count_deleted:  # deleted rows are shown but take no space any more
            sizes = sizes.where(rows["mark"].fillna("") != "-", 0)
        sizes = sizes.tolist()
        cum = [0]
        for s in sizes:
            cum.append(cum[-1] + s)
        view._cum = cum
        return view

    def is_dir(self, path: str) -> bool:
        if path == ROOT or path in self.synthetic or path in self.children:
            return True
        i = self.pos.get(path)
        return i is not None and self.rows.at[i, "type"] == "dir"

    def kids(self, path: str) -> list[str]:
        kids = self.children.get(path, [])
        if path not in self._sorted:
            kids.sort(key=lambda p: (not self.is_dir(p), _name(p)))
            self._sorted.add(path)
        return kids

    def subtree_size(self, path: str) -> int:
        """Bytes of every row at or below ``path`` (sorted paths + prefix sums: O(log n))."""
        if path == ROOT:
            return self._cum[-1]
        lo = bisect.bisect_left(self._keys, path)
        hi = bisect.bisect_left(self._keys, path + "0")  # "0" sorts right after "/"
        return self._cum[hi] - self._cum[lo]

    def row(self, path: str) -> pd.Series | None:
        i = self.pos.get(path)
        return None if i is None else self.rows.iloc[i]


# ---------------------------------------------------------------------------- the explorer
class Explorer:
    """The widget behind :func:`explore`. Children are attributes so tests can drive them.

    Attributes
    ----------
    layer_select : ipywidgets.Select
        Value: the layer index.
    filter : ipywidgets.ToggleButtons
        One of ``all``, ``changes``, ``deleted``, ``wasted``, ``secrets``.
    search : ipywidgets.Text
        Case-insensitive substring of the path; matches are expanded.
    tree : ipywidgets.Select
        Value: the selected path (a directory toggles open/closed when selected).
    version : ipywidgets.Dropdown
        Value: ``(layer, entry)`` of the version previewed.
    details, preview, status : ipywidgets.HTML
    widget : ipywidgets.VBox
        The whole explorer.
    """

    def __init__(
        self,
        img: Any,
        *,
        secrets: bool = True,
        page: int = 200,
        max_rows: int = 3000,
        preview_limit: int = 65536,
        key: str | None = None,
    ) -> None:
        self.img = img
        self.page = page
        self.max_rows = max_rows
        self.preview_limit = preview_limit
        self.key = key or f"{img.image_id}:{img.path}"
        self._busy = False
        self._views: dict[tuple[int, str], _View] = {}
        self._view: _View | None = None
        self._versions: dict[str, Any] | None = None
        self.expanded: set[str] = {ROOT}
        self.limits: dict[str, int] = {}

        self.findings = index_with_findings(img, secrets=secrets, desc="indexing layers")
        self.layers: pd.DataFrame = img.layers
        self.changes: pd.DataFrame = img.changes
        file_findings = (
            self.findings[self.findings["source"].astype("string") == "file"]
            if self.findings is not None and len(self.findings)
            else None
        )
        self.secret_paths: set[str] = (
            set(file_findings["path"].dropna().astype(str)) if file_findings is not None else set()
        )
        self._file_findings = file_findings
        raw = []
        if self.findings is not None and "secret" in self.findings:
            raw = [s for s in self.findings["secret"].dropna().astype(str) if "********" not in s]
        self._raw_secrets = raw
        self._waste_paths: set[str] | None = None

        # ---- widgets
        top = len(self.layers) - 1
        self.layer_select = W.Select(
            options=[(self._layer_label(r), int(r.layer)) for r in self.layers.itertuples()],
            value=top,
            rows=min(max(len(self.layers), 2), 8),
            layout=W.Layout(width="100%"),
        )
        self.layer_select.add_class("lf-layers")
        self.filter = W.ToggleButtons(
            options=list(FILTERS),
            value="all",
            style={"button_width": "78px"},
            tooltips=[
                "merged view after this layer",
                "what this layer changed",
                "deleted up to this layer",
                "paths stored more than once or deleted",
                "files with secret findings",
            ],
        )
        self.search = W.Text(
            placeholder="path contains… (Enter)",
            continuous_update=False,
            layout=W.Layout(width="240px"),
        )
        self.collapse = W.Button(
            description="collapse",
            icon="compress",
            tooltip="collapse the selected directory (or its parent)",
            layout=W.Layout(width="100px"),
        )
        self.status = W.HTML()
        self.status.add_class("lf-status")
        self.tree = W.Select(options=[], rows=24, layout=W.Layout(width="100%"))
        self.tree.add_class("lf-tree")
        self.version = W.Dropdown(options=[], description="version", layout=W.Layout(width="98%"))
        self.version.add_class("lf-version")
        self.details = W.HTML()
        self.details.add_class("lf-details")
        self.preview = W.HTML()
        self.preview.add_class("lf-preview")
        legend = (
            "<span class='lf-legend'>marks: <b>+</b> added · <b>~</b> modified · <b>-</b> deleted"
            " by the selected layer · <b>!</b> secret found · ▸/▾ directory (select to open/"
            "close)</span>"
        )
        title = html.escape(img.ref or img.image_id[:19])
        self.header = W.HTML(
            STYLE + f"<b>{title}</b> — {img.platform or ''}, "
            f"{len(self.layers)} layers &nbsp; {legend}"
        )
        self.widget = W.VBox(
            [
                self.header,
                self.layer_select,
                W.HBox([self.filter, self.search, self.collapse]),
                self.status,
                W.HBox(
                    [
                        W.Box([self.tree], layout=W.Layout(width="52%")),
                        W.VBox(
                            [self.version, self.details, self.preview], layout=W.Layout(width="48%")
                        ),
                    ]
                ),
            ]
        )
        self._restore()
        self.layer_select.observe(self._on_layer, "value")
        self.filter.observe(self._on_filter, "value")
        self.search.observe(self._on_search, "value")
        self.tree.observe(self._on_tree, "value")
        self.version.observe(self._on_version, "value")
        self.collapse.on_click(self._on_collapse)

    # ------------------------------------------------------------------ display protocol
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ state
    def _restore(self) -> None:
        state = _STATE.get(self.key)
        selected = None
        with self._quiet():
            if state:
                if state["layer"] in {v for _, v in self.layer_select.options}:
                    self.layer_select.value = state["layer"]
                self.filter.value = state["filter"]
                self.search.value = state["search"]
                self.expanded = set(state["expanded"])
                self.limits = dict(state["limits"])
                selected = state["selected"]
            self._refresh(select=selected)
        if selected is not None and self.tree.value == selected:
            self._show(selected, state.get("version") if state else None)

    def _save(self) -> None:
        _STATE[self.key] = {
            "layer": self.layer_select.value,
            "filter": self.filter.value,
            "search": self.search.value,
            "expanded": set(self.expanded),
            "limits": dict(self.limits),
            "selected": self.tree.value,
            "version": self.version.value,
        }

    class _Quiet:
        def __init__(self, ex: Explorer) -> None:
            self.ex = ex
            self.prev = False

        def __enter__(self) -> None:
            self.prev = self.ex._busy
            self.ex._busy = True

        def __exit__(self, *exc: object) -> None:
            self.ex._busy = self.prev

    def _quiet(self) -> Explorer._Quiet:
        return Explorer._Quiet(self)

    # ------------------------------------------------------------------ data for a view
    def _layer_label(self, r: Any) -> str:
        step = mask_text(r.created_by, getattr(self, "_raw_secrets", [])).strip()
        step = step.removeprefix("/bin/sh -c ").removeprefix("#(nop) ").strip()
        step = step if len(step) <= 90 else step[:89] + "…"
        return f"{int(r.layer):>3} {human_size(r.size):>9}  {step}".replace(" ", NBSP)

    def _base_rows(self, layer: int) -> pd.DataFrame:
        fs = self.img.filesystem(layer)
        rows = fs.assign(vlayer=fs["layer"], ventry=fs["entry"])
        ch = self.changes[self.changes["layer"] == layer]
        marks = dict(zip(ch["path"].astype(str), ch["change"].astype(str), strict=True))
        rows["mark"] = pd.array(
            [MARKS.get(marks.get(p, ""), "") for p in rows["path"]], dtype="string"
        )
        gone = ch[ch["change"] == "deleted"]
        deleted = pd.DataFrame(
            {
                "path": gone["path"].astype("string"),
                "type": gone["type"],
                "size": gone["size"],
                "vlayer": gone["prev_layer"],
                "ventry": gone["prev_entry"],
                "mark": pd.array(["-"] * len(gone), dtype="string"),
            }
        )
        return pd.concat([rows, deleted], ignore_index=True) if len(deleted) else rows

    def _deleted_rows(self, layer: int) -> pd.DataFrame:
        ch = self.changes
        gone = ch[(ch["layer"] <= layer) & (ch["change"] == "deleted")]
        gone = gone.drop_duplicates("path", keep="last")
        alive = set(self.img.filesystem(layer)["path"].astype(str))
        gone = gone[~gone["path"].astype(str).isin(alive)]
        return pd.DataFrame(
            {
                "path": gone["path"].astype("string"),
                "type": gone["type"],
                "size": gone["size"],
                "vlayer": gone["prev_layer"],
                "ventry": gone["prev_entry"],
                "mark": pd.array(
                    ["-" if n == layer else "" for n in gone["layer"]], dtype="string"
                ),
                "deleted_layer": gone["layer"].astype("Int64"),
            }
        )

    def _wasted(self) -> set[str]:
        if self._waste_paths is None:
            fn = getattr(self.img, "waste", None)
            try:
                if fn is not None:
                    w = fn() if callable(fn) else fn
                else:
                    from .waste import waste

                    w = waste(self.img)
                self._waste_paths = set(w["path"].astype(str))
            except Exception:
                self._waste_paths = set()
        return self._waste_paths

    def _rows(self, layer: int, flt: str) -> pd.DataFrame:
        if flt == "all":
            return self._base_rows(layer)
        if flt == "changes":
            base = self._base_rows(layer)
            return base[base["mark"] != ""]
        if flt == "deleted":
            return self._deleted_rows(layer)
        base = self._base_rows(layer)
        more = self._deleted_rows(layer)
        more = more[~more["path"].isin(set(base["path"].astype(str)))]
        both = pd.concat([base, more], ignore_index=True) if len(more) else base
        keep = self._wasted() if flt == "wasted" else self.secret_paths
        return both[both["path"].astype(str).isin(keep)]

    def view(self) -> _View:
        """The current view (built once per layer and filter, then narrowed by the search)."""
        k = (int(self.layer_select.value), str(self.filter.value))
        if k not in self._views:
            self._views[k] = _View.build(self._rows(*k), count_deleted=k[1] != "all")
        v = self._views[k]
        needle = self.search.value.strip().lower()
        if needle:
            paths = v.rows["path"].astype(str)
            hit = paths.str.lower().str.contains(needle, regex=False)
            v = _View.build(
                v.rows[hit.to_numpy()].head(self.max_rows), count_deleted=self.filter.value != "all"
            )
        return v

    # ------------------------------------------------------------------ listing
    def _label(self, v: _View, path: str, depth: int) -> str:
        row = v.row(path)
        is_dir = v.is_dir(path)
        mark = "" if row is None or row["mark"] is pd.NA else str(row["mark"])
        secret = "!" if path in self.secret_paths else " "
        size = v.subtree_size(path) if is_dir else (0 if row is None else row["size"])
        arrow = ("▾ " if path in self.expanded or self._searching() else "▸ ") if is_dir else "  "
        name = _name(path) + ("/" if is_dir and path != ROOT else "")
        extra = ""
        if row is not None and row["type"] == "symlink" and row.get("linkname") is not pd.NA:
            extra = f" → {row.get('linkname')}"
        elif row is not None and row["type"] not in ("file", "dir"):
            extra = f" ({row['type']})"
        label = f"{mark or ' '}{secret}{human_size(size):>9}  {'  ' * depth}{arrow}{name}{extra}"
        return label.replace(" ", NBSP)  # browsers collapse plain spaces in <option>

    def _searching(self) -> bool:
        return bool(self.search.value.strip())

    def _listing(self, v: _View) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        open_all = self._searching()
        stack: list[tuple[str, int]] = [(p, 0) for p in reversed(v.kids(ROOT))]
        shown_here: dict[str, int] = defaultdict(int)
        while stack and len(out) < self.max_rows:
            path, depth = stack.pop()
            if path.startswith(MORE):
                d = path[len(MORE) :]
                rest = len(v.kids(d)) - self.limits.get(d, self.page)
                text = f"{'':11}  {'  ' * depth}… {rest:,} more (select to show)"
                out.append((text.replace(" ", NBSP), path))
                continue
            out.append((self._label(v, path, depth), path))
            if v.is_dir(path) and (open_all or path in self.expanded):
                kids = v.kids(path)
                limit = self.limits.get(path, self.page)
                shown_here[path] = min(len(kids), limit)
                if len(kids) > limit:
                    stack.append((MORE + path, depth + 1))
                stack.extend((k, depth + 1) for k in reversed(kids[:limit]))
        return out

    def _refresh(self, select: str | None = None) -> None:
        v = self._view = self.view()
        options = self._listing(v)
        values = {val for _, val in options}
        with self._quiet():
            self.tree.options = options
            self.tree.value = select if select in values else None
        n_rows = len(v.rows)
        what = {
            "all": "paths after this layer",
            "changes": "changes in this layer",
            "deleted": "deleted paths",
            "wasted": "wasted paths",
            "secrets": "paths with secrets",
        }[str(self.filter.value)]
        search = f" matching “{html.escape(self.search.value)}”" if self._searching() else ""
        self.status.value = (
            f"<span class='lf-legend'>layer {self.layer_select.value}: {n_rows:,} {what}{search};"
            f" {len(options):,} rows listed</span>"
        )

    # ------------------------------------------------------------------ events
    def _on_layer(self, change: dict[str, Any]) -> None:
        if self._busy:
            return
        keep = self.tree.value
        self._refresh(select=keep if isinstance(keep, str) else None)
        if self.tree.value:
            self._show(self.tree.value)
        self._save()

    def _on_filter(self, change: dict[str, Any]) -> None:
        self._on_layer(change)

    def _on_search(self, change: dict[str, Any]) -> None:
        self._on_layer(change)

    def _on_tree(self, change: dict[str, Any]) -> None:
        if self._busy:
            return
        path = change["new"]
        if path is None:
            return
        if path.startswith(MORE):
            d = path[len(MORE) :]
            self.limits[d] = self.limits.get(d, self.page) + self.page
            self._refresh(select=d)
            self._save()
            return
        v = self._view
        if v is not None and v.is_dir(path) and not self._searching():
            if path in self.expanded:
                self.expanded.discard(path)
            else:
                self.expanded.add(path)
            self._refresh(select=path)
        self._show(path)
        self._save()

    def _on_collapse(self, _button: Any) -> None:
        path = self.tree.value
        if not path or path.startswith(MORE):
            return
        v = self._view
        target = (
            path if v is not None and v.is_dir(path) and path in self.expanded else _parent(path)
        )
        self.expanded.discard(target)
        self._refresh(select=target if target != ROOT else None)
        self._save()

    def _on_version(self, change: dict[str, Any]) -> None:
        if self._busy or change["new"] is None:
            return
        self._preview(self.tree.value, *change["new"])
        self._save()

    # ------------------------------------------------------------------ details and preview
    def _version_index(self) -> dict[str, Any]:
        if self._versions is None:
            files = self.img.files
            content = files[~files["type"].isin(["whiteout", "opaque"])]
            self._versions = content.groupby(content["path"].astype(str), sort=False).indices
            self._content_files = content
        return self._versions

    def _show(self, path: str, version: tuple[int, int] | None = None) -> None:
        v = self._view
        row = v.row(path) if v is not None else None
        if row is None:  # a directory only implied by deeper paths
            size = v.subtree_size(path) if v is not None else 0
            with self._quiet():
                self.version.options = []
            self.details.value = (
                f"<b>{html.escape(path)}</b><br>directory (no entry of its own) · "
                f"{len(v.kids(path)) if v else 0} children · {human_size(size)} below"
            )
            self.preview.value = ""
            return
        idx = self._version_index().get(path, [])
        versions = self._content_files.iloc[idx] if len(idx) else self._content_files.iloc[:0]
        options = [
            (
                f"layer {int(r.layer)} · {r.type} · {human_size(r.size)} · {self._fate(pd.Series(r._asdict()))}",  # noqa: E501
                (int(r.layer), int(r.entry)),
            )
            for r in versions.itertuples()
        ]
        own = (
            (int(row["vlayer"]), int(row["ventry"]))
            if row["vlayer"] is not pd.NA and row["ventry"] is not pd.NA
            else None
        )
        wanted = version if version in {o[1] for o in options} else own
        with self._quiet():
            self.version.options = options
            self.version.value = (
                wanted
                if wanted in {o[1] for o in options}
                else (options[-1][1] if options else None)
            )
        if self.version.value is None:
            self.details.value = self._details(path, row, None)
            self.preview.value = ""
            return
        self._preview(path, *self.version.value)

    def _details(self, path: str, row: pd.Series, f: pd.Series | None) -> str:
        src = f if f is not None else row
        kinds = {"dir": stat.S_IFDIR, "symlink": stat.S_IFLNK}
        mode = src.get("mode", pd.NA)
        mode_s = (
            ""
            if mode is pd.NA
            else stat.filemode(int(mode) | kinds.get(str(src["type"]), stat.S_IFREG))
        )
        items = [
            ("type", src["type"]),
            ("size", human_size(src["size"])),
            ("mode", f"{mode_s} ({int(mode):o})" if mode_s else ""),
            ("owner", f"{src.get('uid', '')}:{src.get('gid', '')}"),
            ("mtime", src.get("mtime", "")),
            ("version", f"layer {src['layer']}, entry {src['entry']}" if f is not None else ""),
            ("fate", self._fate(f) if f is not None else ""),
            ("link", src.get("linkname", "")),
            ("sha256", str(src.get("sha256", ""))[:16]),
        ]
        mark = row.get("mark", "")
        if mark is not pd.NA and mark:
            what = {"+": "added", "~": "modified", "-": "deleted"}[mark]
            items.insert(0, (f"in layer {self.layer_select.value}", what))
        cells = "".join(
            f"<tr><td>{k}</td><td>{html.escape(str(val))}</td></tr>"
            for k, val in items
            if val is not None and val is not pd.NA and str(val) not in ("", "<NA>", "nan")
        )
        return f"<b>{html.escape(path)}</b><table>{cells}</table>"

    @staticmethod
    def _fate(f: pd.Series) -> str:
        status, by = str(f.get("status", "")), f.get("status_layer", pd.NA)
        if status in ("deleted", "overwritten") and by is not pd.NA:
            return f"{status} by layer {int(by)}"
        if status == "shadowed":
            return "shadowed by a later entry of the same layer"
        return "present in the final filesystem" if status == "present" else status

    def _hits(self, layer: int, entry: int) -> pd.DataFrame | None:
        ff = self._file_findings
        if ff is None:
            return None
        return ff[(ff["layer"] == layer) & (ff["entry"] == entry)]

    def _preview(self, path: str, layer: int, entry: int) -> None:
        f = self.img.files.loc[
            (self.img.files["layer"] == layer) & (self.img.files["entry"] == entry)
        ].iloc[0]
        v = self._view
        row = v.row(path) if v is not None else None
        self.details.value = self._details(path, row if row is not None else f, f)
        if f["type"] not in ("file", "hardlink"):
            target = f.get("linkname", pd.NA)
            self.preview.value = (
                f"<pre>{html.escape(str(f['type']))}"
                + (f" → {html.escape(str(target))}" if target is not pd.NA else "")
                + "</pre>"
            )
            return
        size = f.get("size", pd.NA)
        if f["type"] == "file" and size is not pd.NA and int(size) > MAX_READ:
            # read_entry has no byte range yet: never pull a huge file into the kernel for a peek
            self.preview.value = (
                f"<pre>{human_size(size)}: too large to preview here; use "
                f"img.read_entry({layer}, {entry})</pre>"
            )
            return
        try:
            data = self.img.read_entry(layer, entry)
        except Exception as exc:  # e.g. a hardlink whose target is gone
            self.preview.value = f"<pre>cannot read: {html.escape(str(exc))}</pre>"
            return
        hits = self._hits(layer, entry)
        lines: set[int] = set()
        note = ""
        if hits is not None and len(hits):
            lines = {int(x) for x in hits["line"].dropna()}
            rules = ", ".join(sorted(set(hits["rule"].astype(str))))
            note = (
                f"<div class='lf-legend'>⚠ {len(hits)} secret finding(s): "
                f"{html.escape(rules)} (highlighted)</div>"
            )
        head = (
            f"<div class='lf-legend'>{human_size(len(data))}, layer {layer}"
            f"{' (first ' + human_size(self.preview_limit) + ')' if len(data) > self.preview_limit else ''}"  # noqa: E501
            "</div>"
        )
        self.preview.value = (
            note + head + text_preview(data, limit=self.preview_limit, highlight=lines)
        )

    # ------------------------------------------------------------------ convenience for tests
    def select(self, path: str) -> None:
        """Open the ancestors of ``path`` and select it (as a click would)."""
        p = _parent(path)
        while p != ROOT:
            self.expanded.add(p)
            p = _parent(p)
        self._refresh()
        self.tree.value = path

    def rows(self) -> list[str]:
        """The labels currently listed in the tree (plain spaces)."""
        return [label.replace(NBSP, " ") for label, _ in self.tree.options]


def explore(img: Any, **kwargs: Any) -> Explorer:
    """Open the interactive explorer on an image (display it as the last line of a cell).

    Parameters
    ----------
    img
        An opened :class:`layerforensics.Image`.
    **kwargs
        ``secrets`` (bool, default True: run ``img.secrets()`` when the Image offers it),
        ``page`` (children listed per directory before a "more" row, default 200),
        ``max_rows`` (rows listed at most, default 3000), ``preview_limit`` (bytes of text
        previewed, default 64 KiB), ``key`` (state key; default: image id and path).

    Returns
    -------
    Explorer
        Displayable; its child widgets are attributes (see :class:`Explorer`).
    """
    return Explorer(img, **kwargs)
