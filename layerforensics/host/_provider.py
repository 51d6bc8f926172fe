"""A layer read from a directory of the seized tree: the core's :class:`LayerProvider`.

Three on-disk encodings are understood:

- ``overlay``: an overlay ``diff``/``upper`` directory (overlay2, overlay, containers/storage):
  a deletion is a character device 0:0, an opaque directory carries ``trusted.overlay.opaque``
  or ``user.overlay.opaque`` = ``y``;
- ``aufs``: real ``.wh.<name>`` files, ``.wh..wh..opq`` markers, ``.wh..wh.*`` bookkeeping;
- ``full``: a complete root filesystem per layer (overlay v1 image ``root`` dirs, vfs): its own
  contribution is what differs from the parent layer's root.

When the layer's ``tar-split`` record is available the entries come out in the original tar's
order with the original header's names (uname/gname), so that an untouched layer gives exactly
the rows its ``docker save`` tar gives; every attribute and every byte still comes from the
disk, and files on disk that the record does not list are appended after it (an implant shows
up as an added entry).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from .._sources._model import LayerInfo
from .._tarscan import OPAQUE_MARKER, WHITEOUT_PREFIX, TarEntry
from ._fs import HostFS, Node
from ._tarsplit import SplitEntry, read_tar_split

__all__ = ["DiskLayer", "DiskLayerProvider"]

_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_SKIP_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.", "security.selinux")


@dataclass(slots=True)
class DiskLayer:
    """Where one layer sits in the evidence."""

    root: str  # relative path of the directory in the HostFS
    kind: str  # overlay | aufs | full
    tar_split: str | None = None  # relative path of the gzipped tar-split record
    parent_root: str | None = None  # for kind == "full": the parent layer's root
    label: str = ""
    #: relative path of the layer blob it was unpacked from (containerd's content store), the
    #: reference ``verify`` checks the directory against when there is no tar-split record
    blob: str | None = None
    notes: list[str] = field(default_factory=list)


def _is_opaque(node: Node) -> bool | None:
    if node.xattrs is None:
        return None
    return any(node.xattrs.get(k, "").startswith("y") for k in _OPAQUE_XATTRS)


def _xattrs(node: Node) -> dict[str, str] | None:
    if not node.xattrs:
        return None
    kept = {k: v for k, v in node.xattrs.items() if not k.startswith(_SKIP_XATTR_PREFIXES)}
    return kept or None


class DiskLayerProvider:
    """:class:`~layerforensics._sources._model.LayerProvider` over a directory of the evidence."""

    def __init__(self, fs: HostFS, layer: DiskLayer) -> None:
        self.fs = fs
        self.layer = layer
        self.label = layer.label or fs.label(layer.root)
        self._split: tuple[list[SplitEntry], int] | None = None
        self._disk: dict[str, Node] | None = None
        self._order: list[str] | None = None
        self.notes: list[str] = []

    # ------------------------------------------------------------------ raw material
    def split(self) -> tuple[list[SplitEntry], int] | None:
        """The tar-split record (entries, tar size), or None when absent."""
        if self.layer.tar_split is None or not self.fs.is_file(self.layer.tar_split):
            return None
        if self._split is None:
            self._split = read_tar_split(
                self.fs.read(self.layer.tar_split), self.fs.label(self.layer.tar_split)
            )
        return self._split

    def disk(self) -> tuple[dict[str, Node], list[str]]:
        """Every node of the layer directory by absolute in-layer path, and the walk order."""
        if self._disk is None:
            nodes: dict[str, Node] = {}
            order: list[str] = []
            skip: str | None = None
            for rel, node in self.fs.walk(self.layer.root):
                path = "/" + rel
                if skip is not None and path.startswith(skip):
                    continue
                base = posixpath.basename(path)
                if (
                    self.layer.kind == "aufs"
                    and base.startswith(".wh..wh.")
                    and base != OPAQUE_MARKER
                ):
                    skip = path + "/"  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.orph): not files
                    continue
                skip = None
                nodes[path] = node
                order.append(path)
            self._disk = nodes
            self._order = order
        assert self._order is not None
        return self._disk, self._order

    def parent_disk(self) -> dict[str, Node]:
        if self.layer.parent_root is None:
            return {}
        parent = DiskLayerProvider(self.fs, DiskLayer(self.layer.parent_root, "full"))
        return parent.disk()[0]

    def _content_node(self, path: str) -> Node:
        node = self.disk()[0][path]
        if node.type == "hardlink":  # tar evidence: a second name of another member
            resolved = getattr(self.fs, "resolved", None)
            if resolved is not None:
                target = resolved(self.layer.root + path)
                if target is not None:
                    return target
        return node

    def _rel(self, path: str) -> str:
        return self.layer.root + path if path != "/" else self.layer.root

    def _same_content_as_parent(self, path: str, node: Node, parent: dict[str, Node]) -> bool:
        p = parent.get(path)
        if p is None:
            return False
        if node.inode is not None and node.inode == p.inode:
            return True
        return (p.type, p.size, p.mode, p.uid, p.gid, p.mtime, p.linkname) == (
            node.type,
            node.size,
            node.mode,
            node.uid,
            node.gid,
            node.mtime,
            node.linkname,
        )

    # ------------------------------------------------------------------ protocol
    def scan(
        self,
        want: Callable[[TarEntry], bool] | None,
        sink: Callable[[int, TarEntry, bytes], None] | None,
    ) -> tuple[list[TarEntry], LayerInfo]:
        nodes, order = self.disk()
        entries: list[TarEntry] = []
        consumed: set[str] = set()
        first_of_inode: dict[object, str] = {}

        def content(entry: TarEntry, path: str) -> None:
            node = self._content_node(path)
            entry.size = node.size
            if sink is not None and want is not None and want(entry):
                data = self.fs.read(self._rel(path))
                entry.sha256 = hashlib.sha256(data).hexdigest()
                sink(len(entries), entry, data)
            elif node.sha256 is not None:  # a tar evidence already hashed it
                entry.sha256 = node.sha256
            else:
                digest = hashlib.sha256()
                for chunk in self.fs.chunks(self._rel(path)):
                    digest.update(chunk)
                entry.sha256 = digest.hexdigest()

        def from_node(path: str, node: Node, template: TarEntry | None) -> TarEntry | None:
            kind = node.type
            linkname = node.linkname if kind == "symlink" else None
            if kind == "socket":
                return None
            if kind in ("file", "hardlink"):
                key = node.inode
                if key is not None and key in first_of_inode and first_of_inode[key] != path:
                    kind, linkname = "hardlink", first_of_inode[key]
                else:
                    kind = "file"
                    if key is not None:
                        first_of_inode[key] = path
            entry = TarEntry(
                path=path,
                type=kind,
                size=0,
                mode=node.mode,
                uid=node.uid,
                gid=node.gid,
                uname=template.uname if template else "",
                gname=template.gname if template else "",
                mtime=node.mtime,
                linkname=linkname,
                whiteout_target=None,
                offset=0,
                sha256=None,
                xattrs=_xattrs(node)
                if node.xattrs is not None
                else (template.xattrs if template else None),
                devmajor=node.devmajor if kind in ("char", "block") else 0,
                devminor=node.devminor if kind in ("char", "block") else 0,
                synthetic=False,
            )
            return entry

        def marker(path: str, kind: str, target: str, template: TarEntry | None) -> TarEntry:
            if template is not None:
                e = TarEntry(**{s: getattr(template, s) for s in TarEntry.__slots__})
                e.path, e.type, e.whiteout_target = path, kind, target
                return e
            return TarEntry(
                path, kind, 0, 0, 0, 0, "", "", 0.0, None, target, 0, None, None, 0, 0, False
            )

        def emit(entry: TarEntry, path: str | None) -> None:
            if entry.type == "file" and path is not None:
                content(entry, path)
            entries.append(entry)

        def emit_disk(path: str, template: TarEntry | None) -> None:
            node = nodes[path]
            kind = self.layer.kind
            base = posixpath.basename(path)
            parent = posixpath.dirname(path)
            if (
                kind == "overlay"
                and node.type == "char"
                and node.devmajor == 0
                and node.devminor == 0
            ):
                m = marker(
                    posixpath.join(parent, WHITEOUT_PREFIX + base), "whiteout", path, template
                )
                if template is None:  # the device's own times tell when the deletion happened
                    m.mtime, m.mode, m.uid, m.gid = node.mtime, node.mode, node.uid, node.gid
                emit(m, None)
                return
            if kind == "aufs" and base.startswith(WHITEOUT_PREFIX):
                if base == OPAQUE_MARKER:
                    emit(marker(path, "opaque", parent, template), None)
                else:
                    emit(
                        marker(
                            path,
                            "whiteout",
                            posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]),
                            template,
                        ),
                        None,
                    )
                return
            entry = from_node(path, node, template)
            if entry is None:
                return
            if template is not None and template.type == "hardlink" and entry.type == "file":
                # the record names which name was first; keep the original tar's choice
                target = template.linkname
                tnode = nodes.get(target or "")
                if tnode is not None and (tnode.inode == node.inode or node.inode is None):
                    entry.type, entry.linkname = "hardlink", target
            emit(entry, path)
            if (
                kind == "overlay"
                and node.type == "dir"
                and node.xattrs is None
                and template is None
            ):
                note = (
                    f"{self.label}: the evidence carries no extended attributes, so opaque "
                    "directories in this layer cannot be recognised (archive the tree with "
                    "tar --xattrs --xattrs-include='trusted.*')"
                )
                if note not in self.notes:
                    self.notes.append(note)
            if (
                kind == "overlay"
                and node.type == "dir"
                and _is_opaque(node)
                and (template is None or template.type == "dir")
            ):
                # the opaque marker follows its directory, as Docker's tar writer emits it
                opq = posixpath.join(path, OPAQUE_MARKER)
                if opq not in pending_opaque:
                    emit(marker(opq, "opaque", path, None), None)

        split = self.split()
        pending_opaque: set[str] = set()
        if split is not None:
            records, tar_size = split
            pending_opaque = {r.path for r in records if r.header.type == "opaque"}
            for rec in records:
                h = rec.header
                if h.type == "whiteout":
                    target = h.whiteout_target or ""
                    disk_path = target if self.layer.kind == "overlay" else h.path
                    node = nodes.get(disk_path)
                    ok = node is not None and (self.layer.kind != "overlay" or node.type == "char")
                    if self.layer.kind == "full":
                        ok = target not in nodes
                        disk_path = target
                    if ok:
                        consumed.add(disk_path)
                        emit(marker(h.path, "whiteout", target, h), None)
                    continue
                if h.type == "opaque":
                    d = h.whiteout_target or "/"
                    dnode = nodes.get(d)
                    if self.layer.kind == "aufs":
                        if h.path in nodes:
                            consumed.add(h.path)
                            emit(marker(h.path, "opaque", d, h), None)
                    elif self.layer.kind == "full" or (
                        dnode is not None and _is_opaque(dnode) is not False
                    ):
                        emit(marker(h.path, "opaque", d, h), None)
                    continue
                if h.type == "aufs-meta":
                    continue
                if h.path == "/":
                    root_node = self.fs.lstat(self.layer.root)
                    if root_node is not None:
                        root_entry = from_node("/", root_node, h)
                        if root_entry is not None:
                            # the diff directory itself is the storage driver's (created, and
                            # chmod-ed by containers/storage, before the layer is applied): its
                            # attributes are the driver's, the record keeps the layer's "./"
                            root_entry.mtime, root_entry.mode = h.mtime, h.mode
                            root_entry.uid, root_entry.gid = h.uid, h.gid
                            emit(root_entry, None)
                    continue
                if h.path not in nodes or h.path in consumed:
                    continue
                consumed.add(h.path)
                emit_disk(h.path, h)
        else:
            tar_size = 0
        parent = self.parent_disk() if self.layer.kind == "full" else {}
        for path in order:
            if path in consumed:
                continue
            if parent and split is None and self._same_content_as_parent(path, nodes[path], parent):
                continue
            if (
                parent
                and split is not None
                and self._same_content_as_parent(path, nodes[path], parent)
            ):
                continue
            emit_disk(path, None)
        if self.layer.kind == "full" and split is None and parent:
            for path in sorted(set(parent) - set(nodes)):
                if posixpath.dirname(path) in parent and posixpath.dirname(path) not in nodes:
                    continue  # the whole parent directory went: one whiteout for it
                base = posixpath.basename(path)
                entries.append(
                    marker(
                        posixpath.join(posixpath.dirname(path), WHITEOUT_PREFIX + base),
                        "whiteout",
                        path,
                        None,
                    )
                )
        size = sum(e.size for e in entries)
        info = LayerInfo(
            compression="none",
            stored_size=size,
            tar_size=tar_size or size,
            digest=None,
            diff_id=None,
            verified=None,
        )
        return entries, info

    def read(self, entry: TarEntry) -> bytes:
        return self.fs.read(self._rel(entry.path))
