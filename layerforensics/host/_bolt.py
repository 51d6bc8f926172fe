"""A read-only reader of bbolt (BoltDB) files: nested buckets and their key/value pairs.

podman keeps its container state (created, started, finished, exit code) in
``libpod/bolt_state.db``. The file format (``go.etcd.io/bbolt``): fixed-size pages; pages 0 and
1 are meta pages (the one with the higher transaction id and a valid FNV-64a checksum is
current) naming the root bucket's page; a bucket is a B+tree of branch and leaf pages, and a
small bucket is stored inline in its parent's value. Nothing here writes, and every offset is
checked against the file size, so a damaged file gives a :class:`CorruptArchiveError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from ..errors import CorruptArchiveError

_MAGIC = 0xED0CDAED
_BRANCH, _LEAF, _META = 0x01, 0x02, 0x04
_BUCKET_VALUE = 0x01  # a leaf element whose value is a nested bucket
_PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
_META_BODY = struct.Struct("<IIIIQQQQQQ")  # magic ... txid, checksum
_ELEMENT = struct.Struct("<IIII")  # leaf: flags, pos, ksize, vsize / branch: pos, ksize, pgid


def _fnv64a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class BoltFile:
    """One bbolt file's current state, read from its bytes.

    Parameters
    ----------
    data
        The whole file.
    label
        How errors name it.
    """

    def __init__(self, data: bytes, label: str) -> None:
        self.data = data
        self.label = label
        candidates = []
        page_size = 4096
        for meta_page in (0, 1):
            offset = meta_page * page_size
            if offset + _PAGE_HEADER.size + _META_BODY.size > len(data):
                continue
            _, flags, _, _ = _PAGE_HEADER.unpack_from(data, offset)
            body = offset + _PAGE_HEADER.size
            magic, _, size, _, root, _, _, _, txid, checksum = _META_BODY.unpack_from(data, body)
            if not flags & _META or magic != _MAGIC:
                continue
            if _fnv64a(data[body : body + _META_BODY.size - 8]) != checksum:
                continue
            if meta_page == 0:
                page_size = size  # the second meta page sits one page further
            candidates.append((txid, size, root))
        if not candidates:
            raise CorruptArchiveError(label, "not a bbolt database (no valid meta page)")
        _, self.page_size, self.root = max(candidates)

    def tree(self, *path: bytes) -> dict[bytes, Any] | None:
        """Everything in the bucket at ``path`` (from the root), read in one walk: each key maps
        to its value bytes, or to a dict for a nested bucket. None when there is no such bucket.
        """
        where: tuple[int, bytes | None] = (self.root, None)
        seen: set[int] = set()
        for name in path:
            for key, value, nested in self._items(*where, seen):
                if key == name and nested:
                    where = self._nested(value)
                    break
            else:
                return None
            seen.clear()  # the pages above are not part of the bucket read below
        return self._read(*where, seen, 0)

    def _read(
        self, root: int, inline: bytes | None, seen: set[int], depth: int
    ) -> dict[bytes, Any]:
        if depth > 32:
            raise CorruptArchiveError(self.label, "buckets nested too deeply")
        return {
            key: self._read(*self._nested(value), seen, depth + 1) if nested else value
            for key, value, nested in self._items(root, inline, seen)
        }

    def _nested(self, value: bytes) -> tuple[int, bytes | None]:
        if len(value) < 16:
            raise CorruptArchiveError(self.label, "a bucket header is truncated")
        root = struct.unpack_from("<Q", value, 0)[0]
        return root, (value[16:] if root == 0 else None)  # root 0: the bucket is inline

    def _items(
        self, root: int, inline: bytes | None, seen: set[int]
    ) -> Iterator[tuple[bytes, bytes, bool]]:
        if inline is not None:
            yield from self._leaf(inline, 0)
        else:
            yield from self._tree(root, seen)

    def _tree(self, page: int, seen: set[int]) -> Iterator[tuple[bytes, bytes, bool]]:
        # Each page belongs to one bucket: reading a page twice in one walk means damage, and
        # refusing it keeps a damaged file from making the walk loop or explode.
        if page in seen:
            raise CorruptArchiveError(self.label, f"page {page} is reached twice (a loop?)")
        seen.add(page)
        offset = page * self.page_size
        if page < 2 or offset + _PAGE_HEADER.size > len(self.data):
            raise CorruptArchiveError(self.label, f"page {page} is outside the file")
        _, flags, count, _ = _PAGE_HEADER.unpack_from(self.data, offset)
        if flags & _LEAF:
            yield from self._leaf(self.data, offset)
        elif flags & _BRANCH:
            for i in range(count):
                element = offset + _PAGE_HEADER.size + i * _ELEMENT.size
                self._check(element + _ELEMENT.size, len(self.data))
                child = struct.unpack_from("<Q", self.data, element + 8)[0]
                yield from self._tree(child, seen)
        else:
            raise CorruptArchiveError(self.label, f"page {page} is neither branch nor leaf")

    def _leaf(self, buf: bytes, offset: int) -> Iterator[tuple[bytes, bytes, bool]]:
        self._check(offset + _PAGE_HEADER.size, len(buf))
        _, flags, count, _ = _PAGE_HEADER.unpack_from(buf, offset)
        if not flags & _LEAF:
            raise CorruptArchiveError(self.label, "an inline bucket is not a leaf page")
        for i in range(count):
            element = offset + _PAGE_HEADER.size + i * _ELEMENT.size
            self._check(element + _ELEMENT.size, len(buf))
            eflags, pos, ksize, vsize = _ELEMENT.unpack_from(buf, element)
            start = element + pos
            self._check(start + ksize + vsize, len(buf))
            key = bytes(buf[start : start + ksize])
            value = bytes(buf[start + ksize : start + ksize + vsize])
            yield key, value, bool(eflags & _BUCKET_VALUE)

    def _check(self, end: int, size: int) -> None:
        if end > size:
            raise CorruptArchiveError(self.label, "an element points past the end of its page")
