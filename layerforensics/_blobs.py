"""Blobs: compression sniffed from magic bytes, decompressed once, hashed while they stream.

A layer blob is read exactly once during indexing. :class:`LayerStream` yields the
*uncompressed* tar bytes chunk by chunk while hashing both the stored bytes (the blob digest a
manifest names) and the uncompressed bytes (the ``diff_id`` the config names).
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, Literal

import zstandard

from ._background import background
from .errors import CorruptArchiveError

try:  # ISA-L's gzip is several times faster than zlib's; fall back when it is absent.
    from isal import isal_zlib as _fast_zlib
except ImportError:  # pragma: no cover - isal is a declared dependency
    _fast_zlib = zlib  # type: ignore[assignment]

_DECODE_ERRORS = (
    zlib.error,
    _fast_zlib.error,
    OSError,
    EOFError,
    ValueError,
    lzma.LZMAError,
    zstandard.ZstdError,
)

Compression = Literal["none", "gzip", "zstd", "xz", "bzip2"]

CHUNK = 1 << 20

_MAGIC: tuple[tuple[bytes, Compression], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
)


def sniff_compression(head: bytes) -> Compression:
    """Return the compression of a blob from its first bytes (never from a name or media type)."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    # zstd skippable frames (zstd:chunked puts metadata in them) start with 0x184D2A5?.
    if len(head) >= 4 and head[1:4] == b"\x2a\x4d\x18" and 0x50 <= head[0] <= 0x5F:
        return "zstd"
    return "none"


class _Decompressor:
    """A uniform ``decompress(chunk) -> bytes`` / ``flush()`` over every supported codec.

    gzip members may be concatenated (pigz, eStargz): a finished member is followed by another.
    """

    def __init__(self, compression: Compression) -> None:
        self.compression = compression
        self._new()

    def _new(self) -> None:
        c = self.compression
        if c == "gzip":
            self._d = _fast_zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif c == "zstd":
            self._d = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
        elif c == "xz":
            self._d = lzma.LZMADecompressor()
        elif c == "bzip2":
            self._d = bz2.BZ2Decompressor()
        else:  # pragma: no cover - callers never build one for "none"
            raise ValueError(c)

    def decompress(self, data: bytes) -> bytes:
        out = []
        while data:
            out.append(self._d.decompress(data))
            if self.compression == "zstd":
                break
            if not getattr(self._d, "eof", False):
                break
            data = self._d.unused_data
            if not data.strip(b"\x00"):  # trailing zero padding after the last member
                break
            self._new()
        return b"".join(out)

    def finished(self) -> bool:
        if self.compression == "zstd":
            return True  # zstandard's decompressobj does not expose eof; truncation shows in tar
        return bool(getattr(self._d, "eof", False))


class _BackgroundHasher:
    """sha256 of a sequence of chunks computed on a worker thread.

    hashlib releases the GIL for large buffers, so the digest of a layer overlaps with the
    Python-level tar parsing on the main thread.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._chunks: list[bytes | memoryview | None] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._chunks:
                    self._cond.wait()
                chunk = self._chunks.pop(0)
            if chunk is None:
                return
            self._hash.update(chunk)

    def update(self, chunk: bytes | memoryview) -> None:
        with self._cond:
            self._chunks.append(chunk)
            self._cond.notify()

    def hexdigest(self) -> str:
        self.update(None)  # type: ignore[arg-type]
        self._thread.join()
        return self._hash.hexdigest()


class LayerStream:
    """Decompressed chunks of one stored blob, with both digests computed on the way.

    Parameters
    ----------
    raw
        The stored blob: a binary file object positioned at its start, or a memoryview of all
        its bytes (an uncompressed archive mapped into memory, the fast path: no copies).
    label
        How errors name this blob (for example ``app.tar!blobs/sha256/ab12...``).
    compressed_size
        The stored size when known, to read exactly that many bytes from a file object.

    Attributes
    ----------
    compression
        What the magic bytes said.
    digest, diff_id
        ``sha256:<hex>`` of the stored and of the uncompressed bytes, set by :meth:`finish`
        once the stream has been read to its end.
    """

    def __init__(
        self, raw: BinaryIO | memoryview, label: str, compressed_size: int | None = None
    ) -> None:
        self.label = label
        if isinstance(raw, memoryview):
            self._raw_chunks: Iterator[bytes | memoryview] = _slices(raw, CHUNK)
            head = bytes(raw[:8])
            self._whole = raw
        else:
            self._raw_chunks = _reads(raw, compressed_size, label)
            self._whole = None
            head = b""
        self._first: bytes | memoryview = b""
        if self._whole is None:
            self._first = next(self._raw_chunks, b"")
            head = bytes(self._first[:8])
        self.compression: Compression = sniff_compression(head)
        # Uncompressed: the stored bytes are hashed on a worker thread while the parser runs.
        # Compressed: both digests are computed on the decompressing producer thread.
        self._stored_hash = _BackgroundHasher() if self.compression == "none" else None
        self._stored_sha = hashlib.sha256()
        self._plain_sha = hashlib.sha256()
        self._decompressor = _Decompressor(self.compression) if self.compression != "none" else None
        self.stored_size = 0
        self.tar_size = 0
        self.digest: str | None = None
        self.diff_id: str | None = None
        self._iter = self._chunks()

    def __iter__(self) -> Iterator[bytes | memoryview]:
        return self._iter

    def _stored_chunks(self) -> Iterator[bytes | memoryview]:
        if self._whole is not None and self._decompressor is None:
            yield self._whole  # one zero-copy piece: the tar parser never has to join
            return
        if self._first:
            yield self._first
        yield from self._raw_chunks

    def _chunks(self) -> Iterator[bytes | memoryview]:
        if self._decompressor is None:
            for data in self._stored_chunks():
                self.stored_size += len(data)
                self.tar_size += len(data)
                self._stored_hash.update(data)
                yield data
            return

        # Decompression and both digests run on a producer thread (zlib, ISA-L, zstd and
        # hashlib release the GIL), so they overlap with the tar parsing of the consumer.
        def work(emit: Callable[[bytes], None]) -> None:
            for plain in self._decompress():
                emit(plain)

        yield from background(work)

    def _decompress(self) -> Iterator[bytes]:
        assert self._decompressor is not None
        stored, plain_hash = self._stored_sha, self._plain_sha
        for data in self._stored_chunks():
            self.stored_size += len(data)
            stored.update(data)
            try:
                plain = self._decompressor.decompress(data)
            except _DECODE_ERRORS as exc:
                raise CorruptArchiveError(
                    self.label, f"{self.compression} data is corrupt ({exc})"
                ) from None
            if plain:
                plain_hash.update(plain)
                self.tar_size += len(plain)
                yield plain
        if not self._decompressor.finished():
            raise CorruptArchiveError(
                self.label, f"{self.compression} stream is truncated (no end-of-stream marker)"
            )

    def finish(self) -> None:
        """Read what the consumer left (padding after the tar's end) and finalise both digests."""
        for _ in self._iter:
            pass
        if self._stored_hash is not None:
            self.digest = self.diff_id = f"sha256:{self._stored_hash.hexdigest()}"
        else:
            self.digest = f"sha256:{self._stored_sha.hexdigest()}"
            self.diff_id = f"sha256:{self._plain_sha.hexdigest()}"


def _slices(view: memoryview, size: int) -> Iterator[memoryview]:
    for start in range(0, len(view), size):
        yield view[start : start + size]


def _reads(raw: BinaryIO, limit: int | None, label: str) -> Iterator[bytes]:
    remaining = limit
    while True:
        n = CHUNK if remaining is None else min(CHUNK, remaining)
        if n <= 0:
            return
        data = raw.read(n)
        if not data:
            if remaining:
                raise CorruptArchiveError(label, "blob is truncated")
            return
        if remaining is not None:
            remaining -= len(data)
        yield data


def open_decompressed(raw: BinaryIO, label: str) -> Iterator[bytes]:
    """Yield the uncompressed chunks of a blob without hashing (for reading files back)."""
    first = raw.read(CHUNK)
    compression = sniff_compression(first[:8])
    if compression == "none":
        data = first
        while data:
            yield data
            data = raw.read(CHUNK)
        return
    dec = _Decompressor(compression)
    data = first
    while data:
        try:
            out = dec.decompress(data)
        except _DECODE_ERRORS as exc:
            raise CorruptArchiveError(label, f"{compression} data is corrupt ({exc})") from None
        if out:
            yield out
        data = raw.read(CHUNK)
    if not dec.finished():
        raise CorruptArchiveError(
            label, f"{compression} stream is truncated (no end-of-stream marker)"
        )
