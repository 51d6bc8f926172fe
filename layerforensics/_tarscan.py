"""The single pass over one layer's tar: headers, data offsets, per-file sha256, content.

The parser is written for this job rather than using :mod:`tarfile`: it walks the chunks a
:class:`~layerforensics._blobs.LayerStream` yields without copying them when they are one
memory-mapped piece, hashes every regular file's data on the way, and can hand each file's bytes
to a consumer in the same pass (the secrets scan rides on it).

Each entry becomes one :class:`TarEntry`; names are normalised to absolute paths and the OCI
whiteout conventions are recognised here, whatever the entry's tar type (real Docker tars give
whiteouts link names, or make them hardlinks).
"""

from __future__ import annotations

import hashlib
import posixpath
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .errors import CorruptArchiveError

BLOCK = 512
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

# tar typeflag -> our type names
_TYPES = {
    b"0": "file",
    b"\x00": "file",
    b"7": "file",
    b"1": "hardlink",
    b"2": "symlink",
    b"3": "char",
    b"4": "block",
    b"5": "dir",
    b"6": "fifo",
}

#: eStargz adds these synthetic entries to a layer; they are not files of the image.
ESTARGZ_NAMES = frozenset({"stargz.index.json", ".prefetch.landmark", ".no.prefetch.landmark"})
_ESTARGZ_PATHS = frozenset("/" + name for name in ESTARGZ_NAMES)


@dataclass(slots=True)
class TarEntry:
    """One header of a layer tar, with its data location and content digest.

    ``path`` is absolute and normalised. For whiteouts ``type`` is ``"whiteout"`` (or
    ``"opaque"``) and ``whiteout_target`` is the path hidden (the directory, for opaque markers).
    ``offset`` is where the data starts in the uncompressed tar.
    """

    path: str
    type: str
    size: int
    mode: int
    uid: int
    gid: int
    uname: str
    gname: str
    mtime: float
    linkname: str | None
    whiteout_target: str | None
    offset: int
    sha256: str | None
    xattrs: dict[str, str] | None
    devmajor: int
    devminor: int
    synthetic: bool


def normalize_path(name: str) -> str:
    """Absolute, normalised form of a tar member name (``./a//b/`` -> ``/a/b``)."""
    if not name.startswith(".") and "//" not in name and "/." not in name:
        # The common case (``usr/bin/x``, ``etc/``): nothing to resolve.
        path = "/" + name.strip("/")
        return path
    path = posixpath.normpath("/" + name)
    if path.startswith("//"):  # normpath keeps a POSIX-special double slash
        path = "/" + path.lstrip("/")
    return path


def _decode(raw: bytes) -> str:
    # Non-UTF-8 names survive as \\xNN escapes: the text stays valid for Arrow and parquet.
    return raw.decode("utf-8", "backslashreplace")


def _octal(field: bytes, label: str, offset: int) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for large numbers
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:  # negative
            value -= 1 << (8 * (len(field) - 1))
        return value
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise CorruptArchiveError(
            label, f"tar header at offset {offset} has a bad number field {text[:20]!r}"
        ) from None


def _num(field: bytes, label: str, offset: int) -> int:
    """An octal header field; the common case without the generality of :func:`_octal`."""
    try:
        return int(field.rstrip(b"\x00 ") or b"0", 8)
    except ValueError:
        return _octal(field, label, offset)


_ZERO_BLOCK = bytes(BLOCK)
_NULS = (0, 0, 0, 0, 0)
_OFFLOAD = 256 << 10  # files this large are hashed on a worker thread (GIL released)
_BATCH = 8  # files handed to the hashing thread at a time


def _checksum_ok(header: bytes, stored: int) -> bool:
    """The ustar header checksum, at C speed.

    adler32's low half is ``1 + (sum of bytes) mod 65521``. The unsigned sum of a header lies
    in [256, 130560], so a match leaves one alternative (the sum +/- 65521): a damaged header
    passes only if its damage shifts the byte sum by exactly that much, and such a header is
    still parsed field by field afterwards. A checksum that must hold against a forger is
    meaningless anyway: the forger writes a correct one.
    """
    a = zlib.adler32(header[:148])
    a = zlib.adler32(b"        ", a)
    a = zlib.adler32(header[156:], a)
    if ((a & 0xFFFF) - 1) % 65521 == stored % 65521 and 256 <= stored <= 130560:
        return True
    # Some old tars sum signed bytes.
    signed = sum(b - 256 if b > 127 else b for b in header[:148] + b" " * 8 + header[156:])
    return signed == stored


def _parse_pax(data: bytes, label: str, offset: int) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise CorruptArchiveError(label, f"bad PAX header at offset {offset}") from None
        if length <= 0:
            break
        record = data[space + 1 : pos + length - 1]
        key, _, value = record.partition(b"=")
        records[key.decode("utf-8", "backslashreplace")] = value
        pos += length
    return records


class _Reader:
    """Exact reads over an iterator of chunks, tracking the absolute offset."""

    def __init__(self, chunks: Iterable[bytes | memoryview]) -> None:
        self._chunks = iter(chunks)
        self._buf: memoryview = memoryview(b"")
        self._pos = 0
        self.offset = 0

    def _more(self) -> bool:
        for chunk in self._chunks:
            if len(chunk):
                rest = self._buf[self._pos :]
                self._buf = (
                    memoryview(bytes(rest) + bytes(chunk)) if len(rest) else memoryview(chunk)
                )
                self._pos = 0
                return True
        return False

    def take(self, n: int) -> memoryview | None:
        """Exactly ``n`` bytes, or None at a clean end of input (nothing left at all)."""
        if len(self._buf) - self._pos < n:
            while len(self._buf) - self._pos < n:
                if not self._more():
                    if len(self._buf) - self._pos == 0:
                        return None
                    raise EOFError
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        self.offset += n
        return out

    def contiguous(self, n: int) -> memoryview | None:
        """``n`` bytes as one zero-copy view when the current chunk holds them all."""
        if len(self._buf) - self._pos >= n:
            out = self._buf[self._pos : self._pos + n]
            self._pos += n
            self.offset += n
            return out
        return None

    def skip(self, n: int) -> None:
        if len(self._buf) - self._pos >= n:
            self._pos += n
            self.offset += n
            return
        for _ in self.pieces(n):
            pass

    def pieces(self, n: int) -> Iterator[memoryview]:
        """``n`` bytes as consecutive pieces, without joining them."""
        while n > 0:
            avail = len(self._buf) - self._pos
            if avail == 0:
                if not self._more():
                    raise EOFError
                continue
            k = min(avail, n)
            piece = self._buf[self._pos : self._pos + k]
            self._pos += k
            self.offset += k
            n -= k
            yield piece


ContentSink = Callable[[int, TarEntry, bytes], None]


def scan_tar(
    chunks: Iterable[bytes | memoryview],
    label: str,
    *,
    want_content: Callable[[TarEntry], bool] | None = None,
    on_content: ContentSink | None = None,
) -> list[TarEntry]:
    """Parse one layer tar in a single pass.

    Parameters
    ----------
    chunks
        The uncompressed tar bytes, as an iterable of chunks.
    label
        How errors name the layer.
    want_content, on_content
        When given, ``on_content(index, entry, data)`` receives the bytes of every regular file for
        which ``want_content(entry)`` is true, in the same pass.

    Returns
    -------
    list of TarEntry
        Every entry in tar order, whiteout markers included, PAX/GNU extensions applied.

    Raises
    ------
    CorruptArchiveError
        A truncated tar, a header whose checksum is wrong, or an unparsable field.
    """
    reader = _Reader(chunks)
    entries: list[TarEntry] = []
    pax: dict[str, bytes] = {}
    global_pax: dict[str, bytes] = {}
    long_name: bytes | None = None
    long_link: bytes | None = None
    past_end = False
    # Large files are hashed on a worker thread (hashlib releases the GIL on big buffers), so
    # their digests overlap with the parsing of the headers that follow.
    hasher = _Hasher()
    try:
        while True:
            header_offset = reader.offset
            try:
                view = reader.take(BLOCK)
            except EOFError:
                if past_end:
                    break  # a short run of trailing bytes after the end blocks
                raise
            if view is None:
                break  # no end-of-archive blocks: accepted, as GNU tar does
            header = bytes(view)
            if header == _ZERO_BLOCK:
                # End-of-archive blocks. Keep looking: eStargz puts its TOC entry after them,
                # and anything hidden past the end is exactly what a forensic reader must show.
                past_end = True
                continue
            try:
                stored = _num(header[148:156], label, header_offset)
                valid = _checksum_ok(header, stored)
            except CorruptArchiveError:
                valid = False
            if not valid:
                if past_end:
                    break  # padding or trailing bytes after the archive's end, not a header
                raise CorruptArchiveError(
                    label, f"tar header at offset {header_offset} has a bad checksum"
                )
            typeflag = header[156:157]
            # The usual layout: octal digits then a NUL or space in each numeric field. int()
            # parses those at C speed; anything else (base-256, odd padding) takes _num.
            if (header[107], header[115], header[123], header[135], header[147]) == _NULS or all(
                header[i] in (0, 32) for i in (107, 115, 123, 135, 147)
            ):
                try:
                    mode = int(header[100:107], 8)
                    uid = int(header[108:115], 8)
                    gid = int(header[116:123], 8)
                    size = int(header[124:135], 8)
                    mtime_field = int(header[136:147], 8)
                except ValueError:
                    mode = -1
            else:
                mode = -1
            if mode < 0:
                mode = _num(header[100:108], label, header_offset)
                uid = _num(header[108:116], label, header_offset)
                gid = _num(header[116:124], label, header_offset)
                size = _num(header[124:136], label, header_offset)
                mtime_field = _num(header[136:148], label, header_offset)
            padded = (size + BLOCK - 1) & ~(BLOCK - 1)

            if typeflag in (b"x", b"g", b"L", b"K"):
                view = reader.contiguous(padded)
                if view is not None:
                    data = bytes(view[:size])
                else:
                    data = b"".join(bytes(p) for p in reader.pieces(padded))[:size]
                if typeflag == b"x":
                    pax.update(_parse_pax(data, label, header_offset))
                elif typeflag == b"g":
                    global_pax.update(_parse_pax(data, label, header_offset))
                elif typeflag == b"L":
                    long_name = data.split(b"\x00", 1)[0]
                else:
                    long_link = data.split(b"\x00", 1)[0]
                continue

            records = {**global_pax, **pax} if global_pax else pax
            if long_name is not None:
                raw_name = long_name
            elif "path" in records:
                raw_name = records["path"]
            else:
                raw_name = header[0:100].split(b"\x00", 1)[0]
                if header[257:263] == b"ustar\x00":
                    prefix = header[345:500].split(b"\x00", 1)[0]
                    if prefix:
                        raw_name = prefix + b"/" + raw_name
            if long_link is not None:
                raw_link = long_link
            elif "linkpath" in records:
                raw_link = records["linkpath"]
            else:
                raw_link = header[157:257].split(b"\x00", 1)[0]
            if "size" in records:
                size = int(records["size"])
                padded = (size + BLOCK - 1) & ~(BLOCK - 1)

            kind = _TYPES.get(typeflag, "file")
            if typeflag == b"S":  # GNU sparse: treated as a regular file of its stored data
                kind = "file"
            name = _decode(raw_name)
            path = normalize_path(name)
            base = path.rpartition("/")[2]
            whiteout_target = None
            linkname = None
            if base.startswith(WHITEOUT_PREFIX):
                parent = posixpath.dirname(path)
                if base == OPAQUE_MARKER:
                    kind, whiteout_target = "opaque", parent
                elif base.startswith(".wh..wh."):
                    kind = "aufs-meta"  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not files
                else:
                    kind = "whiteout"
                    whiteout_target = posixpath.join(parent, base[len(WHITEOUT_PREFIX) :])
            elif kind in ("symlink", "hardlink"):
                link = _decode(raw_link)
                linkname = normalize_path(link) if kind == "hardlink" else link

            mtime: float
            if "mtime" in records:
                try:
                    mtime = float(records["mtime"])
                except ValueError:
                    mtime = float(mtime_field)
            else:
                mtime = float(mtime_field)
            xattrs = None
            for key, value in records.items():
                if key.startswith("SCHILY.xattr."):
                    if xattrs is None:
                        xattrs = {}
                    xattrs[key[len("SCHILY.xattr.") :]] = value.decode("utf-8", "backslashreplace")
            if "uid" in records:
                uid = int(records["uid"])
            if "gid" in records:
                gid = int(records["gid"])
            uname = records["uname"] if "uname" in records else header[265:297].split(b"\x00", 1)[0]
            gname = records["gname"] if "gname" in records else header[297:329].split(b"\x00", 1)[0]
            device = kind in ("char", "block")
            entry = TarEntry(
                path,
                kind,
                size if kind == "file" else 0,
                mode & 0o7777,
                uid,
                gid,
                uname.decode("utf-8", "backslashreplace"),
                gname.decode("utf-8", "backslashreplace"),
                mtime,
                linkname,
                whiteout_target,
                reader.offset,
                None,
                xattrs,
                _octal(header[329:337], label, 0) if device else 0,
                _octal(header[337:345], label, 0) if device else 0,
                path in _ESTARGZ_PATHS,
            )
            pax = {}
            long_name = long_link = None

            if kind == "file":
                view = reader.contiguous(size)
                if view is not None:
                    if size >= _OFFLOAD and on_content is None:
                        hasher.add(entry, view)
                    else:
                        entry.sha256 = hashlib.sha256(view).hexdigest()
                    if on_content is not None and want_content is not None and want_content(entry):
                        on_content(len(entries), entry, bytes(view))
                elif on_content is not None and want_content is not None and want_content(entry):
                    content = b"".join([bytes(p) for p in reader.pieces(size)])
                    entry.sha256 = hashlib.sha256(content).hexdigest()
                    on_content(len(entries), entry, content)
                else:
                    digest = hashlib.sha256()
                    for piece in reader.pieces(size):
                        digest.update(piece)
                    entry.sha256 = digest.hexdigest()
                reader.skip(padded - size)
            elif padded:
                reader.skip(padded)  # data of non-files (hardlinks may carry some)
            entries.append(entry)
    except EOFError:
        raise CorruptArchiveError(
            label, f"tar is truncated (input ends inside the entry at offset {header_offset})"
        ) from None
    finally:
        hasher.close()
    return entries


class _Hasher:
    """Hashes files on one worker thread, in batches, while the parser goes on.

    hashlib releases the GIL for buffers of 2 KiB and more, so the digests overlap with the
    parsing of the headers that follow. Few batches are in flight at once: the buffers they
    keep alive stay bounded.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._batch: list[tuple[TarEntry, memoryview]] = []
        self._pending: list[Future[None]] = []

    def add(self, entry: TarEntry, data: memoryview) -> None:
        self._batch.append((entry, data))
        if len(self._batch) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            self._pending.append(self._pool.submit(_hash_batch, self._batch))
            self._batch = []
        while len(self._pending) > 4:
            self._pending.pop(0).result()

    def close(self) -> None:
        self._flush()
        for future in self._pending:
            future.result()
        self._pool.shutdown(wait=True)


def _hash_batch(batch: list[tuple[TarEntry, memoryview]]) -> None:
    sha256 = hashlib.sha256
    for entry, data in batch:
        entry.sha256 = sha256(data).hexdigest()
