"""``tar-split`` records (vbatts/tar-split): the original layer tar, minus the file data.

Docker (``layerdb/sha256/<chainID>/tar-split.json.gz``, pre-1.10 ``graph/<id>/tar-data.json.gz``)
and containers/storage (``overlay-layers/<id>.tar-split.gz``) keep one per layer: gzip of JSON
lines, ``type 2`` = raw tar bytes (headers, padding) base64 in ``payload``, ``type 1`` = one file
entry with ``name`` (or ``name_raw``), ``size`` and ``payload`` = the CRC-64 (ISO polynomial,
Go's ``hash/crc64``) of its data, big-endian, base64.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from .._tarscan import TarEntry, normalize_path, scan_tar
from ..errors import CorruptArchiveError

__all__ = ["SplitEntry", "crc64_iso", "read_tar_split"]

_POLY = 0xD800000000000000  # ISO 3309, reflected


def _table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()

try:  # a C implementation when the optional ``crcmod`` package is installed
    import crcmod  # type: ignore[import-not-found]

    _crcmod_fun = crcmod.mkCrcFun(0x1000000000000001B, initCrc=0, rev=True, xorOut=0)
except Exception:  # pragma: no cover - crcmod is optional
    _crcmod_fun = None


def crc64_iso(data: bytes | memoryview, crc: int = 0) -> int:
    """Go's ``crc64.Update(crc, crc64.MakeTable(crc64.ISO), data)``: chain calls with ``crc``."""
    if _crcmod_fun is not None:
        return int(_crcmod_fun(bytes(data), crc ^ 0xFFFFFFFFFFFFFFFF)) ^ 0xFFFFFFFFFFFFFFFF
    table = _TABLE
    c = crc ^ 0xFFFFFFFFFFFFFFFF
    for b in bytes(data):
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFFFFFFFFFF


@dataclass(slots=True)
class SplitEntry:
    """One file entry of a tar-split record, with the header it had in the original tar."""

    position: int
    name: str
    path: str
    size: int
    crc64: int | None
    header: TarEntry


def _records(data: bytes, label: str) -> Iterator[dict]:
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise CorruptArchiveError(label, f"not a gzip tar-split record ({exc})") from None
    for n, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise CorruptArchiveError(label, f"line {n + 1} is not JSON") from None
        if isinstance(rec, dict):
            yield rec


_ZEROS = bytes(1 << 20)


def read_tar_split(data: bytes, label: str) -> tuple[list[SplitEntry], int]:
    """Parse a gzipped tar-split record.

    Returns
    -------
    (entries, tar_size)
        Every file entry in original tar order, with its parsed header (name, type, mode,
        owner, mtime, link target, xattrs; ``sha256`` is meaningless here), and the size of
        the original uncompressed tar.
    """
    files: list[dict] = []
    pieces: list[tuple[int, bytes | int]] = []  # raw bytes, or a data length
    tar_size = 0
    for rec in _records(data, label):
        kind = rec.get("type")
        if kind == 2:
            raw = base64.b64decode(rec.get("payload") or "")
            pieces.append((2, raw))
            tar_size += len(raw)
        elif kind == 1:
            name = rec.get("name")
            if name is None and rec.get("name_raw") is not None:
                name = (
                    bytes(rec["name_raw"]).decode("utf-8", "backslashreplace")
                    if isinstance(rec["name_raw"], list)
                    else str(rec["name_raw"])
                )
            size = int(rec.get("size") or 0)
            payload = rec.get("payload")
            crc = int.from_bytes(base64.b64decode(payload), "big") if payload else None
            files.append({"name": name or "", "size": size, "crc": crc, "pos": rec.get("position")})
            pieces.append((1, size))
            tar_size += size

    def stream() -> Iterator[bytes | memoryview]:
        zeros = memoryview(_ZEROS)
        for kind, value in pieces:
            if kind == 2:
                yield value  # type: ignore[misc]
            else:
                left = value
                while left > 0:  # type: ignore[operator]
                    k = min(left, len(zeros))  # type: ignore[call-overload]
                    yield zeros[:k]
                    left -= k  # type: ignore[operator]

    headers = scan_tar(stream(), label)
    out: list[SplitEntry] = []
    # type-1 records and tar headers correspond one to one, in order
    if len(headers) != len(files):
        # tolerate records without headers (should not happen): pair by normalised name
        by_name = {normalize_path(f["name"]): f for f in files}
        for h in headers:
            f = by_name.get(h.path, {"name": h.path, "size": h.size, "crc": None, "pos": None})
            out.append(SplitEntry(f["pos"] or 0, f["name"], h.path, h.size, f["crc"], h))
        return out, tar_size
    for f, h in zip(files, headers, strict=True):
        out.append(SplitEntry(f["pos"] or 0, f["name"], h.path, f["size"], f["crc"], h))
    return out, tar_size
