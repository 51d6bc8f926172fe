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
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._tarscan import TarEntry

Version = tuple[int, int]  # (layer, entry index)

MARKER_TYPES = frozenset({"whiteout", "opaque", "aufs-meta"})


@dataclass(slots=True)
class Change:
    layer: int
    path: str
    change: str  # added, modified, deleted
    version: Version  # the version written (added/modified) or removed (deleted)
    prev: Version | None
    cause: str  # write, whiteout, opaque, type-change


@dataclass(slots=True)
class Removal:
    version: Version
    deleted_layer: int
    cause: str


@dataclass
class ReplayResult:
    """What the replay learned. Lists are indexed like ``layers[layer][entry]``."""

    state: dict[str, Version]
    status: list[list[str]]
    status_layer: list[list[int]]
    changes: list[Change]
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


def replay(layers: list[list[TarEntry]], upto: int | None = None) -> ReplayResult:
    """Apply ``layers[0..upto]`` (all by default) with the OCI rules.

    Returns
    -------
    ReplayResult
        ``state`` maps each path of the merged filesystem to the version that provides it.
    """
    top = len(layers) - 1 if upto is None else upto
    state: dict[str, Version] = {}
    # eStargz TOC and landmark entries are the format's, not the image's: never applied.
    status = [
        ["marker" if e.type in MARKER_TYPES or e.synthetic else "present" for e in es]
        for es in layers
    ]
    status_layer = [[-1] * len(es) for es in layers]
    changes: list[Change] = []
    removed: dict[str, Removal] = {}
    link_targets: dict[Version, Version | None] = {}
    notes: list[str] = []

    def entry(v: Version) -> TarEntry:
        return layers[v[0]][v[1]]

    # The parent -> children index serves subtree removals only. It is built on the first
    # removal and kept up to date from then on: most entries (a base layer) never need it.
    children: dict[str, set[str]] | None = None

    def subtree_index() -> dict[str, set[str]]:
        nonlocal children
        if children is None:
            children = {}
            for p in state:
                link(p)
        return children

    def link(path: str) -> None:
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

    def remove(path: str, layer: int, cause: str, include_self: bool) -> None:
        children = subtree_index()
        stack = [path] if include_self else list(children.pop(path, ()))
        while stack:
            p = stack.pop()
            stack.extend(children.pop(p, ()))
            v = state.pop(p, None)
            if v is None:
                continue
            status[v[0]][v[1]] = "deleted"
            status_layer[v[0]][v[1]] = layer
            removed[p] = Removal(v, layer, cause)
            changes.append(Change(layer, p, "deleted", v, v, cause))
        if include_self and path != "/":
            siblings = children.get(path.rpartition("/")[0] or "/")
            if siblings is not None:
                siblings.discard(path)

    for layer in range(top + 1):
        entries = layers[layer]
        # 1. Opaque markers and whiteouts act first, on lower layers only.
        for e in entries:
            if e.type == "opaque" and e.whiteout_target is not None:
                remove(e.whiteout_target, layer, "opaque", include_self=False)
        for e in entries:
            if e.type == "whiteout" and e.whiteout_target is not None:
                remove(e.whiteout_target, layer, "whiteout", include_self=True)
        # 2. The layer's own entries, in tar order.
        change_at: dict[str, int] = {}  # path -> index in `changes` of this layer's write event
        base_of: dict[str, Version | None] = {}  # the lower version this layer replaced
        for i, e in enumerate(entries):
            if e.type in MARKER_TYPES or e.synthetic:
                continue
            path = e.path
            if path == "/":
                continue  # the root directory's own entry: attributes only
            version = (layer, i)
            prev = state.get(path)
            if prev is not None and prev[0] == layer:
                status[layer][prev[1]] = "shadowed"
                status_layer[layer][prev[1]] = layer
                base = base_of.get(path)
            else:
                base = prev
                base_of[path] = prev
                if prev is not None:
                    status[prev[0]][prev[1]] = "overwritten"
                    status_layer[prev[0]][prev[1]] = layer
                    removed.pop(path, None)
            if e.type == "hardlink":
                target = state.get(e.linkname or "")
                if target is not None and entry(target).type == "hardlink":
                    target = link_targets.get(target)
                if target is None or entry(target).type != "file":
                    notes.append(
                        f"layer {layer}: hardlink {path} -> {e.linkname} has no file target"
                    )
                    target = None
                link_targets[version] = target
            if prev is not None and entry(prev).type == "dir" and e.type != "dir":
                remove(path, layer, "type-change", include_self=False)
            state[path] = version
            removed.pop(path, None)
            if children is not None:
                link(path)
            # The change event of this (layer, path), compared with the lower version.
            if base is None:
                kind, cause = "added", "write"
            else:
                before = _effective(layers, base, link_targets)
                after = _effective(layers, version, link_targets)
                if before.type != after.type:
                    kind, cause = "modified", "type-change"
                elif _same_content(before, after):
                    kind, cause = "", ""
                else:
                    kind, cause = "modified", "write"
            if path in change_at:
                idx = change_at[path]
                if kind:
                    changes[idx] = Change(layer, path, kind, version, base, cause)
                else:
                    changes[idx].change = "unchanged"
            elif kind:
                change_at[path] = len(changes)
                changes.append(Change(layer, path, kind, version, base, cause))
    changes = [c for c in changes if c.change != "unchanged"]
    return ReplayResult(state, status, status_layer, changes, removed, link_targets, notes)


def _effective(
    layers: list[list[TarEntry]], v: Version, link_targets: dict[Version, Version | None]
) -> TarEntry:
    """The entry itself, or for a hardlink the file it resolves to (content comparisons)."""
    e = layers[v[0]][v[1]]
    if e.type == "hardlink":
        target = link_targets.get(v)
        if target is not None:
            t = layers[target[0]][target[1]]
            # A hardlink compares like the file it shares an inode with.
            return TarEntry(
                e.path,
                "file",
                t.size,
                t.mode,
                t.uid,
                t.gid,
                t.uname,
                t.gname,
                t.mtime,
                None,
                None,
                t.offset,
                t.sha256,
                t.xattrs,
                0,
                0,
                False,
            )
    return e
