"""The overlay replay: the OCI layer rules applied to the entries of every layer.

Layers are applied bottom first. Within one layer, opaque markers and whiteouts act before the
layer's own entries, whatever their position in the tar, and only on lower layers (OCI
image-spec, layer.md: "Whiteout files MUST only apply to resources in lower/parent layers").
Then entries apply in tar order: a directory over a directory merges attributes; anything else
replaces what was there, and a non-directory replacing a directory removes its whole subtree.
A hardlink is resolved when it is applied, against the merged view at that moment, so it keeps
the bytes of its source even if that source is deleted later.

The replay records, for every entry, what became of it (``status``, ``status_layer``), every
change event, and the merged filesystem at the end. Nothing here reads bytes.

Most layers remove nothing: no markers, no path twice, no directory replaced by a
non-directory. Such a layer is applied in bulk, with set and dict operations instead of one step
per entry; the result is the same as the step-by-step replay (the property test checks both
against a real directory and against each other).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat

from ._tarscan import TarEntry

Version = tuple[int, int]  # (layer, entry index)

MARKER_TYPES = frozenset({"whiteout", "opaque", "aufs-meta"})

#: What became of an entry; ``ReplayResult.status`` holds indexes into this tuple.
STATUSES = ("present", "overwritten", "deleted", "shadowed", "marker")
PRESENT, OVERWRITTEN, DELETED, SHADOWED, MARKER = range(len(STATUSES))
#: ``ChangeLog.change`` and ``ChangeLog.cause`` hold indexes into these.
CHANGES = ("added", "modified", "deleted")
ADDED, MODIFIED, REMOVED = range(len(CHANGES))
CAUSES = ("write", "whiteout", "opaque", "type-change")
WRITE, WHITEOUT, OPAQUE, TYPE_CHANGE = range(len(CAUSES))
_UNCHANGED = -1  # a write event cancelled by a later identical write of the same layer
_SCANS_BEFORE_INDEX = 16  # subtree removals done by scanning before the index is built


@dataclass(slots=True)
class ChangeLog:
    """Change events as columns (one list per field, one position per event).

    ``ver_layer``/``ver_entry`` name the version written (added, modified) or removed
    (deleted); ``prev_layer``/``prev_entry`` the lower version replaced or removed (-1: none).
    """

    layer: list[int] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    change: list[int] = field(default_factory=list)
    ver_layer: list[int] = field(default_factory=list)
    ver_entry: list[int] = field(default_factory=list)
    prev_layer: list[int] = field(default_factory=list)
    prev_entry: list[int] = field(default_factory=list)
    cause: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.layer)

    def add(
        self, layer: int, path: str, change: int, version: Version, prev: Version | None, cause: int
    ) -> None:
        self.layer.append(layer)
        self.path.append(path)
        self.change.append(change)
        self.ver_layer.append(version[0])
        self.ver_entry.append(version[1])
        self.prev_layer.append(prev[0] if prev else -1)
        self.prev_entry.append(prev[1] if prev else -1)
        self.cause.append(cause)

    def set(self, i: int, change: int, version: Version, prev: Version | None, cause: int) -> None:
        self.change[i] = change
        self.ver_layer[i], self.ver_entry[i] = version
        self.prev_layer[i], self.prev_entry[i] = prev if prev else (-1, -1)
        self.cause[i] = cause

    def added_in_bulk(self, layer: int, paths: list[str], entries: Sequence[int]) -> None:
        n = len(paths)
        self.layer.extend(repeat(layer, n))
        self.path.extend(paths)
        self.change.extend(repeat(ADDED, n))
        self.ver_layer.extend(repeat(layer, n))
        self.ver_entry.extend(entries)
        self.prev_layer.extend(repeat(-1, n))
        self.prev_entry.extend(repeat(-1, n))
        self.cause.extend(repeat(WRITE, n))

    def without_cancelled(self) -> ChangeLog:
        if _UNCHANGED not in self.change:
            return self
        keep = [i for i, c in enumerate(self.change) if c != _UNCHANGED]
        return ChangeLog(*([column[i] for i in keep] for column in self.columns()))

    def columns(self) -> tuple[list, ...]:
        return (
            self.layer,
            self.path,
            self.change,
            self.ver_layer,
            self.ver_entry,
            self.prev_layer,
            self.prev_entry,
            self.cause,
        )


@dataclass(slots=True)
class Removal:
    version: Version
    deleted_layer: int
    cause: int


@dataclass
class ReplayResult:
    """What the replay learned. ``status``/``status_layer`` are indexed ``[layer][entry]``."""

    state: dict[str, Version]
    status: list[list[int]]
    status_layer: list[list[int]]
    changes: ChangeLog
    removed: dict[str, Removal]
    link_targets: dict[Version, Version | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _same_content(a: TarEntry, b: TarEntry) -> bool:
    return (
        a.type == b.type
        and a.mode == b.mode
        and a.uid == b.uid
        and a.gid == b.gid
        and a.sha256 == b.sha256
        and a.linkname == b.linkname
        and (a.devmajor, a.devminor) == (b.devmajor, b.devminor)
    )


class _Replay:
    """The replay's state while layers are applied; :func:`replay` drives it."""

    def __init__(self, layers: list[list[TarEntry]]) -> None:
        self.layers = layers
        self.state: dict[str, Version] = {}
        # eStargz TOC and landmark entries are the format's, not the image's: never applied.
        self.status = [
            [MARKER if e.type in MARKER_TYPES or e.synthetic else PRESENT for e in es]
            for es in layers
        ]
        self.status_layer = [[-1] * len(es) for es in layers]
        self.changes = ChangeLog()
        self.removed: dict[str, Removal] = {}
        self.link_targets: dict[Version, Version | None] = {}
        self.notes: list[str] = []
        # The parent -> children index serves subtree removals only. The first few removals
        # scan the paths instead; the index is built for the next and kept up to date from then
        # on. Most images (a base layer above all) never need it.
        self.children: dict[str, set[str]] | None = None
        self.scans = 0

    def entry(self, v: Version) -> TarEntry:
        return self.layers[v[0]][v[1]]

    # -------------------------------------------------------------- subtree removals
    def subtree_index(self) -> dict[str, set[str]]:
        if self.children is None:
            self.children = {}
            for p in self.state:
                self.link(p)
        return self.children

    def link(self, path: str) -> None:
        children = self.children
        assert children is not None
        while path != "/":
            parent = path.rpartition("/")[0] or "/"
            siblings = children.get(parent)
            if siblings is None:
                children[parent] = {path}
                path = parent
                continue
            siblings.add(path)
            return

    def remove(self, paths: list[str], layer: int, cause: int, include_self: bool) -> None:
        """Remove the subtrees of ``paths`` (and the paths themselves if ``include_self``)."""
        if not paths:
            return
        state = self.state
        if self.children is None and self.scans < _SCANS_BEFORE_INDEX:
            # A few removals: one pass over the paths, cheaper than building the index.
            self.scans += 1
            prefixes = tuple("/" if p == "/" else p + "/" for p in paths)
            victims = [p for p in state if p.startswith(prefixes)]
            if include_self:
                victims += [p for p in paths if p in state]
        else:
            children = self.subtree_index()
            victims = []
            for path in paths:
                stack = [path] if include_self else list(children.pop(path, ()))
                while stack:
                    p = stack.pop()
                    stack.extend(children.pop(p, ()))
                    victims.append(p)
                if include_self and path != "/":
                    siblings = children.get(path.rpartition("/")[0] or "/")
                    if siblings is not None:
                        siblings.discard(path)
        for p in victims:
            v = state.pop(p, None)
            if v is None:
                continue  # already removed (a path under two of `paths`)
            self.status[v[0]][v[1]] = DELETED
            self.status_layer[v[0]][v[1]] = layer
            self.removed[p] = Removal(v, layer, cause)
            self.changes.add(layer, p, REMOVED, v, v, cause)

    # -------------------------------------------------------------- hardlinks
    def resolve_link(
        self, layer: int, version: Version, e: TarEntry, target: Version | None
    ) -> None:
        """Record what the hardlink ``version`` shares bytes with (``target``: its source now)."""
        if target is not None and self.entry(target).type == "hardlink":
            target = self.link_targets.get(target)
        if target is None or self.entry(target).type != "file":
            self.notes.append(
                f"layer {layer}: hardlink {e.path} -> {e.linkname} has no file target"
            )
            target = None
        self.link_targets[version] = target

    def effective(self, v: Version) -> TarEntry:
        """The entry itself, or for a hardlink the file it resolves to (content comparisons)."""
        e = self.entry(v)
        if e.type == "hardlink":
            target = self.link_targets.get(v)
            if target is not None:
                t = self.entry(target)
                # A hardlink compares like the file it shares an inode with.
                return TarEntry(
                    e.path, "file", t.size, t.mode, t.uid, t.gid, t.uname, t.gname, t.mtime,
                    None, None, t.offset, t.sha256, t.xattrs, 0, 0, False,
                )  # fmt: skip
        return e

    def event(self, base: Version, version: Version) -> tuple[int, int]:
        """``(change, cause)`` of writing ``version`` over the lower ``base``."""
        before, after = self.effective(base), self.effective(version)
        if before.type != after.type:
            return MODIFIED, TYPE_CHANGE
        if _same_content(before, after):
            return _UNCHANGED, WRITE  # rewritten identically: not a change
        return MODIFIED, WRITE

    # -------------------------------------------------------------- one layer
    def apply(self, layer: int, *, bulk: bool = True) -> None:
        entries = self.layers[layer]
        if not (bulk and self._apply_in_bulk(layer, entries, [e.path for e in entries])):
            self._apply_stepwise(layer, entries)

    def _apply_in_bulk(self, layer: int, entries: list[TarEntry], paths: list[str]) -> bool:
        """Apply a layer that removes nothing; False if it does more (or repeats a path)."""
        status = self.status[layer]
        if MARKER in status:
            return False
        unique = set(paths)
        if len(unique) != len(paths):
            return False  # a path twice in one layer: tar order decides, step by step
        state = self.state
        merged = unique & state.keys()
        merged.discard("/")
        index_of: dict[str, int] | None = None
        if merged:
            index_of = dict(zip(paths, range(len(paths)), strict=True))
            for p in merged:
                if self.entry(state[p]).type == "dir" and entries[index_of[p]].type != "dir":
                    return False  # a directory replaced: its subtree goes, step by step
        # Hardlinks resolve against the merged view at their position in the tar: an earlier
        # entry of this layer, else the lower layers.
        links = [i for i, e in enumerate(entries) if e.type == "hardlink"]
        if links:
            if index_of is None:
                index_of = dict(zip(paths, range(len(paths)), strict=True))
            for i in links:
                e = entries[i]
                t = index_of.get(e.linkname or "")
                target = (layer, t) if t is not None and t < i else state.get(e.linkname or "")
                self.resolve_link(layer, (layer, i), e, target)

        # Lower versions written over: overwritten, and a change event if they differ.
        for p in merged:
            prev = state[p]
            version = (layer, index_of[p])  # type: ignore[index]
            self.status[prev[0]][prev[1]] = OVERWRITTEN
            self.status_layer[prev[0]][prev[1]] = layer
            kind, cause = self.event(prev, version)
            if kind != _UNCHANGED:
                self.changes.add(layer, p, kind, version, prev, cause)
        # New paths: added. The root directory's own entry carries attributes only.
        root = "/" in unique
        if merged or root:
            new: Sequence[int] = [i for i, p in enumerate(paths) if p not in merged and p != "/"]
            new_paths = [paths[i] for i in new]
        else:
            new, new_paths = range(len(paths)), paths
        if self.removed:
            for p in unique & self.removed.keys():
                del self.removed[p]
        self.changes.added_in_bulk(layer, new_paths, new)
        if root:
            state.update((p, (layer, i)) for i, p in enumerate(paths) if p != "/")
        else:
            state.update(zip(paths, zip(repeat(layer), range(len(paths))), strict=True))
        if self.children is not None:
            for p in new_paths:
                self.link(p)
        return True

    def _apply_stepwise(self, layer: int, entries: list[TarEntry]) -> None:
        state, status, status_layer = self.state, self.status, self.status_layer
        # 1. Opaque markers and whiteouts act first, on lower layers only.
        opaque = [e.whiteout_target for e in entries if e.type == "opaque" and e.whiteout_target]
        self.remove(opaque, layer, OPAQUE, include_self=False)
        hidden = [e.whiteout_target for e in entries if e.type == "whiteout" and e.whiteout_target]
        self.remove(hidden, layer, WHITEOUT, include_self=True)
        # 2. The layer's own entries, in tar order.
        change_at: dict[str, int] = {}  # path -> position in `changes` of this layer's write
        base_of: dict[str, Version | None] = {}  # the lower version this layer replaced
        for i, e in enumerate(entries):
            if status[layer][i] == MARKER:
                continue
            path = e.path
            if path == "/":
                continue  # the root directory's own entry: attributes only
            version = (layer, i)
            prev = state.get(path)
            if prev is not None and prev[0] == layer:
                status[layer][prev[1]] = SHADOWED
                status_layer[layer][prev[1]] = layer
                base = base_of.get(path)
            else:
                base = prev
                base_of[path] = prev
                if prev is not None:
                    status[prev[0]][prev[1]] = OVERWRITTEN
                    status_layer[prev[0]][prev[1]] = layer
            if e.type == "hardlink":
                self.resolve_link(layer, version, e, state.get(e.linkname or ""))
            if prev is not None and self.entry(prev).type == "dir" and e.type != "dir":
                self.remove([path], layer, TYPE_CHANGE, include_self=False)
            state[path] = version
            self.removed.pop(path, None)
            if self.children is not None:
                self.link(path)
            # The change event of this (layer, path), compared with the lower version.
            kind, cause = (ADDED, WRITE) if base is None else self.event(base, version)
            if path in change_at:
                self.changes.set(change_at[path], kind, version, base, cause)
            elif kind != _UNCHANGED:
                change_at[path] = len(self.changes)
                self.changes.add(layer, path, kind, version, base, cause)


def replay(
    layers: list[list[TarEntry]], upto: int | None = None, *, bulk: bool = True
) -> ReplayResult:
    """Apply ``layers[0..upto]`` (all by default) with the OCI rules.

    ``bulk=False`` applies every layer entry by entry (the tests compare both ways).

    Returns
    -------
    ReplayResult
        ``state`` maps each path of the merged filesystem to the version that provides it.
    """
    top = len(layers) - 1 if upto is None else upto
    r = _Replay(layers)
    for layer in range(top + 1):
        r.apply(layer, bulk=bulk)
    return ReplayResult(
        r.state,
        r.status,
        r.status_layer,
        r.changes.without_cancelled(),
        r.removed,
        r.link_targets,
        r.notes,
    )
