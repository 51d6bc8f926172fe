"""The :class:`Host`: a seized container host's runtime storage as DataFrames and images."""

from __future__ import annotations

import json
import os
import posixpath
from functools import cached_property
from typing import Any

import pandas as pd

from .. import _frames as F
from .._blobs import LayerStream
from .._container import Container
from .._sources._model import ImageRecord, LayerBlob, platform_of
from .._tarscan import scan_tar
from ..errors import ImageReferenceError, LayerForensicsError
from ..image import Image
from ._docker import ContainerRecord, HostImageRecord, StorageRoot, find_roots
from ._fs import HostFS, open_fs
from ._provider import DiskLayer, DiskLayerProvider
from ._tarsplit import crc64_iso

__all__ = ["Host", "HostContainer", "open_host"]

_ZERO = "0001-01-01T00:00:00Z"
#: What Docker's ``<mount-id>-init`` layer puts in every container (daemon/initlayer).
INIT_PLACEHOLDERS = frozenset(
    {
        "/.dockerenv",
        "/.dockerinit",
        "/dev",
        "/dev/console",
        "/dev/pts",
        "/dev/shm",
        "/etc/hostname",
        "/etc/hosts",
        "/etc/mtab",
        "/etc/resolv.conf",
        "/proc",
        "/sys",
        "/run",  # podman's
        "/run/.containerenv",
    }
)
VERIFY_PROBLEMS = ["modified", "added", "missing", "type-changed", "unverifiable"]
TIMELINE_EVENTS = [
    "image-created",
    "image-history",
    "image-tagged",
    "container-created",
    "container-started",
    "container-finished",
    "file-written",
    "file-deleted",
]


class _EvidenceContainer(Container):
    """The (never read) core container of host images: layers come from providers."""

    def __init__(self, fs: HostFS) -> None:
        self.path = fs.path
        self._fs = fs

    def label(self, name: str) -> str:
        return self._fs.label(name)


def open_host(path: str | os.PathLike[str]) -> Host:
    """Open the container storage of a seized host, read-only.

    Parameters
    ----------
    path
        A directory (``/var/lib/docker``, ``/var/lib/containers/storage``, or a mounted disk
        image holding one of them under ``var/lib/``), or a tar of one (plain or compressed).

    Raises
    ------
    LayerForensicsError
        No Docker or containers/storage root was found.
    """
    return Host(path)


def _mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else empty: metadata of a damaged record reads as
    absent (the frames show <NA>) instead of failing the whole listing."""
    return value if isinstance(value, dict) else {}


def _time(value: Any) -> pd.Timestamp | None:
    if not value or value == _ZERO or str(value).startswith("0001-01-01"):
        return None
    ts = pd.to_datetime(str(value), utc=True, errors="coerce", format="ISO8601")
    return None if pd.isna(ts) else ts


def _times(values: list[Any]) -> Any:
    return pd.array([_time(v) for v in values], dtype="datetime64[ns, UTC]")


class Host:
    """A container host's storage. Obtain it with :func:`open_host`.

    Attributes
    ----------
    path : str
        What was opened.
    roots : list
        The storage roots found (a Docker root, a containers/storage root, or both).
    warnings : list of str
        Everything odd noticed while reading (missing layers, unparsable files...).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self.fs = open_fs(path)
        try:
            self.roots: list[StorageRoot] = find_roots(self.fs)
        except BaseException:
            self.fs.close()
            raise
        self._providers: dict[str, DiskLayerProvider] = {}
        self._images: dict[str, Image] = {}

    def __repr__(self) -> str:
        kinds = ", ".join(f"{r.kind}:{r.driver}" for r in self.roots)
        return f"<Host {self.path!r} ({kinds})>"

    def close(self) -> None:
        """Release the evidence (memory maps, the temporary spool of a compressed tar)."""
        self.fs.close()

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def warnings(self) -> list[str]:
        return [n for r in self.roots for n in r.notes]

    def provider(self, layer: DiskLayer) -> DiskLayerProvider:
        """One cached provider per layer directory (shared by every image using it)."""
        if layer.root not in self._providers:
            self._providers[layer.root] = DiskLayerProvider(self.fs, layer)
        return self._providers[layer.root]

    # ------------------------------------------------------------------ images
    @cached_property
    def _image_records(self) -> list[tuple[StorageRoot, HostImageRecord]]:
        return [(root, rec) for root in self.roots for rec in root.images()]

    @cached_property
    def images(self) -> pd.DataFrame:
        """Every image in the storage.

        Returns
        -------
        DataFrame
            ``image_id`` (string), ``tags`` (list), ``digests`` (list: ``repo@sha256:...``
            pulled manifest digests), ``created`` (UTC, from the config), ``last_updated``
            (UTC: last pull or tag, Docker's ``lastUpdated``), ``layers`` (Int64), ``size``
            (Int64: bytes of the layers as the store accounts them), ``format`` (string:
            ``docker-overlay2``, ``containers-storage-overlay``...), ``platform`` (string).
        """
        rows = []
        for _root, r in self._image_records:
            try:
                config = json.loads(r.config_bytes)
            except (UnicodeDecodeError, json.JSONDecodeError):
                config = {}
            rows.append((r, config))
        return pd.DataFrame(
            {
                "image_id": F.string(r.image_id for r, _ in rows),
                "tags": pd.Series([list(r.tags) for r, _ in rows], dtype="object"),
                "digests": pd.Series([list(r.digests) for r, _ in rows], dtype="object"),
                "created": _times([c.get("created") for _, c in rows]),
                "last_updated": _times([r.last_updated for r, _ in rows]),
                "layers": pd.array([len(r.layers) for r, _ in rows], dtype="Int64"),
                "size": pd.array([r.size for r, _ in rows], dtype="Int64"),
                "format": F.string(r.format for r, _ in rows),
                "platform": F.string(
                    (platform_of(c) if isinstance(c, dict) else None) for _, c in rows
                ),
            }
        )

    def _find_image(self, ref: str) -> HostImageRecord:
        plain = ref.removeprefix("sha256:")
        matches = []
        for _root, r in self._image_records:
            rid = r.image_id.removeprefix("sha256:")
            names = r.tags + r.digests
            if ref in names or (":" not in ref and f"{ref}:latest" in names):
                return r
            short = any(t.split("/")[-1] in (ref, f"{ref}:latest") for t in r.tags)
            if short or (len(plain) >= 4 and rid.startswith(plain)):
                matches.append(r)
        if len(matches) == 1:
            return matches[0]
        if not matches:
            known = sorted({t for _, r in self._image_records for t in r.tags}) or ["(none)"]
            raise ImageReferenceError(self.path, f"no image {ref!r} on this host; tags: {known}")
        raise ImageReferenceError(self.path, f"{ref!r} names {len(matches)} images")

    def _image_from(
        self, r: HostImageRecord, extra: list[DiskLayer] | None = None, fmt: str | None = None
    ) -> Image:
        layers = [
            LayerBlob(
                member=layer.root,
                expected_diff_id=(r.diff_ids[n] if n < len(r.diff_ids) else None),
                provider=self.provider(layer),
            )
            for n, layer in enumerate(r.layers + (extra or []))
        ]
        history = r.history_override
        if extra and history is None:
            try:
                history = _mapping(json.loads(r.config_bytes)).get("history") or []
            except (UnicodeDecodeError, json.JSONDecodeError):
                history = None
            if not isinstance(history, list):
                history = None  # the Image reports a damaged history itself
        if extra and history is not None:
            history = [*history, *({"created_by": "(container writable layer)"} for _ in extra)]
        record = ImageRecord(
            container=_EvidenceContainer(self.fs),
            format=fmt or r.format,
            config_bytes=r.config_bytes,
            config_label=r.config_label,
            layers=layers,
            tags=list(r.tags),
            config_digest=r.image_id if r.image_id.startswith("sha256:") else None,
            history_override=history,
        )
        image = Image(record)
        if not r.image_id.startswith("sha256:"):
            image.image_id = r.image_id  # pre-1.10: the v1 id names the image
        return image

    def image(self, ref_or_id: str) -> Image:
        """The image as a core :class:`~layerforensics.image.Image`, layers read from disk.

        Every frame of the archive API is available (``files``, ``changes``, ``filesystem()``,
        ``deleted``, ``read``...). With the layers' tar-split records present, an untouched
        image gives the same ``files`` / ``changes`` / ``filesystem()`` / ``deleted`` as its
        ``docker save``.

        Parameters
        ----------
        ref_or_id
            A tag (``busybox:latest``, ``busybox``), a ``repo@sha256:`` digest, or a unique
            prefix of the image id.
        """
        r = self._find_image(ref_or_id)
        if r.image_id not in self._images:
            self._images[r.image_id] = self._image_from(r)
        return self._images[r.image_id]

    # ------------------------------------------------------------------ containers
    @cached_property
    def _container_records(self) -> list[ContainerRecord]:
        return [c for root in self.roots for c in root.containers()]

    @cached_property
    def containers(self) -> pd.DataFrame:
        """Every container in the storage.

        Returns
        -------
        DataFrame
            ``id``, ``name``, ``image`` (the reference it was run from), ``image_id`` (string),
            ``state`` (category: running, paused, restarting, dead, exited, created: as the
            daemon last recorded it), ``created``, ``started``, ``finished`` (UTC, NaT when
            never), ``exit_code`` (Int64), ``command`` (string), ``mounts`` (list of
            ``source:destination[:ro]`` strings; named volumes as ``volume/<name>``),
            ``privileged`` (boolean), ``driver`` (string), ``mount_id`` (string), ``upper_dir``
            (string: the writable layer's directory in the evidence), ``log`` (string: the
            json-file log in the evidence).
        """
        rows = []
        for c in self._container_records:
            state = _mapping(c.config.get("State"))
            if state.get("Running"):
                st = "paused" if state.get("Paused") else "running"
            elif state.get("Restarting"):
                st = "restarting"
            elif state.get("Dead"):
                st = "dead"
            elif _time(state.get("StartedAt")) is None and "StartedAt" in state:
                st = "created"
            elif state:
                st = "exited"
            else:
                st = None
            mounts = []
            points = _mapping(c.config.get("MountPoints"))
            for dest, m in sorted(points.items(), key=lambda kv: str(kv[0])):
                m = _mapping(m)
                source = m.get("Source") or (f"volume/{m['Name']}" if m.get("Name") else "")
                ro = "" if m.get("RW", True) else ":ro"
                mounts.append(f"{source}:{dest}{ro}")
            if not points:
                for dest, source in _mapping(c.config.get("Volumes")).items():
                    mounts.append(f"{source}:{dest}")
            args = c.config.get("Args") or []
            args = args if isinstance(args, list) else [args]
            command = " ".join(str(x) for x in [c.config.get("Path"), *args] if x is not None)
            exit_code = state.get("ExitCode")
            if not isinstance(exit_code, int) or isinstance(exit_code, bool):
                exit_code = None
            privileged = _mapping(c.hostconfig).get("Privileged")
            rows.append(
                {
                    "id": c.id,
                    "name": c.name,
                    "image": c.image,
                    "image_id": c.image_id,
                    "state": st,
                    "created": c.config.get("Created"),
                    "started": state.get("StartedAt"),
                    "finished": state.get("FinishedAt"),
                    "exit_code": exit_code if st not in ("created", None) else None,
                    "command": command or None,
                    "mounts": mounts,
                    "privileged": privileged if isinstance(privileged, bool) else None,
                    "driver": c.driver,
                    "mount_id": c.mount_id,
                    "upper_dir": c.upper.root if c.upper else None,
                    "log": c.log_path,
                }
            )
        cols = [
            "id",
            "name",
            "image",
            "image_id",
            "state",
            "created",
            "started",
            "finished",
            "exit_code",
            "command",
            "mounts",
            "privileged",
            "driver",
            "mount_id",
            "upper_dir",
            "log",
        ]
        df = pd.DataFrame(rows, columns=cols)
        for col in (
            "id",
            "name",
            "image",
            "image_id",
            "command",
            "driver",
            "mount_id",
            "upper_dir",
            "log",
        ):
            df[col] = df[col].astype("string")
        df["state"] = pd.Categorical(
            df["state"], categories=["running", "paused", "restarting", "dead", "exited", "created"]
        )
        for col in ("created", "started", "finished"):
            df[col] = _times(list(df[col]))
        df["exit_code"] = pd.array(list(df["exit_code"]), dtype="Int64")
        df["privileged"] = pd.array(list(df["privileged"]), dtype="boolean")
        df["mounts"] = pd.Series(list(df["mounts"]), dtype="object")
        return df.sort_values(["created", "id"], kind="stable", ignore_index=True)

    def container(self, id_or_name: str) -> HostContainer:
        """One container: its drift, merged filesystem, bytes and log.

        Parameters
        ----------
        id_or_name
            The name (with or without the leading ``/``) or a unique prefix of the id.
        """
        want = id_or_name.lstrip("/")
        exact = [c for c in self._container_records if (c.name or "").lstrip("/") == want]
        if not exact:
            exact = [c for c in self._container_records if c.id.startswith(want) and want]
        if len(exact) != 1:
            if not exact:
                raise LayerForensicsError(self.path, f"no container {id_or_name!r}")
            ids = ", ".join(c.id[:12] for c in exact)
            raise LayerForensicsError(self.path, f"{id_or_name!r} names several containers: {ids}")
        return HostContainer(self, exact[0])

    # ------------------------------------------------------------------ timeline
    def timeline(self) -> pd.DataFrame:
        """Image creation and tagging, container lifecycle and writable-layer file times.

        Returns
        -------
        DataFrame
            ``time`` (UTC), ``event`` (category: image-created, image-history, image-tagged,
            container-created, container-started, container-finished, file-written,
            file-deleted), ``image_id``, ``container_id``, ``name`` (tag or container name),
            ``path`` (string: the file, for file events), ``detail`` (string), sorted by time.
        """
        rows: list[tuple[Any, str, str | None, str | None, str | None, str | None, str | None]]
        rows = []
        for _root, r in self._image_records:
            try:
                config = _mapping(json.loads(r.config_bytes))
            except (UnicodeDecodeError, json.JSONDecodeError):
                config = {}
            name = r.tags[0] if r.tags else None
            rows.append(
                (config.get("created"), "image-created", r.image_id, None, name, None, None)
            )
            history = config.get("history") or []
            for h in (_mapping(h) for h in (history if isinstance(history, list) else [])):
                rows.append(
                    (
                        h.get("created"),
                        "image-history",
                        r.image_id,
                        None,
                        name,
                        None,
                        h.get("created_by"),
                    )
                )
            if r.last_updated:
                rows.append(
                    (
                        r.last_updated,
                        "image-tagged",
                        r.image_id,
                        None,
                        name,
                        None,
                        ", ".join(r.tags + r.digests) or None,
                    )
                )
        containers = self.containers
        for c in containers.itertuples():
            for col, event in (
                ("created", "container-created"),
                ("started", "container-started"),
                ("finished", "container-finished"),
            ):
                value = getattr(c, col)
                if pd.notna(value):
                    detail = c.command if col != "finished" else f"exit code {c.exit_code}"
                    rows.append((value, event, c.image_id, c.id, c.name, None, detail))
        for rec in self._container_records:
            if rec.upper is None:
                continue
            try:
                changes = HostContainer(self, rec).changes
            except LayerForensicsError as exc:
                rows.append((None, "file-written", rec.image_id, rec.id, rec.name, None, str(exc)))
                continue
            for ch in changes.itertuples():
                if pd.isna(ch.mtime):
                    continue
                event = "file-deleted" if ch.change == "deleted" else "file-written"
                rows.append(
                    (
                        ch.mtime,
                        event,
                        rec.image_id,
                        rec.id,
                        rec.name,
                        ch.path,
                        f"{ch.change} {ch.type}",
                    )
                )
        df = pd.DataFrame(
            rows, columns=["time", "event", "image_id", "container_id", "name", "path", "detail"]
        )
        df["time"] = _times(list(df["time"]))
        df["event"] = pd.Categorical(df["event"], categories=TIMELINE_EVENTS)
        for col in ("image_id", "container_id", "name", "path", "detail"):
            df[col] = df[col].astype("string")
        df = df[df["time"].notna()]
        return df.sort_values(["time", "event"], kind="stable", ignore_index=True)

    # ------------------------------------------------------------------ verify
    def verify(self) -> pd.DataFrame:
        """Check every image layer on disk against its tar-split record (sizes and CRC-64), or,
        for containerd, against the layer blob in the content store it was unpacked from
        (types, link targets, sizes, sha256).

        Returns
        -------
        DataFrame
            One row per problem: ``image_id``, ``image`` (first tag), ``layer`` (int64, 0-based),
            ``layer_dir`` (string), ``path`` (string), ``problem`` (category: modified, added,
            missing, type-changed, unverifiable: no record to check the layer against),
            ``detail``.
            Empty when every layer matches its record.
        """
        cache: dict[str, list[tuple[str, str, str]]] = {}
        rows = []
        for _root, r in self._image_records:
            for n, layer in enumerate(r.layers):
                if layer.root not in cache:
                    cache[layer.root] = self._verify_layer(layer)
                for path, problem, detail in cache[layer.root]:
                    rows.append(
                        (
                            r.image_id,
                            r.tags[0] if r.tags else None,
                            n,
                            layer.root,
                            path,
                            problem,
                            detail,
                        )
                    )
        df = pd.DataFrame(
            rows, columns=["image_id", "image", "layer", "layer_dir", "path", "problem", "detail"]
        )
        for col in ("image_id", "image", "layer_dir", "path", "detail"):
            df[col] = df[col].astype("string")
        df["layer"] = df["layer"].astype("int64")
        df["problem"] = pd.Categorical(df["problem"], categories=VERIFY_PROBLEMS)
        return df

    def _verify_layer(self, layer: DiskLayer) -> list[tuple[str, str, str]]:
        provider = self.provider(layer)
        if not self.fs.is_dir(layer.root):
            return [("/", "missing", f"layer directory {layer.root} is absent")]
        split = provider.split()
        if split is None and layer.blob is not None:
            return self._verify_against_blob(layer, provider)
        if split is None:
            return [("/", "unverifiable", "no tar-split record for this layer")]
        records, _size = split
        nodes, order = provider.disk()
        out: list[tuple[str, str, str]] = []
        seen: set[str] = set()
        kind = layer.kind
        for rec in records:
            h = rec.header
            if h.type == "aufs-meta" or h.path == "/":
                continue
            if h.type == "whiteout":
                target = h.whiteout_target or ""
                if kind == "overlay":
                    node = nodes.get(target)
                    seen.add(target)
                    if node is None:
                        out.append((target, "missing", "whiteout (char device 0:0) is gone"))
                    elif node.type != "char":
                        out.append((target, "type-changed", f"whiteout replaced by a {node.type}"))
                elif kind == "aufs":
                    seen.add(h.path)
                    if h.path not in nodes:
                        out.append((h.path, "missing", "aufs whiteout file is gone"))
                continue
            if h.type == "opaque":
                seen.add(h.path)
                continue
            seen.add(h.path)
            node = nodes.get(h.path)
            if node is None:
                out.append((h.path, "missing", f"{h.type} listed in the layer record"))
                continue
            disk_type = "file" if node.type == "hardlink" else node.type
            want_type = "file" if h.type == "hardlink" else h.type
            if disk_type != want_type:
                out.append((h.path, "type-changed", f"record: {h.type}, disk: {node.type}"))
                continue
            if h.type == "symlink" and node.linkname != h.linkname:
                out.append((h.path, "modified", f"link target {h.linkname!r} -> {node.linkname!r}"))
                continue
            if h.type != "file":
                continue
            content = provider._content_node(h.path)
            if content.size != rec.size:
                out.append((h.path, "modified", f"size {rec.size} -> {content.size}"))
                continue
            if rec.crc64 is not None:
                crc = 0
                for chunk in self.fs.chunks(provider._rel(h.path)):
                    crc = crc64_iso(chunk, crc)
                if crc != rec.crc64:
                    out.append(
                        (h.path, "modified", f"CRC-64 {rec.crc64:016x} -> {crc:016x} (same size)")
                    )
        for path in order:
            if path in seen:
                continue
            node = nodes[path]
            if kind == "aufs" and posixpath.basename(path).startswith(".wh."):
                out.append((path, "added", "aufs whiteout not in the layer record"))
            else:
                what = "char device 0:0 (whiteout)" if node.type == "char" else node.type
                out.append((path, "added", f"{what} not in the layer record"))
        return out

    def _verify_against_blob(
        self, layer: DiskLayer, provider: DiskLayerProvider
    ) -> list[tuple[str, str, str]]:
        """Compare a layer directory with the layer blob it was unpacked from (containerd keeps
        both): every entry's type, link target, size and sha256, whiteouts and opaque marks."""
        assert layer.blob is not None
        label = self.fs.label(layer.blob)
        stream = LayerStream(memoryview(self.fs.read(layer.blob)), label)
        recorded = {e.path: e for e in scan_tar(stream, label) if not e.synthetic}
        stream.finish()
        on_disk = {e.path: e for e in provider.scan(None, None)[0]}
        out: list[tuple[str, str, str]] = []
        for path, want in recorded.items():
            if path == "/" or want.type == "aufs-meta":
                continue
            got = on_disk.get(path)  # markers on both sides carry their tar names (.wh.*)
            if got is None:
                target = want.whiteout_target if want.type == "whiteout" else path
                out.append((target or path, "missing", f"{want.type} in the layer blob"))
                continue
            want_type = "file" if want.type == "hardlink" else want.type
            got_type = "file" if got.type == "hardlink" else got.type
            if want_type != got_type:
                out.append((path, "type-changed", f"blob: {want.type}, disk: {got.type}"))
            elif want.type == "symlink" and want.linkname != got.linkname:
                out.append((path, "modified", f"link target {want.linkname!r} -> {got.linkname!r}"))
            elif want.type == "file" and (want.size, want.sha256) != (got.size, got.sha256):
                detail = (
                    f"size {want.size} -> {got.size}"
                    if want.size != got.size
                    else f"sha256 {want.sha256} -> {got.sha256}"
                )
                out.append((path, "modified", detail))
        for path, got in on_disk.items():
            if path not in recorded and path != "/":
                out.append((path, "added", f"{got.type} not in the layer blob"))
        return out


class HostContainer:
    """One container of a :class:`Host`: its writable layer over its image."""

    def __init__(self, host: Host, record: ContainerRecord) -> None:
        self.host = host
        self.record = record
        self.id = record.id
        self.name = record.name

    def __repr__(self) -> str:
        return f"<HostContainer {self.name or self.id[:12]} image={self.record.image}>"

    @cached_property
    def image(self) -> Image:
        """The container's image with its writable layer as one more (top) layer."""
        rec = self.record
        if rec.upper is None:
            raise LayerForensicsError(
                self.host.path, f"container {rec.id[:12]} has no writable layer in the evidence"
            )
        base = None
        if rec.image_id:
            for _root, r in self.host._image_records:
                if r.image_id == rec.image_id or r.image_id == rec.image_id.removeprefix("sha256:"):
                    base = r
        if base is None:
            raise LayerForensicsError(
                self.host.path,
                f"image {rec.image_id} of container {rec.id[:12]} is not in the evidence",
            )
        return self.host._image_from(base, [rec.upper], fmt=f"{base.format}-container")

    @property
    def top(self) -> int:
        return self.image.layer_count - 1

    @cached_property
    def changes(self) -> pd.DataFrame:
        """What the container changed against its image (Docker's init layer excluded).

        Returns
        -------
        DataFrame
            ``path`` (string), ``change`` (category: added, modified, deleted), ``type``
            (category), ``size`` (Int64), ``mtime`` (UTC: of the new version; for a deletion,
            of the whiteout device, i.e. when it was deleted), ``sha256`` (string),
            ``cause`` (category), ``prev_layer`` (Int64: the image layer whose version was
            replaced or deleted).
        """
        img = self.image
        ch = img.changes
        top = self.top
        ch = ch[ch["layer"] == top]
        # Docker's init-layer placeholders (empty files, mount points, the mtab link) are the
        # daemon's, not the container's: dropped unless the container gave them content.
        placeholder = ch["path"].isin(list(INIT_PLACEHOLDERS)) & (ch["size"].fillna(0) == 0)
        ch = ch[~placeholder].reset_index(drop=True)
        files = img.files
        files = files[files["layer"] == top]
        by_entry = files.set_index("entry")
        mtime = []
        sha = []
        marker_time = {
            p: t
            for p, t in zip(files["whiteout_target"], files["mtime"], strict=True)
            if isinstance(p, str)
        }
        for row in ch.itertuples():
            if row.change == "deleted":
                t = marker_time.get(row.path)
                if t is None:  # inside a deleted directory: the directory's whiteout time
                    parent = row.path
                    while t is None and parent not in ("/", ""):
                        parent = posixpath.dirname(parent)
                        t = marker_time.get(parent)
                mtime.append(t)
                sha.append(None)
            else:
                e = by_entry.loc[int(row.entry)]
                mtime.append(e["mtime"])
                sha.append(e["sha256"])
        return pd.DataFrame(
            {
                "path": ch["path"],
                "change": ch["change"],
                "type": ch["type"],
                "size": ch["size"],
                "mtime": pd.array(mtime, dtype="datetime64[ns, UTC]")
                if mtime
                else pd.array([], dtype="datetime64[ns, UTC]"),
                "sha256": pd.array(sha, dtype="string"),
                "cause": ch["cause"],
                "prev_layer": ch["prev_layer"],
            }
        )

    def filesystem(self) -> pd.DataFrame:
        """The container's merged filesystem (see :meth:`Image.filesystem`); ``layer`` equal to
        the image's layer count means the container wrote it."""
        return self.image.filesystem()

    def read(self, path: str, *, layer: int | None = None) -> bytes:
        """The bytes of ``path`` as the container saw it (or as image layer ``layer`` wrote it:
        a file the container deleted is still readable from the layer that holds it)."""
        return self.image.read(path, layer=layer)

    @cached_property
    def logs(self) -> pd.DataFrame | None:
        """The json-file log (``time`` UTC, ``stream``, ``log``), or None when absent."""
        rel = self.record.log_path
        if rel is None or not rel.endswith(".log") or "local-logs" in rel:
            return None
        rows = []
        for line in self.host.fs.read(rel).splitlines():
            try:
                rec = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            rows.append((rec.get("time"), rec.get("stream"), rec.get("log")))
        df = pd.DataFrame(rows, columns=["time", "stream", "log"])
        df["time"] = _times(list(df["time"]))
        df["stream"] = pd.Categorical(df["stream"], categories=["stdout", "stderr"])
        df["log"] = df["log"].astype("string")
        return df
