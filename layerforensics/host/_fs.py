"""Read-only, link-safe access to a seized tree: a directory, or a tar (compressed or not) of one.

Everything the host reader needs from the evidence goes through :class:`HostFS`: ``lstat``,
sorted ``listdir``, a pre-order ``walk`` that never follows a symbolic link, and ``read``.

- :class:`DirFS` opens files with ``O_NOFOLLOW`` (and ``O_NOATIME`` where the kernel allows it,
  so that reading does not even change access times) and refuses any path whose intermediate
  component is a symbolic link: a link inside the evidence is reported, never followed out of
  it. Extended attributes (``trusted.overlay.opaque``...) are read without following links.
- :class:`TarFS` indexes a tar of the tree in one pass with the core's tar parser (types, device
  numbers, ``SCHILY.xattr`` records, hardlinks); a compressed tar is decompressed once into a
  private temporary spool during that same pass. The input file is only ever read.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import posixpath
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .. import _blobs
from .._tarscan import BLOCK, scan_tar
from ..errors import LayerForensicsError, MissingBlobError, UnsafePathError

__all__ = ["DirFS", "HostFS", "Node", "TarFS", "open_fs"]


@dataclass(slots=True)
class Node:
    """One inode of the evidence tree, as ``lstat`` (or the tar header) tells it.

    ``type`` is file, dir, symlink, hardlink (tar only: a second name of ``linkname``), char,
    block, fifo or socket. ``xattrs`` is None when unknown (a tar made without ``--xattrs``).
    ``inode`` identifies hardlinked names (``(st_dev, st_ino)`` on a directory; the first
    name's path in a tar).
    """

    type: str
    size: int
    mode: int
    uid: int
    gid: int
    mtime: float
    linkname: str | None
    devmajor: int
    devminor: int
    xattrs: dict[str, str] | None
    inode: object
    sha256: str | None = None


def _rel(name: str) -> str:
    rel = posixpath.normpath("/" + name).lstrip("/")
    return "" if rel == "." else rel


class HostFS:
    """Read-only view of the evidence (see :class:`DirFS`, :class:`TarFS`)."""

    path: str

    def lstat(self, rel: str) -> Node | None:
        raise NotImplementedError

    def listdir(self, rel: str) -> list[str]:
        raise NotImplementedError

    def read(self, rel: str) -> bytes:
        raise NotImplementedError

    def chunks(self, rel: str, size: int = 1 << 20) -> Iterator[bytes]:
        yield self.read(rel)

    def label(self, rel: str) -> str:
        return f"{self.path}!{_rel(rel)}" if isinstance(self, TarFS) else str(Path(self.path) / rel)

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ helpers
    def is_dir(self, rel: str) -> bool:
        node = self.lstat(rel)
        return node is not None and node.type == "dir"

    def is_file(self, rel: str) -> bool:
        node = self.lstat(rel)
        return node is not None and node.type in ("file", "hardlink")

    def read_text(self, rel: str, default: str | None = None) -> str | None:
        if not self.is_file(rel):
            return default
        return self.read(rel).decode("utf-8", "replace").strip()

    def readlink_inside(self, rel: str) -> str | None:
        """Where a relative symlink points, as a path of the tree (None if it leaves it)."""
        node = self.lstat(rel)
        if node is None or node.type != "symlink" or not node.linkname:
            return None
        if node.linkname.startswith("/"):
            return None
        target = posixpath.normpath(posixpath.join(posixpath.dirname(_rel(rel)), node.linkname))
        if target.startswith("..") or target.startswith("/"):
            return None
        return _rel(target)

    def walk(self, rel: str) -> Iterator[tuple[str, Node]]:
        """Every node below ``rel`` (not itself), pre-order, names sorted bytewise, links kept."""
        base = _rel(rel)

        def rec(sub: str) -> Iterator[tuple[str, Node]]:
            here = posixpath.join(base, sub) if sub else base
            for name in self.listdir(here):
                child = posixpath.join(sub, name) if sub else name
                node = self.lstat(posixpath.join(base, child) if base else child)
                if node is None:
                    continue
                yield child, node
                if node.type == "dir":
                    yield from rec(child)

        yield from rec("")


def _sort_key(name: str) -> bytes:
    return os.fsencode(name)


class DirFS(HostFS):
    """The evidence as a directory (a read-only mount, an extracted copy)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.path = str(root)
        self.root = os.path.abspath(root)
        self._noatime = getattr(os, "O_NOATIME", 0)

    def _full(self, rel: str) -> str:
        rel = _rel(rel)
        if not rel:
            return self.root
        if "\x00" in rel:  # a damaged id file named the path: no such file can exist
            raise MissingBlobError(self.label(rel.replace("\x00", "\\0")), "not found")
        # every intermediate component must be a real directory, never a link
        parts = rel.split("/")
        cur = self.root
        for part in parts[:-1]:
            cur = os.path.join(cur, part)
            try:
                st = os.lstat(cur)
            except FileNotFoundError:
                raise MissingBlobError(self.label(rel), "not found") from None
            if stat.S_ISLNK(st.st_mode):
                raise UnsafePathError(
                    self.label(rel), f"{os.path.relpath(cur, self.root)} is a symbolic link"
                )
        return os.path.join(cur, parts[-1])

    def lstat(self, rel: str) -> Node | None:
        try:
            full = self._full(rel)
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError, MissingBlobError, UnsafePathError):
            return None
        m = st.st_mode
        if stat.S_ISREG(m):
            kind = "file"
        elif stat.S_ISDIR(m):
            kind = "dir"
        elif stat.S_ISLNK(m):
            kind = "symlink"
        elif stat.S_ISCHR(m):
            kind = "char"
        elif stat.S_ISBLK(m):
            kind = "block"
        elif stat.S_ISFIFO(m):
            kind = "fifo"
        else:
            kind = "socket"
        dev = st.st_rdev if kind in ("char", "block") else 0
        return Node(
            type=kind,
            size=st.st_size if kind == "file" else 0,
            mode=stat.S_IMODE(m),
            uid=st.st_uid,
            gid=st.st_gid,
            mtime=st.st_mtime_ns / 10**9,  # int / int: correctly rounded, like float(PAX mtime)
            linkname=os.readlink(full) if kind == "symlink" else None,
            devmajor=os.major(dev) if dev else 0,
            devminor=os.minor(dev) if dev else 0,
            xattrs=self._xattrs(full),
            inode=(st.st_dev, st.st_ino) if kind == "file" and st.st_nlink > 1 else None,
        )

    @staticmethod
    def _xattrs(full: str) -> dict[str, str] | None:
        try:
            names = os.listxattr(full, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP, errno.EPERM, errno.EACCES):
                return None
            return None
        out: dict[str, str] = {}
        for name in names:
            with contextlib.suppress(OSError):
                value = os.getxattr(full, name, follow_symlinks=False)
                out[name] = value.rstrip(b"\x00").decode("utf-8", "backslashreplace")
        return out

    def listdir(self, rel: str) -> list[str]:
        try:
            full = self._full(rel)
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
            try:
                fd = os.open(full, flags | self._noatime) if self._noatime else os.open(full, flags)
            except PermissionError:
                fd = os.open(full, flags)
            try:
                return sorted(os.listdir(fd), key=_sort_key)
            finally:
                os.close(fd)
        except (FileNotFoundError, NotADirectoryError, MissingBlobError, UnsafePathError):
            return []
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return []  # a symbolic link: never listed through
            raise

    def _open(self, rel: str) -> int:
        full = self._full(rel)
        flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        if self._noatime:
            try:
                return os.open(full, flags | self._noatime)
            except PermissionError:
                self._noatime = 0  # not the owner and no CAP_FOWNER: plain read-only open
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._noatime = 0
        return os.open(full, flags)

    def read(self, rel: str) -> bytes:
        try:
            fd = self._open(rel)
        except FileNotFoundError:
            raise MissingBlobError(self.label(rel), "not found") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePathError(self.label(rel), "is a symbolic link; not followed") from None
            raise LayerForensicsError(self.label(rel), str(exc)) from None
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def chunks(self, rel: str, size: int = 1 << 20) -> Iterator[bytes]:
        fd = self._open(rel)
        with os.fdopen(fd, "rb") as f:
            while True:
                block = f.read(size)
                if not block:
                    return
                yield block


class TarFS(HostFS):
    """The evidence as a tar of the tree (``tar --xattrs`` of ``/var/lib/docker``, a ``.tgz``)."""

    def __init__(self, path: str | os.PathLike[str], prefix: str = "") -> None:
        self.path = str(path)
        self._nodes: dict[str, Node] = {}
        self._offsets: dict[str, int] = {}
        self._children: dict[str, set[str]] = {}
        self._spool: BinaryIO | None = None
        raw = open(path, "rb")  # noqa: SIM115 - owned
        head = raw.read(BLOCK)
        raw.seek(0)
        compression = _blobs.sniff_compression(head[:8])
        if compression == "none":
            self._file: BinaryIO = raw
            chunks: Iterator[bytes] = iter(lambda: raw.read(1 << 20), b"")
        else:
            spool = tempfile.TemporaryFile(prefix="layerforensics-host-")  # noqa: SIM115
            self._spool = spool
            self._file = spool

            def tee() -> Iterator[bytes]:
                for chunk in _blobs.open_decompressed(raw, self.path):
                    spool.write(chunk)
                    yield chunk

            chunks = tee()
        try:
            entries = scan_tar(chunks, self.path)
            if compression != "none":
                for _ in chunks:  # the padding after the end-of-archive blocks
                    pass
                raw.close()
                spool.flush()
        except BaseException:
            raw.close()
            raise
        self._mmap: mmap.mmap | None = None
        with contextlib.suppress(OSError, ValueError):
            self._mmap = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        for e in entries:
            rel = _rel(e.path)
            kind = e.type
            if kind in ("whiteout", "opaque", "aufs-meta"):
                # scan_tar recognised an OCI marker name; in the evidence it is just a name
                # (aufs keeps real ".wh." files and ".wh..wh.plnk" directories).
                kind = "marker"
            linkname = e.linkname
            if kind == "hardlink" and linkname is not None:
                linkname = _rel(linkname)
            self._nodes[rel] = Node(
                type=kind,
                size=e.size,
                mode=e.mode,
                uid=e.uid,
                gid=e.gid,
                mtime=e.mtime,
                linkname=linkname,
                devmajor=e.devmajor,
                devminor=e.devminor,
                xattrs=e.xattrs or {},
                inode=None,
                sha256=e.sha256,
            )
            self._offsets[rel] = e.offset
            # make every ancestor known, with or without an entry of its own
            child = rel
            while child:
                parent = posixpath.dirname(child)
                self._children.setdefault(parent, set()).add(posixpath.basename(child))
                child = parent
        for rel, node in self._nodes.items():
            if node.type == "marker":
                node.type = "dir" if rel in self._children else "file"
        # hardlinks share the first name's inode
        for node in self._nodes.values():
            if node.type == "hardlink" and node.linkname in self._nodes:
                target = self._nodes[node.linkname]
                target.inode = node.linkname
                node.inode = node.linkname
        self._xattrs_known = any(n.xattrs for n in self._nodes.values())

    def lstat(self, rel: str) -> Node | None:
        rel = _rel(rel)
        node = self._nodes.get(rel)
        if node is None and (rel == "" or rel in self._children):
            return Node("dir", 0, 0o755, 0, 0, 0.0, None, 0, 0, None, None)
        if node is not None and node.type == "dir" and not self._xattrs_known:
            node.xattrs = None
        return node

    def listdir(self, rel: str) -> list[str]:
        rel = _rel(rel)
        node = self._nodes.get(rel)
        if node is not None and node.type != "dir":
            return []
        return sorted(self._children.get(rel, ()), key=_sort_key)

    def _data(self, rel: str, depth: int = 0) -> tuple[int, int]:
        rel = _rel(rel)
        node = self._nodes.get(rel)
        if node is None:
            raise MissingBlobError(self.label(rel), "not found in the evidence tar")
        if node.type == "hardlink" and node.linkname is not None and depth < 8:
            return self._data(node.linkname, depth + 1)
        if node.type != "file":
            raise UnsafePathError(self.label(rel), f"is a {node.type}, not a regular file")
        return self._offsets[rel], node.size

    def resolved(self, rel: str) -> Node | None:
        """The node holding the bytes of ``rel`` (its target, for a tar hardlink)."""
        node = self.lstat(rel)
        if node is not None and node.type == "hardlink" and node.linkname:
            target = self._nodes.get(node.linkname)
            return target or node
        return node

    def read(self, rel: str) -> bytes:
        offset, size = self._data(rel)
        if self._mmap is not None:
            return bytes(self._mmap[offset : offset + size])
        self._file.seek(offset)
        return self._file.read(size)

    def close(self) -> None:
        if self._mmap is not None:
            with contextlib.suppress(BufferError):
                self._mmap.close()
        self._file.close()


def open_fs(path: str | os.PathLike[str]) -> HostFS:
    """A :class:`DirFS` for a directory, a :class:`TarFS` for a tar file."""
    p = Path(path)
    if p.is_dir():
        return DirFS(p)
    if not p.exists():
        raise LayerForensicsError(str(path), "no such file or directory")
    return TarFS(p)
