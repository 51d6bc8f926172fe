"""The :class:`Image`: one container image as lazily computed, cached DataFrames.

Opening an image reads only its JSON (manifest, index, config). The first frame that needs layer
contents indexes every layer in one streaming pass each (:mod:`._tarscan`), verifying both
digests on the way; the overlay replay (:mod:`._overlay`) then gives the changes, the merged
filesystem and the deleted files. Every frame is cached on the image.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _frames as F
from ._background import background
from ._blobs import LayerStream, open_decompressed
from ._container import Container, open_container
from ._gcpause import gc_paused, paused_gc
from ._overlay import CAUSES, CHANGES, MARKER_TYPES, STATUSES, ReplayResult, replay
from ._sources import ImageRecord, discover
from ._sources._model import LayerInfo, parse_json
from ._tarscan import FileHasher, TarEntry, normalize_path, scan_tar
from .dockerfile import BuildStep, parse_created_by, reconstruct
from .errors import (
    CorruptArchiveError,
    DigestMismatchError,
    DigestMismatchWarning,
    ImageReferenceError,
    PathNotFoundError,
    PlatformError,
)

if TYPE_CHECKING:
    from .waste import Efficiency

__all__ = ["FileRow", "Image", "list_images", "open_image"]


#: History fields that are text; another JSON type there is reported and shown as missing.
_HISTORY_TEXT = ("created", "created_by", "comment", "author")


class _Parsed(NamedTuple):
    """A layer whose entries are parsed and whose digests may still be computing."""

    layer: int
    stream: LayerStream
    entries: list[TarEntry]


class FileRow(NamedTuple):
    """One row of :attr:`Image.files`, as :meth:`Image.iter_contents` yields it."""

    layer: int
    entry: int
    path: str
    type: str
    size: int
    mode: int
    uid: int
    gid: int
    mtime: float
    sha256: str | None


def open_image(
    path: str | os.PathLike[str],
    *,
    ref: str | None = None,
    platform: str | None = None,
    strict: bool = False,
) -> Image:
    """Open one image from a ``docker save`` archive, an OCI layout (dir or tar), and so on.

    The format is recognised from the content, never from the file name.

    Parameters
    ----------
    path
        A tar (plain, or gzip/xz-compressed as a whole) or a directory.
    ref
        Which image, when the archive holds several: a tag (``name:tag``, or just ``tag``),
        an image id or a manifest digest (a unique prefix is enough).
    platform
        ``os/arch[/variant]`` for multi-platform layouts. By default the only platform, or
        ``linux/amd64`` when there are several.
    strict
        Raise :class:`~layerforensics.errors.DigestMismatchError` on a digest or diff_id
        mismatch instead of warning and marking the layer ``verified=False``.

    Raises
    ------
    LayerForensicsError
        Any subclass: not an image, corrupt, missing blob, ambiguous reference or platform.
    """
    container = open_container(path)
    try:
        records = discover(container)
        record = _select(records, ref, platform, str(path))
    except BaseException:
        container.close()
        raise
    return Image(record, strict=strict)


def list_images(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Every image in an archive or layout.

    Returns
    -------
    DataFrame
        ``ref`` (string), ``tags`` (list), ``image_id`` (string), ``platform`` (string),
        ``format`` (string), ``layers`` (Int64), ``created`` (UTC datetime).
    """
    container = open_container(path)
    try:
        records = discover(container)
        rows = []
        for r in records:
            config = parse_json(r.config_bytes, r.config_label)
            rows.append(
                {
                    "ref": r.ref,
                    "tags": list(r.tags),
                    "image_id": "sha256:" + hashlib.sha256(r.config_bytes).hexdigest(),
                    "platform": r.platform,
                    "format": r.format,
                    "layers": len(r.layers),
                    "created": config.get("created") if isinstance(config, dict) else None,
                }
            )
    finally:
        container.close()
    df = pd.DataFrame(
        rows, columns=["ref", "tags", "image_id", "platform", "format", "layers", "created"]
    )
    for col in ("ref", "image_id", "platform", "format"):
        df[col] = df[col].astype("string")
    df["layers"] = df["layers"].astype("Int64")
    df["created"] = F.utc_text(df["created"]).array
    return df


def _select(
    records: list[ImageRecord], ref: str | None, platform: str | None, path: str
) -> ImageRecord:
    candidates = records
    if ref is not None:

        def matches(r: ImageRecord) -> bool:
            image_id = hashlib.sha256(r.config_bytes).hexdigest()
            for tag in r.tags:
                if ref in (tag, tag.rsplit(":", 1)[-1]) or tag.endswith("/" + ref):
                    return True
                if ":" not in ref and tag.rsplit(":", 1)[0] == ref:
                    return True
            plain = ref.removeprefix("sha256:")
            manifest = (r.manifest_digest or "").removeprefix("sha256:")
            return len(plain) >= 6 and (image_id.startswith(plain) or manifest.startswith(plain))

        candidates = [r for r in records if matches(r)]
        if not candidates:
            known = sorted({t for r in records for t in r.tags}) or ["(untagged)"]
            raise ImageReferenceError(
                path, f"no image {ref!r}; the archive has: {', '.join(known)}"
            )
    platforms = sorted({r.platform or "unknown" for r in candidates})
    if platform is not None:
        chosen = [r for r in candidates if (r.platform or "").startswith(platform)]
        if not chosen:
            raise PlatformError(
                path, f"no image for platform {platform!r}; present: {', '.join(platforms)}"
            )
        candidates = chosen
    elif len(platforms) > 1:
        amd64 = [r for r in candidates if r.platform == "linux/amd64"]
        if amd64:
            candidates = amd64
        else:
            raise PlatformError(
                path, f"several platforms ({', '.join(platforms)}); pass platform= to choose one"
            )
    # Several manifests may carry the same image (one per tag): they are one image.
    distinct = {hashlib.sha256(r.config_bytes).hexdigest() for r in candidates}
    if len(distinct) > 1:
        listing = ", ".join(sorted({t for r in candidates for t in r.tags}) or ["(untagged)"])
        raise ImageReferenceError(
            path, f"{len(distinct)} images in this archive ({listing}); pass ref= to choose one"
        )
    first = candidates[0]
    first.tags = list(dict.fromkeys(t for r in candidates for t in r.tags))  # merged, in order
    return first


class Image:
    """One container image. Obtain it with :func:`open_image`.

    Frames are computed on first use and cached. Attributes that need no layer contents
    (:attr:`config`, :attr:`history`) never read a layer.

    Attributes
    ----------
    path : str
        What was opened.
    format : str
        The archive format detected (``docker-archive``, ``docker-archive+oci``, ``docker-v1``,
        ``oci-layout``, ``skopeo-dir``, ...).
    tags : list of str
        The references the archive gives this image.
    image_id : str
        ``sha256:`` of the raw config bytes (Docker's image ID).
    platform : str or None
        ``os/arch[/variant]``.
    warnings : list of str
        Everything suspicious noticed so far (digest mismatches, unpaired history, ...).
    """

    def __init__(self, record: ImageRecord, *, strict: bool = False) -> None:
        self._record = record
        self._container: Container = record.container
        self.strict = strict
        self.path = record.container.path
        self.format = record.format
        self.tags = list(record.tags)
        self.platform = record.platform
        self.config_bytes = record.config_bytes
        self.image_id = "sha256:" + hashlib.sha256(record.config_bytes).hexdigest()
        self.warnings: list[str] = list(record.notes)
        self._entries: list[list[TarEntry] | None] = [None] * len(record.layers)
        self._info: list[LayerInfo | None] = [None] * len(record.layers)
        self._replays: dict[int, ReplayResult] = {}
        self._filesystems: dict[int, pd.DataFrame] = {}
        self._lock = threading.RLock()
        config = parse_json(record.config_bytes, record.config_label)
        if not isinstance(config, dict):
            raise CorruptArchiveError(record.config_label, "image config is not a JSON object")
        self.config: dict[str, Any] = config
        if record.config_digest and record.config_digest != self.image_id:
            self._mismatch(record.config_label, "config", record.config_digest, self.image_id)

    # ------------------------------------------------------------------ basics
    @property
    def ref(self) -> str | None:
        return self.tags[0] if self.tags else None

    @property
    def layer_count(self) -> int:
        return len(self._record.layers)

    def __repr__(self) -> str:
        return (
            f"<Image {self.ref or self.image_id[:19]} {self.platform or ''} "
            f"{self.layer_count} layers from {self.path!r}>"
        )

    def close(self) -> None:
        """Release the archive (memory maps, temporary spools)."""
        self._container.close()

    def __del__(self) -> None:
        # Best effort, possibly at interpreter shutdown when modules are already torn down.
        try:  # noqa: SIM105 - contextlib may already be gone at shutdown
            self._container.close()
        except Exception:
            pass

    def __enter__(self) -> Image:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _mismatch(self, label: str, what: str, expected: str, actual: str) -> None:
        message = f"{what} digest mismatch: expected {expected}, content hashes to {actual}"
        if self.strict:
            raise DigestMismatchError(label, message)
        self.warnings.append(f"{label}: {message}")
        warnings.warn(f"{label}: {message}", DigestMismatchWarning, stacklevel=3)

    # ------------------------------------------------------------------ indexing
    def _layer_label(self, n: int) -> str:
        blob = self._record.layers[n]
        if blob.provider is not None:
            return blob.provider.label
        return self._container.label(blob.member)

    def _open_stored(self, n: int) -> LayerStream:
        blob = self._record.layers[n]
        view = self._container.view(blob.member)
        if view is not None:
            return LayerStream(view, self._layer_label(n))
        return LayerStream(
            self._container.open(blob.member),
            self._layer_label(n),
            self._container.size(blob.member),
        )

    def _scan_layer(
        self,
        n: int,
        want: Callable[[TarEntry], bool] | None = None,
        sink: Callable[[int, TarEntry, bytes], None] | None = None,
    ) -> None:
        blob = self._record.layers[n]
        if blob.provider is not None:
            self._entries[n], self._info[n] = blob.provider.scan(want, sink)
            for note in getattr(blob.provider, "notes", ()):
                if note not in self.warnings:
                    self.warnings.append(note)
            return
        hasher = FileHasher()
        try:
            scanned = self._parse_layer(n, hasher, want, sink)
        finally:
            hasher.close()
        self._finish_layer(scanned)

    def _parse_layer(
        self,
        n: int,
        hasher: FileHasher,
        want: Callable[[TarEntry], bool] | None = None,
        sink: Callable[[int, TarEntry, bytes], None] | None = None,
    ) -> _Parsed:
        """Parse layer ``n``; its digests may still be computing (see :meth:`_finish_layer`)."""
        blob = self._record.layers[n]
        stream = self._open_stored(n)
        if self._container.size(blob.member) == 0:
            entries: list[TarEntry] = []  # pre-1.10 archives store an empty layer as 0 bytes
        else:
            try:
                entries = scan_tar(
                    stream, stream.label, want_content=want, on_content=sink, hasher=hasher
                )
            except BaseException:
                with contextlib.suppress(Exception):
                    stream.finish()  # the digest thread ends too
                raise
        return _Parsed(n, stream, entries)

    def _finish_layer(self, parsed: _Parsed) -> None:
        """Wait for a parsed layer's digests, check them, and keep its entries."""
        n, stream = parsed.layer, parsed.stream
        blob = self._record.layers[n]
        stream.finish()
        assert stream.digest is not None and stream.diff_id is not None
        verified: bool | None = None
        checks = []
        if blob.declared_digest and blob.declared_digest.startswith("sha256:"):
            checks.append(("blob", blob.declared_digest, stream.digest))
        if blob.expected_diff_id:
            checks.append(("diff_id", blob.expected_diff_id, stream.diff_id))
        if checks:
            verified = True
            for what, expected, actual in checks:
                if expected != actual:
                    verified = False
                    self._mismatch(stream.label, f"layer {n} {what}", expected, actual)
        self._entries[n] = parsed.entries
        self._info[n] = LayerInfo(
            stream.compression,
            stream.stored_size,
            stream.tar_size,
            stream.digest,
            stream.diff_id,
            verified,
        )

    def index(self, *, progress: Callable[[int, int], None] | None = None) -> None:
        """Read every layer now (one streaming pass each) instead of on the first frame.

        Parameters
        ----------
        progress
            Called as ``progress(layers_done, layers_total)`` after each layer.
        """
        with self._lock, paused_gc():
            # Every layer is parsed before any is waited for: the layer digests (worker
            # threads) of one layer go on while the next is parsed on this one.
            parsed: list[_Parsed] = []
            hasher = FileHasher()
            try:
                for n in range(self.layer_count):
                    if self._entries[n] is None:
                        if self._record.layers[n].provider is not None:
                            self._scan_layer(n)
                        else:
                            parsed.append(self._parse_layer(n, hasher))
                    if progress is not None:
                        progress(n + 1, self.layer_count)
            except BaseException:
                hasher.close()
                for p in parsed:
                    with contextlib.suppress(Exception):
                        p.stream.finish()
                raise
            hasher.close()
            for p in parsed:
                self._finish_layer(p)

    def _index(self) -> list[list[TarEntry]]:
        if any(e is None for e in self._entries):
            self.index()
        return self._entries  # type: ignore[return-value]

    @gc_paused
    def _replay(self, upto: int | None = None) -> ReplayResult:
        entries = self._index()
        top = self.layer_count - 1 if upto is None else upto
        if top not in self._replays:
            result = replay(entries, top)
            if top == self.layer_count - 1:
                self.warnings.extend(result.notes)
            self._replays[top] = result
        return self._replays[top]

    def _check_layer(self, layer: int | None) -> int:
        if layer is None:
            return self.layer_count - 1
        if not isinstance(layer, int) or isinstance(layer, bool):
            raise TypeError("layer must be an int")
        top = layer if layer >= 0 else self.layer_count + layer
        if not 0 <= top < self.layer_count:
            raise IndexError(f"layer {layer} out of range: the image has {self.layer_count} layers")
        return top

    @cached_property
    def legacy_layer_json(self) -> dict[int, dict[str, Any]]:
        """The legacy per-layer ``<v1-id>/json`` of a ``docker save`` archive, by layer index.

        Older saves keep each layer's build container config there (``container_config``,
        ``Env``...), a place secrets hide. Empty for formats that have none.
        """
        out: dict[int, dict[str, Any]] = {}
        for n, blob in enumerate(self._record.layers):
            if blob.provider is not None or not blob.member.endswith("/layer.tar"):
                continue
            name = blob.member[: -len("layer.tar")] + "json"
            if self._container.exists(name):
                meta = parse_json(self._container.read(name), self._container.label(name))
                if isinstance(meta, dict):
                    out[n] = meta
        return out

    # ------------------------------------------------------------------ history
    @cached_property
    def _history_entries(self) -> list[dict[str, Any]]:
        """The history entries, each field of the expected JSON type (or a warning says why
        it is shown as missing)."""
        label = self._record.config_label
        history = self._record.history_override
        if history is None:
            history = self.config.get("history")
            if history is None:
                return []
            if not isinstance(history, list):
                self.warnings.append(f"{label}: history is not a list: ignored")
                return []
        out = []
        for n, h in enumerate(history):
            if not isinstance(h, dict):
                self.warnings.append(f"{label}: history[{n}] is not an object: ignored")
                continue
            bad = [k for k in _HISTORY_TEXT if h.get(k) is not None and not isinstance(h[k], str)]
            if bad:
                h = {**h, **dict.fromkeys(bad)}
                self.warnings.append(
                    f"{label}: history[{n}] {', '.join(bad)} not text: shown as missing"
                )
            out.append(h)
        return out

    @cached_property
    def _pairing(self) -> list[int | None]:
        """For each history entry, the layer it created (None for empty-layer steps)."""
        out: list[int | None] = []
        counter = 0
        for h in self._history_entries:
            if h.get("empty_layer"):
                out.append(None)
            else:
                out.append(counter if counter < self.layer_count else None)
                counter += 1
        if self._history_entries and counter != self.layer_count:
            self.warnings.append(
                f"history has {counter} non-empty steps for {self.layer_count} layers: "
                "layers and steps are paired in order as far as they go"
            )
        return out

    @cached_property
    def history(self) -> pd.DataFrame:
        """Every history entry, empty ones included.

        Returns
        -------
        DataFrame
            ``step`` (int64), ``layer`` (Int64, <NA> for empty-layer steps or unpaired ones),
            ``empty_layer`` (boolean), ``created`` (UTC datetime), ``created_by`` (string),
            ``instruction`` (category), ``arguments`` (string), ``build_args`` (object: dict),
            ``comment`` (string), ``author`` (string).
        """
        hs = self._history_entries
        steps = [parse_created_by(h.get("created_by")) for h in hs]
        return pd.DataFrame(
            {
                "step": pd.array(range(len(hs)), dtype="int64"),
                "layer": F.nullable_int(self._pairing),
                "empty_layer": F.boolean(bool(h.get("empty_layer")) for h in hs),
                "created": F.utc_text(h.get("created") for h in hs).array,
                "created_by": F.string(h.get("created_by") for h in hs),
                "instruction": F.category(s.instruction for s in steps),
                "arguments": F.string(s.arguments for s in steps),
                "build_args": pd.Series([s.build_args for s in steps], dtype="object"),
                "comment": F.string(h.get("comment") for h in hs),
                "author": F.string(h.get("author") for h in hs),
            }
        )

    def _step_of_layer(self) -> dict[int, int]:
        return {layer: step for step, layer in enumerate(self._pairing) if layer is not None}

    # ------------------------------------------------------------------ frames
    @cached_property
    def layers(self) -> pd.DataFrame:
        """One row per layer, bottom first.

        Returns
        -------
        DataFrame
            ``layer`` (int64), ``diff_id``, ``digest`` (string; computed from the bytes),
            ``media_type`` (string, as declared), ``compression`` (category, sniffed),
            ``compressed_size`` (Int64, stored bytes), ``size`` (Int64, sum of regular-file
            sizes, as dive counts it), ``tar_size`` (Int64, uncompressed tar bytes), ``entries``
            (Int64), ``step`` (Int64, the history step), ``created`` (UTC datetime),
            ``created_by`` (string), ``instruction`` (category), ``comment`` (string),
            ``verified`` (boolean; <NA> when nothing declares a digest to check against).
        """
        entries = self._index()
        info: list[LayerInfo] = self._info  # type: ignore[assignment]
        step_of = self._step_of_layer()
        hs = self._history_entries
        steps: list[dict[str, Any]] = [
            hs[step_of[n]] if n in step_of else {} for n in range(self.layer_count)
        ]
        parsed = [parse_created_by(s.get("created_by")) for s in steps]
        return pd.DataFrame(
            {
                "layer": pd.array(range(self.layer_count), dtype="int64"),
                "diff_id": F.string(i.diff_id for i in info),
                "digest": F.string(i.digest for i in info),
                "media_type": F.string(b.media_type for b in self._record.layers),
                "compression": F.category((i.compression for i in info), F.COMPRESSIONS),
                "compressed_size": F.nullable_int(i.stored_size for i in info),
                "size": F.nullable_int(
                    sum(e.size for e in es if e.type == "file") for es in entries
                ),
                "tar_size": F.nullable_int(i.tar_size for i in info),
                "entries": F.nullable_int(len(es) for es in entries),
                "step": F.nullable_int(step_of.get(n) for n in range(self.layer_count)),
                "created": F.utc_text(s.get("created") for s in steps).array,
                "created_by": F.string(s.get("created_by") for s in steps),
                "instruction": F.category(p.instruction for p in parsed),
                "comment": F.string(s.get("comment") for s in steps),
                "verified": F.boolean(i.verified for i in info),
            }
        )

    @cached_property
    @gc_paused
    def files(self) -> pd.DataFrame:
        """One row per tar entry per layer, whiteout markers included.

        Returns
        -------
        DataFrame
            ``layer``, ``entry`` (int64: position in that layer's tar), ``path`` (string,
            absolute, normalised; non-UTF-8 bytes appear as ``\\xNN``), ``type`` (category: file,
            dir, symlink, hardlink, char, block, fifo, whiteout, opaque, aufs-meta), ``size``
            (Int64, data bytes of regular files), ``mode`` (Int64, permission bits with
            setuid/setgid/sticky), ``uid``, ``gid`` (Int64), ``uname``, ``gname`` (string),
            ``mtime`` (UTC datetime), ``linkname`` (string: symlink target, or the absolute
            path a hardlink names), ``whiteout_target`` (string: the path a whiteout hides, or
            the directory an opaque marker empties), ``sha256`` (string, regular files),
            ``xattrs`` (object: dict or None), ``synthetic`` (boolean: eStargz TOC and landmark
            entries), ``status`` (category: present, overwritten, deleted, shadowed, marker),
            ``status_layer`` (Int64: the layer that overwrote or deleted this version).
        """
        entries = self._index()
        result = self._replay()
        flat = [e for es in entries for e in es]
        counts = [len(es) for es in entries]
        n = len(flat)
        mtime, unrepresentable = F.utc_seconds([e.mtime for e in flat])
        if unrepresentable:
            self.warnings.append(
                f"{unrepresentable} entries have an mtime outside years 1677-2262; "
                "their mtime is NaT (the raw value is in the tar header)"
            )
        # One list comprehension per column: several times faster than transposing tuples.
        return pd.DataFrame(
            {
                "layer": np.repeat(np.arange(len(entries), dtype="int64"), counts),
                "entry": np.concatenate([np.arange(c, dtype="int64") for c in [0, *counts]]),
                "path": F.string([e.path for e in flat]),
                "type": F.category([e.type for e in flat], F.FILE_TYPES),
                "size": F.ints([e.size for e in flat]),
                "mode": F.ints([e.mode for e in flat]),
                "uid": F.ints([e.uid for e in flat]),
                "gid": F.ints([e.gid for e in flat]),
                "uname": F.string([e.uname for e in flat]),
                "gname": F.string([e.gname for e in flat]),
                "mtime": mtime.array,
                "linkname": F.string([e.linkname for e in flat]),
                "whiteout_target": F.string([e.whiteout_target for e in flat]),
                "sha256": F.string([e.sha256 for e in flat]),
                "xattrs": pd.Series([e.xattrs for e in flat], dtype="object"),
                "synthetic": F.boolean([e.synthetic for e in flat]),
                "status": pd.Categorical.from_codes(
                    np.fromiter(itertools.chain.from_iterable(result.status), "int8", n),
                    categories=STATUSES,
                ),
                "status_layer": F.nullable_int(
                    np.fromiter(itertools.chain.from_iterable(result.status_layer), "int64", n)
                ),
            }
        )

    @cached_property
    @gc_paused
    def changes(self) -> pd.DataFrame:
        """One row per (layer, path) event.

        A directory whiteout, an opaque directory or a file replacing a directory expands into
        one ``deleted`` row per path it hides. ``modified`` means that type, content, mode, uid,
        gid, link target or device numbers differ; an entry rewritten identically (Docker
        re-emits parent directories whose mtime changed) is not a change.

        Returns
        -------
        DataFrame
            ``layer`` (int64), ``path`` (string), ``change`` (category: added, modified,
            deleted), ``type`` (category, of the version written, or of the version deleted),
            ``size`` (Int64), ``prev_layer`` (Int64: whose version this replaced or deleted),
            ``cause`` (category: write, whiteout, opaque, type-change), ``entry`` (Int64: the
            entry written, in ``layer``), ``prev_entry`` (Int64).
        """
        files = self.files
        cs = self._replay().changes
        starts = self._entry_starts()
        # Type and size of the version written (or deleted), taken from `files` by position.
        ver_entry = np.asarray(cs.ver_entry, dtype="int64")
        row = starts[np.asarray(cs.ver_layer, dtype="int64")] + ver_entry
        change = np.asarray(cs.change, dtype="int8")
        written = change != CHANGES.index("deleted")
        layer = np.asarray(cs.layer, dtype="int64")
        path = pa.array(cs.path, type=pa.large_string())
        # Per layer: deletions first (they act first), then writes; each in path order.
        order = pc.sort_indices(
            pa.table({"layer": layer, "writes": written, "path": path}),
            sort_keys=[("layer", "ascending"), ("writes", "ascending"), ("path", "ascending")],
        ).to_numpy()
        prev_layer = np.asarray(cs.prev_layer, dtype="int64")
        prev_entry = np.asarray(cs.prev_entry, dtype="int64")
        entry = np.where(written, ver_entry, -1)
        return pd.DataFrame(
            {
                "layer": layer[order],
                "path": pd.arrays.ArrowStringArray(path.take(order)),
                "change": pd.Categorical.from_codes(change[order], categories=CHANGES),
                "type": files["type"].array.take(row[order]),
                "size": files["size"].array.take(row[order]),
                "prev_layer": F.nullable_int(prev_layer[order]),
                "cause": pd.Categorical.from_codes(
                    np.asarray(cs.cause, dtype="int8")[order], categories=CAUSES
                ),
                "entry": F.nullable_int(entry[order]),
                "prev_entry": F.nullable_int(prev_entry[order]),
            }
        )

    def _entry_starts(self) -> np.ndarray:
        """Row of `files` where each layer's entries start (a layer's entry i is row start+i)."""
        return np.cumsum([0] + [len(es) for es in self._index()], dtype="int64")

    def filesystem(self, layer: int | None = None) -> pd.DataFrame:
        """The merged filesystem a container would see, after ``layer`` (default: the top).

        Directories only implied by deeper paths (no entry of their own) are not listed.

        Parameters
        ----------
        layer
            0-based layer index; negative counts from the top.

        Returns
        -------
        DataFrame
            ``path`` (string), ``type`` (category), ``size`` (Int64; a hardlink shows the size
            of the file it resolves to), ``mode``, ``uid``, ``gid`` (Int64), ``mtime`` (UTC),
            ``linkname`` (string), ``sha256`` (string; a hardlink's is its target's),
            ``layer`` (int64: where this version came from), ``entry`` (int64),
            ``content_layer`` (Int64: the layer holding the bytes; differs from ``layer`` for a
            hardlink into a lower layer), ``content_entry`` (Int64).
        """
        top = self._check_layer(layer)
        cached = self._filesystems.get(top)
        if cached is None:
            cached = self._filesystems[top] = self._filesystem(top)
        return cached

    @gc_paused
    def _filesystem(self, top: int) -> pd.DataFrame:
        # Rows of `files`, taken by position: the merged view is a selection of entries.
        files = self.files
        result = self._replay(top)
        starts = self._entry_starts()
        paths = pa.array(list(result.state), type=pa.large_string())
        by_path = pc.sort_indices(paths).to_numpy()
        versions = np.fromiter(
            itertools.chain.from_iterable(result.state.values()), "int64", 2 * len(paths)
        ).reshape(-1, 2)
        own = (starts[versions[:, 0]] + versions[:, 1])[by_path]
        # Where the bytes are: the entry itself, or for a hardlink the file it resolves to.
        types = files["type"].cat.codes.to_numpy()
        data = own.copy()
        has_content = np.ones(len(own), dtype=bool)
        for i in np.flatnonzero(types[own] == F.FILE_TYPES.index("hardlink")):
            version = tuple(versions[by_path[i]].tolist())
            target = result.link_targets.get(version)  # type: ignore[arg-type]
            if target is None:
                has_content[i] = False
            else:
                data[i] = starts[target[0]] + target[1]
        is_file_content = has_content & (types[data] == F.FILE_TYPES.index("file"))
        taken = {c: files[c].array.take(own) for c in ("path", "type", "mode", "uid", "gid")}
        return pd.DataFrame(
            {
                **taken,
                "size": files["size"].array.take(data),
                "mtime": files["mtime"].array.take(own),
                "linkname": files["linkname"].array.take(own),
                "sha256": files["sha256"].array.take(
                    np.where(is_file_content, data, -1), allow_fill=True
                ),
                "layer": files["layer"].to_numpy()[own],
                "entry": files["entry"].to_numpy()[own],
                "content_layer": pd.arrays.IntegerArray(
                    files["layer"].to_numpy()[data], ~is_file_content
                ),
                "content_entry": pd.arrays.IntegerArray(
                    files["entry"].to_numpy()[data], ~is_file_content
                ),
            }
        )

    @cached_property
    @gc_paused
    def deleted(self) -> pd.DataFrame:
        """Every path whose bytes survive in some layer but not in the final filesystem.

        Returns
        -------
        DataFrame
            ``path`` (string), ``type`` (category), ``size`` (Int64), ``layer`` (int64: the
            layer holding the last surviving version), ``entry`` (int64), ``deleted_layer``
            (int64: the layer that removed it), ``cause`` (category: whiteout, opaque,
            type-change), ``alive_as`` (string: a path of the final filesystem that is a
            hardlink to these same bytes, when one survives).
        """
        entries = self._index()
        result = self._replay()
        alive: dict[tuple[int, int], str] = {}
        for path, v in result.state.items():
            target = result.link_targets.get(v)
            if target is not None:
                alive.setdefault(target, path)
        items = sorted(result.removed.items())
        return pd.DataFrame(
            {
                "path": F.string(p for p, _ in items),
                "type": F.category(
                    (entries[r.version[0]][r.version[1]].type for _, r in items), F.FILE_TYPES
                ),
                "size": F.nullable_int(entries[r.version[0]][r.version[1]].size for _, r in items),
                "layer": pd.array([r.version[0] for _, r in items], dtype="int64"),
                "entry": pd.array([r.version[1] for _, r in items], dtype="int64"),
                "deleted_layer": pd.array([r.deleted_layer for _, r in items], dtype="int64"),
                "cause": pd.Categorical.from_codes(
                    np.array([r.cause for _, r in items], dtype="int8"), categories=CAUSES
                ),
                "alive_as": F.string(alive.get(r.version) for _, r in items),
            }
        )

    # ------------------------------------------------------------------ bytes
    def _resolve(self, path: str, layer: int | None) -> tuple[int, int]:
        """The (layer, entry) whose bytes ``path`` has, as ``layer`` wrote it (or finally)."""
        entries = self._index()
        norm = normalize_path(path)
        if layer is None:
            result = self._replay()
            version = result.state.get(norm)
            if version is None:
                raise PathNotFoundError(self.path, f"{norm} is not in the final filesystem")
            return version
        n = self._check_layer(layer)
        for i in range(len(entries[n]) - 1, -1, -1):  # the last entry wins within a layer
            e = entries[n][i]
            if e.path == norm and e.type not in MARKER_TYPES:
                return n, i
        raise PathNotFoundError(self.path, f"layer {n} has no entry {norm}")

    def _content_version(
        self, version: tuple[int, int], *, missing_ok: bool = False
    ) -> tuple[int, int] | None:
        """The version holding the bytes of ``version`` (itself, or a hardlink's target)."""
        layer, i = version
        e = self._index()[layer][i]
        if e.type != "hardlink":
            return version
        target = self._replay().link_targets.get(version)
        if target is None:
            # Resolve against the filesystem as of that layer (the link may predate the top).
            target = self._replay(layer).link_targets.get(version)
        if target is None and not missing_ok:
            raise PathNotFoundError(self.path, f"hardlink {e.path} -> {e.linkname} has no target")
        return target

    def read(self, path: str, *, layer: int | None = None) -> bytes:
        """The bytes of ``path`` as ``layer`` wrote it, or as the final filesystem shows it.

        Hardlinks are followed to the bytes they share, even when the source path was deleted
        later. Symlinks are not followed (you get an error naming the link target).

        Raises
        ------
        PathNotFoundError
            The path is not in that layer (or in the final filesystem).
        """
        return self.read_entry(*self._resolve(path, layer))

    def read_entry(self, layer: int, entry: int) -> bytes:
        """The bytes of one :attr:`files` row (``layer``, ``entry``)."""
        entries = self._index()
        content = self._content_version((layer, entry))
        assert content is not None
        layer, entry = content
        e = entries[layer][entry]
        if e.type != "file":
            detail = f" -> {e.linkname}" if e.linkname else ""
            raise PathNotFoundError(
                self.path, f"{e.path} in layer {layer} is a {e.type}{detail}, not a file"
            )
        blob = self._record.layers[layer]
        if blob.provider is not None:
            return blob.provider.read(e)
        info = self._info[layer]
        view = self._container.view(blob.member)
        if info is not None and info.compression == "none" and view is not None:
            return bytes(view[e.offset : e.offset + e.size])
        return self._read_stream(layer, e.offset, e.size)

    def _read_stream(self, layer: int, offset: int, size: int) -> bytes:
        blob = self._record.layers[layer]
        out = bytearray()
        pos = 0
        with self._container.open(blob.member) as raw:
            for chunk in open_decompressed(raw, self._layer_label(layer)):
                end = pos + len(chunk)
                if end > offset:
                    start = max(0, offset - pos)
                    out += chunk[start : start + size - len(out)]
                    if len(out) >= size:
                        break
                pos = end
        if len(out) != size:
            raise CorruptArchiveError(self._layer_label(layer), "layer ended inside a file's data")
        return bytes(out)

    def iter_contents(
        self, *, max_size: int | None = None, layers: list[int] | None = None
    ) -> Iterator[tuple[FileRow, bytes]]:
        """Every regular-file version of every layer, with its bytes, in layer and tar order.

        Each layer is decompressed at most once: if the image is not indexed yet, the indexing
        pass itself delivers the bytes; uncompressed layers are read by offset.

        Parameters
        ----------
        max_size
            Skip files larger than this many bytes (their rows are not yielded).
        layers
            Only these layers.

        Yields
        ------
        (FileRow, bytes)
        """
        wanted = (
            range(self.layer_count) if layers is None else [self._check_layer(n) for n in layers]
        )
        for n in wanted:
            if self._entries[n] is None:
                yield from self._scan_with_contents(n, max_size)
            else:
                yield from self._contents_from_index(n, max_size)

    @staticmethod
    def _row(n: int, i: int, e: TarEntry) -> FileRow:
        return FileRow(n, i, e.path, e.type, e.size, e.mode, e.uid, e.gid, e.mtime, e.sha256)

    def _scan_with_contents(self, n: int, max_size: int | None) -> Iterator[tuple[FileRow, bytes]]:
        # The scan runs on a worker thread and hands files over a bounded queue, so the caller
        # consumes them while the single pass goes on (memory stays bounded).
        def want(e: TarEntry) -> bool:
            return not e.synthetic and (max_size is None or e.size <= max_size)

        def work(emit: Callable[[tuple[int, TarEntry, bytes]], None]) -> None:
            self._scan_layer(n, want, lambda i, e, data: emit((i, e, data)))

        with self._lock:
            for i, e, data in background(work, maxsize=64):
                yield self._row(n, i, e), data

    def _contents_from_index(self, n: int, max_size: int | None) -> Iterator[tuple[FileRow, bytes]]:
        entries = self._entries[n]
        assert entries is not None
        wanted = [
            (i, e)
            for i, e in enumerate(entries)
            if e.type == "file" and not e.synthetic and (max_size is None or e.size <= max_size)
        ]
        if not wanted:
            return
        blob = self._record.layers[n]
        if blob.provider is not None:
            for i, e in wanted:
                yield self._row(n, i, e), blob.provider.read(e)
            return
        info = self._info[n]
        view = self._container.view(blob.member)
        if info is not None and info.compression == "none" and view is not None:
            for i, e in wanted:
                yield self._row(n, i, e), bytes(view[e.offset : e.offset + e.size])
            return
        # One streaming decompression for the whole layer, cutting files out by offset.
        k = 0
        pos = 0
        buf = bytearray()
        buf_start = 0
        with self._container.open(blob.member) as raw:
            for chunk in open_decompressed(raw, self._layer_label(n)):
                buf += chunk
                pos += len(chunk)
                while k < len(wanted):
                    i, e = wanted[k]
                    if e.offset + e.size > pos:
                        break
                    start = e.offset - buf_start
                    yield self._row(n, i, e), bytes(buf[start : start + e.size])
                    k += 1
                keep_from = wanted[k][1].offset if k < len(wanted) else pos
                drop = keep_from - buf_start
                if drop > 0:
                    del buf[:drop]
                    buf_start = keep_from
                if k >= len(wanted):
                    break

    # ------------------------------------------------------------------ export
    def extract(
        self,
        dest: str | os.PathLike[str],
        *,
        layer: int | None = None,
        path: str | None = None,
        merged: bool = False,
    ) -> list[Path]:
        """Write files safely under ``dest``: one layer's entries, or the merged filesystem.

        Only regular files, directories and symlinks are written. Nothing is written outside
        ``dest``: paths are normalised, symlinks are created last (stored as-is, never
        followed while writing), and no device, fifo or setuid bit is created. Existing files
        in ``dest`` are not overwritten. Each layer is read once.

        Parameters
        ----------
        dest
            The export folder (created if needed).
        layer
            With ``merged=False`` (default), export the entries that layer wrote (the top layer
            if None). With ``merged=True``, export the filesystem as it stood after that layer.
        path
            Only this path and what is below it.
        merged
            Export the merged filesystem instead of one layer's own entries.

        Returns
        -------
        list of Path
            The files and links written.

        Raises
        ------
        UnsafePathError
            A path would land outside ``dest`` (never expected after normalisation; checked anyway).
        """
        from ._export import export

        return export(self, dest, layer=layer, path=path, merged=merged)

    # ------------------------------------------------------------------ Dockerfile
    def dockerfile(self) -> str:
        """A Dockerfile reconstructed from the history (best effort; base steps included)."""
        steps: list[tuple[BuildStep, bool]] = [
            (parse_created_by(h.get("created_by")), bool(h.get("empty_layer")))
            for h in self._history_entries
        ]
        return reconstruct(steps)

    # ------------------------------------------------------------------ analyses
    # Thin delegations: the analysis modules own the logic and take the image as input, so
    # data flows one way (image -> analysis) and each is also callable as a plain function.
    def efficiency(self, mode: Literal["layerforensics", "dive"] = "layerforensics") -> Efficiency:
        """Efficiency score and wasted bytes; see :func:`layerforensics.waste.efficiency`."""
        from .waste import efficiency

        return efficiency(self, mode=mode)

    def waste(self) -> pd.DataFrame:
        """One row per path stored more than once or deleted; see :func:`.waste.waste`."""
        from .waste import waste

        return waste(self)

    def layer_waste(self) -> pd.DataFrame:
        """Per-layer added/modified/deleted/reclaimable bytes; see :func:`.waste.layer_waste`."""
        from .waste import layer_waste

        return layer_waste(self)

    def secrets(self, *, redact: bool = True, **options: Any) -> pd.DataFrame:
        """Every secret sighting; see :func:`layerforensics.secrets.find_secrets`."""
        from .secrets import find_secrets

        # A progress callback does not change the result: it is not part of the cache key.
        key = (redact, tuple(sorted((k, v) for k, v in options.items() if k != "progress")))
        cache: dict[Any, pd.DataFrame] = self.__dict__.setdefault("_secrets_cache", {})
        if key not in cache:
            cache[key] = find_secrets(self, redact=redact, **options)
        return cache[key]

    def secret_groups(self, **options: Any) -> pd.DataFrame:
        """One row per distinct secret; see :func:`layerforensics.secrets.secret_groups`."""
        from .secrets import secret_groups

        return secret_groups(self, **options)

    def recover(self, row: Any) -> bytes:
        """The bytes of the file version a secret finding came from."""
        from .secrets import recover

        return recover(self, row)

    @property
    def secrets_scanned(self) -> bool:
        """True once :meth:`secrets` has run (displays use it to avoid starting a scan)."""
        return bool(self.__dict__.get("_secrets_cache"))

    # ------------------------------------------------------------------ notebook and SQL
    def _repr_html_(self) -> str:
        from .display import summary_html

        small = sum(
            self._container.size(b.member)
            for b in self._record.layers
            if b.provider is None and self._container.exists(b.member)
        ) < (256 << 20)
        return summary_html(self, secrets=self.secrets_scanned or small)

    def sql(self, query: str, /, **extra: pd.DataFrame) -> pd.DataFrame:
        """Run DuckDB SQL over this image's frames (``layers``, ``files``, ``changes``, ...)."""
        from .query import image_sql

        return image_sql(self, query, **extra)

    def to_parquet(self, folder: str | os.PathLike[str], **options: Any) -> dict[str, Path]:
        """Write this image's frames as parquet; see :func:`layerforensics.query.to_parquet`."""
        from .query import to_parquet

        return to_parquet(self, folder, **options)

    def explore(self, **options: Any) -> Any:
        """The interactive explorer widget; see :func:`layerforensics.explore.explore`."""
        from .explore import explore

        return explore(self, **options)

    # ------------------------------------------------------------------ helpers for analyses
    def _entry(self, layer: int, entry: int) -> TarEntry:
        return self._index()[layer][entry]
