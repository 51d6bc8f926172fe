"""Containers: uniform, read-only access to the members of a tar archive or a directory.

A *container* here is where an image's files sit: a ``docker save`` tar, an OCI layout
directory, a tar of one. Members are addressed by their relative POSIX name; symlinks and
hardlinks inside a tar are resolved inside the tar (podman and old Docker write ``layer.tar`` as a
symlink to another member), and a directory container never follows a link out of its root.

A tar compressed as a whole (``.tar.gz``, ``.tar.xz``) is decompressed once into a private
temporary spool so that its members can be read at random; the input is never written.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import posixpath
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import _blobs
from ._tarscan import BLOCK, _checksum_ok, _octal, _parse_pax
from .errors import CorruptArchiveError, LayerForensicsError, MissingBlobError, NotAnImageError


class _Slice(io.RawIOBase):
    """A read-only, seekable window ``[start, start + size)`` of a file."""

    def __init__(self, fileobj: BinaryIO, start: int, size: int) -> None:
        self._f = fileobj
        self._start = start
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if n < 0 or self._pos + n > self._size:
            n = max(0, self._size - self._pos)
        if n == 0:
            return b""
        self._f.seek(self._start + self._pos)
        data = self._f.read(n)
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    offset: int
    size: int
    kind: str  # "file", "dir", "symlink", "hardlink", "other"
    link: str | None


class Container:
    """Read-only access to named members (:class:`TarContainer`, :class:`DirContainer`)."""

    path: str

    def names(self) -> list[str]:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def open(self, name: str) -> BinaryIO:
        raise NotImplementedError

    def size(self, name: str) -> int:
        raise NotImplementedError

    def is_dir(self, name: str) -> bool:
        raise NotImplementedError

    def view(self, name: str) -> memoryview | None:
        """A zero-copy view of the member's bytes when the container is memory-mappable."""
        return None

    def label(self, name: str) -> str:
        return f"{self.path}!{name}"

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        if self.size(name) > limit:
            raise CorruptArchiveError(self.label(name), f"unexpectedly large ({self.size(name)} B)")
        with self.open(name) as f:
            return f.read()

    def close(self) -> None:
        pass


def _norm(name: str) -> str:
    name = posixpath.normpath("/" + name).lstrip("/")
    return "" if name == "." else name


class TarContainer(Container):
    """Members of a (seekable, uncompressed) tar file, indexed by one header walk."""

    def __init__(self, fileobj: BinaryIO, path: str, spool: BinaryIO | None = None) -> None:
        self.path = path
        self._f = fileobj
        self._spool = spool
        self._members: dict[str, _Member] = {}
        self._index()
        self._mmap: mmap.mmap | None = None
        try:
            self._mmap = mmap.mmap(fileobj.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError, io.UnsupportedOperation):
            self._mmap = None

    def _index(self) -> None:
        f = self._f
        f.seek(0, os.SEEK_END)
        total = f.tell()
        pos = 0
        pax: dict[str, bytes] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        while pos + BLOCK <= total:
            f.seek(pos)
            header = f.read(BLOCK)
            if header.count(0) == BLOCK:
                return
            stored = _octal(header[148:156], self.path, pos)
            if not _checksum_ok(header, stored):
                if pos == 0:
                    raise NotAnImageError(self.path, "not a tar archive (bad header checksum)")
                raise CorruptArchiveError(self.path, f"tar header at offset {pos} is corrupt")
            size = _octal(header[124:136], self.path, pos)
            typeflag = header[156:157]
            data_start = pos + BLOCK
            if typeflag in (b"x", b"g", b"L", b"K"):
                f.seek(data_start)
                data = f.read(size)
                if typeflag == b"x":
                    pax = _parse_pax(data, self.path, pos)
                elif typeflag == b"L":
                    long_name = data.split(b"\x00", 1)[0]
                elif typeflag == b"K":
                    long_link = data.split(b"\x00", 1)[0]
                pos = data_start + ((size + BLOCK - 1) & ~(BLOCK - 1))
                continue
            if "size" in pax:
                size = int(pax["size"])
            raw = long_name or pax.get("path")
            if raw is None:
                raw = header[0:100].split(b"\x00", 1)[0]
                if header[257:263] == b"ustar\x00" and header[345:500].strip(b"\x00"):
                    raw = header[345:500].split(b"\x00", 1)[0] + b"/" + raw
            link = long_link or pax.get("linkpath") or header[157:257].split(b"\x00", 1)[0]
            kind = {
                b"0": "file",
                b"\x00": "file",
                b"7": "file",
                b"5": "dir",
                b"2": "symlink",
                b"1": "hardlink",
            }.get(typeflag, "other")
            name = _norm(raw.decode("utf-8", "surrogateescape"))
            self._members[name] = _Member(
                name,
                data_start,
                size if kind == "file" else 0,
                kind,
                link.decode("utf-8", "surrogateescape")
                if kind in ("symlink", "hardlink")
                else None,
            )
            pax, long_name, long_link = {}, None, None
            pos = data_start + ((size + BLOCK - 1) & ~(BLOCK - 1))
        if pos > total:
            raise CorruptArchiveError(
                self.path, "archive is truncated (a member runs past the end)"
            )

    def _resolve(self, name: str, depth: int = 0) -> _Member:
        name = _norm(name)
        member = self._members.get(name)
        if member is None or depth > 16:
            raise MissingBlobError(self.label(name), "not found in the archive")
        if member.kind == "symlink" and member.link is not None:
            target = member.link
            target = _norm(
                target
                if target.startswith("/")
                else posixpath.join(posixpath.dirname(name), target)
            )
            return self._resolve(target, depth + 1)
        if member.kind == "hardlink" and member.link is not None:
            return self._resolve(member.link, depth + 1)
        return member

    def names(self) -> list[str]:
        return list(self._members)

    def exists(self, name: str) -> bool:
        try:
            return self._resolve(name).kind == "file"
        except MissingBlobError:
            return False

    def is_dir(self, name: str) -> bool:
        name = _norm(name)
        if name in self._members and self._members[name].kind == "dir":
            return True
        prefix = name + "/"
        return any(n.startswith(prefix) for n in self._members)

    def size(self, name: str) -> int:
        return self._resolve(name).size

    def open(self, name: str) -> BinaryIO:
        m = self._resolve(name)
        return io.BufferedReader(_Slice(self._f, m.offset, m.size), buffer_size=1 << 20)  # type: ignore[return-value]

    def view(self, name: str) -> memoryview | None:
        if self._mmap is None:
            return None
        m = self._resolve(name)
        return memoryview(self._mmap)[m.offset : m.offset + m.size]

    def close(self) -> None:
        if self._mmap is not None:
            # A view may still be alive (a frame being built); the OS frees it with the file.
            with contextlib.suppress(BufferError):
                self._mmap.close()
        self._f.close()
        if self._spool is not None:
            self._spool.close()


class DirContainer(Container):
    """Members of a directory; links are never followed out of the root."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.path = str(root)

    def _full(self, name: str) -> Path:
        full = (self.root / _norm(name)).resolve()
        if full != self.root and self.root not in full.parents:
            raise MissingBlobError(self.label(name), "resolves outside the directory; not followed")
        return full

    def label(self, name: str) -> str:
        return str(Path(self.path) / _norm(name))

    def names(self) -> list[str]:
        out = []
        for dirpath, _dirs, files in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            for f in files:
                out.append(_norm(posixpath.join(rel.replace(os.sep, "/"), f)))
        return out

    def exists(self, name: str) -> bool:
        try:
            return self._full(name).is_file()
        except MissingBlobError:
            return False

    def is_dir(self, name: str) -> bool:
        try:
            return self._full(name).is_dir()
        except MissingBlobError:
            return False

    def size(self, name: str) -> int:
        if not self.exists(name):
            raise MissingBlobError(self.label(name), "not found")
        return self._full(name).stat().st_size

    def open(self, name: str) -> BinaryIO:
        if not self.exists(name):
            raise MissingBlobError(self.label(name), "not found")
        return open(self._full(name), "rb")

    def view(self, name: str) -> memoryview | None:
        if not self.exists(name):
            raise MissingBlobError(self.label(name), "not found")
        if self.size(name) == 0:
            return memoryview(b"")
        with open(self._full(name), "rb") as f:
            return memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))


def open_container(path: str | os.PathLike[str]) -> Container:
    """Open a directory or a tar (plain, or compressed as a whole) as a :class:`Container`.

    Raises
    ------
    LayerForensicsError
        The path does not exist, or is neither a directory nor a tar archive.
    """
    p = Path(path)
    if p.is_dir():
        return DirContainer(p)
    if not p.exists():
        raise LayerForensicsError(str(path), "no such file or directory")
    f = open(p, "rb")  # noqa: SIM115 - owned by the container
    head = f.read(BLOCK)
    f.seek(0)
    compression = _blobs.sniff_compression(head[:8])
    if compression == "none":
        if len(head) < BLOCK:
            f.close()
            raise NotAnImageError(str(path), f"too short to be a tar archive ({len(head)} bytes)")
        return TarContainer(f, str(path))
    spool = tempfile.TemporaryFile(prefix="layerforensics-")  # noqa: SIM115 - owned
    try:
        for chunk in _blobs.open_decompressed(f, str(path)):
            spool.write(chunk)
    finally:
        f.close()
    spool.flush()
    spool.seek(0)
    return TarContainer(spool, str(path), spool=None)


def iter_names_under(container: Container, prefix: str) -> Iterator[str]:
    prefix = _norm(prefix) + "/"
    for n in container.names():
        if n.startswith(prefix):
            yield n
