"""containerd's store (``/var/lib/containerd``), the runtime of Kubernetes nodes.

Where things are (containerd 1.x, the ``overlayfs`` snapshotter):

- ``io.containerd.metadata.v1.bolt/meta.db`` (bbolt): per namespace, the images (name ->
  target descriptor), the containers (id -> image, snapshot key, spec) and the snapshots
  (key -> the snapshotter's internal name, parent);
- ``io.containerd.content.v1.content/blobs/sha256/``: the content store (manifests, configs,
  compressed layers), laid out like an OCI layout's ``blobs/``;
- ``io.containerd.snapshotter.v1.overlayfs/metadata.db`` (bbolt): snapshot name -> numeric id;
  ``snapshots/<id>/fs`` is that snapshot's directory. An image's layers are committed snapshots
  keyed by their ChainIDs; a container's writable layer is its active snapshot.

Image layers are read from the unpacked snapshot directories (overlay format, like Docker's
overlay2 ``diff`` folders); images and containers are named by namespace-qualified names
(``k8s.io/nginx:1.25``) when the namespace is not ``default``.
"""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime
from typing import Any

from ..errors import CorruptArchiveError
from ._bolt import BoltFile
from ._docker import (
    ContainerRecord,
    HostImageRecord,
    StorageRoot,
    chain_ids,
    skip_damaged,
)
from ._fs import HostFS
from ._provider import DiskLayer

META_DB = "io.containerd.metadata.v1.bolt/meta.db"
CONTENT = "io.containerd.content.v1.content/blobs"
OVERLAYFS = "io.containerd.snapshotter.v1.overlayfs"
_GO_EPOCH = 62_135_596_800  # seconds from 0001-01-01 to 1970-01-01
_DEFAULT_PLATFORM = ("linux", "amd64")


def go_time(raw: bytes | None) -> str | None:
    """A Go ``time.Time.MarshalBinary`` value as RFC 3339 UTC text (None if unreadable)."""
    if not raw or len(raw) < 15 or raw[0] not in (1, 2):
        return None
    seconds, nanos = struct.unpack_from(">qi", raw, 1)
    unix = seconds - _GO_EPOCH
    if seconds <= 0 or not 0 <= nanos < 1_000_000_000:
        return None  # Go's zero time (never), or damage
    try:
        moment = datetime.fromtimestamp(unix, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def _uvarint(raw: bytes, pos: int = 0) -> tuple[int, int]:
    """A protobuf/Go unsigned varint at ``pos``: ``(value, position after it)``."""
    value = shift = 0
    for i in range(pos, min(pos + 10, len(raw))):
        value |= (raw[i] & 0x7F) << shift
        if not raw[i] & 0x80:
            return value, i + 1
        shift += 7
    raise ValueError("truncated varint")


def _any_value(raw: bytes) -> bytes:
    """The ``value`` (field 2) of a protobuf ``google.protobuf.Any``: a container's spec."""
    pos = 0
    while pos < len(raw):
        tag = raw[pos]
        if tag & 7 != 2:  # Any holds two length-delimited fields
            break
        length, pos = _uvarint(raw, pos + 1)
        if tag >> 3 == 2:
            return raw[pos : pos + length]
        pos += length
    return b""


def _bucket(tree: dict[bytes, Any], *path: bytes) -> dict[bytes, Any]:
    """The nested bucket at ``path`` of a :meth:`BoltFile.tree` (empty when absent).

    Raises
    ------
    ValueError
        Something other than a bucket stands there (a damaged database).
    """
    for name in path:
        tree = tree.get(name, {})
        if not isinstance(tree, dict):
            raise ValueError(f"{name!r} is a value, not a bucket")
    return tree


class ContainerdRoot(StorageRoot):
    """``/var/lib/containerd`` with the overlayfs snapshotter."""

    kind = "containerd"

    def __init__(self, fs: HostFS, root: str) -> None:
        super().__init__(fs, root)
        self.driver = "overlayfs"
        self.meta_label = fs.label(self.j(META_DB))
        self._v1: dict[bytes, Any] | None = None
        self._snapshot_ids: dict[bytes, int] | None = None
        self._images: list[HostImageRecord] | None = None

    # ------------------------------------------------------------------ databases
    @property
    def v1(self) -> dict[bytes, Any]:
        """``meta.db``'s ``v1`` bucket, read once: namespace -> images, containers, snapshots."""
        if self._v1 is None:
            db = BoltFile(self.fs.read(self.j(META_DB)), self.meta_label)
            self._v1 = db.tree(b"v1") or {}
        return self._v1

    def namespaces(self) -> list[bytes]:
        return sorted(k for k, v in self.v1.items() if isinstance(v, dict))

    def snapshot_dir(self, namespace: bytes, key: str) -> str | None:
        """The directory of snapshot ``key`` (a ChainID or a container's key), if unpacked."""
        name = _bucket(self.v1, namespace, b"snapshots", b"overlayfs", key.encode()).get(b"name")
        if not name:
            return None
        if self._snapshot_ids is None:
            rel = self.j(OVERLAYFS, "metadata.db")
            snapshots: dict[bytes, Any] = {}
            if self.fs.is_file(rel):
                db = BoltFile(self.fs.read(rel), self.fs.label(rel))
                snapshots = db.tree(b"v1", b"snapshots") or {}
            self._snapshot_ids = {
                n: _uvarint(record[b"id"])[0]
                for n, record in snapshots.items()
                if isinstance(record, dict) and record.get(b"id")
            }
        ident = self._snapshot_ids.get(name)
        return None if ident is None else self.j(OVERLAYFS, "snapshots", str(ident), "fs")

    def _label_of(self, namespace: bytes, name: str) -> str:
        return name if namespace == b"default" else f"{namespace.decode()}/{name}"

    # ------------------------------------------------------------------ content
    def _blob_rel(self, digest: str) -> str:
        algorithm, _, encoded = digest.partition(":")
        if not algorithm.isalnum() or not encoded.isalnum():
            raise ValueError(f"not a digest: {digest[:80]!r}")
        return self.j(CONTENT, algorithm, encoded)

    def _blob(self, digest: str) -> bytes:
        return self.fs.read(self._blob_rel(digest))

    def _manifest(self, digest: str, depth: int = 0) -> dict[str, Any]:
        """The image manifest a target names (an index resolves to linux/amd64, or its only
        manifest whose blob is present)."""
        doc = json.loads(self._blob(digest))
        if "manifests" not in doc:
            return doc
        if depth > 4:
            raise ValueError("indexes nested too deeply")
        present = [
            m
            for m in doc["manifests"]
            if self.fs.is_file(self.j(CONTENT, *m["digest"].split(":", 1)))
            and (m.get("annotations") or {}).get("vnd.docker.reference.type") is None
        ]
        preferred = [
            m
            for m in present
            if ((m.get("platform") or {}).get("os"), (m.get("platform") or {}).get("architecture"))
            == _DEFAULT_PLATFORM
        ]
        chosen = (preferred or present)[:1]
        if not chosen:
            raise ValueError("no manifest of the index is in the content store")
        return self._manifest(chosen[0]["digest"], depth + 1)

    # ------------------------------------------------------------------ images
    def images(self) -> list[HostImageRecord]:
        if self._images is None:
            self._images = self._read_images()
        return self._images

    def _read_images(self) -> list[HostImageRecord]:
        out: dict[str, HostImageRecord] = {}
        for namespace in self.namespaces():
            for name, record in _bucket(self.v1, namespace, b"images").items():
                label = f"{self.meta_label} (image {name.decode(errors='replace')!r})"
                with skip_damaged(self.notes, label, "the image record or its content"):
                    digest = _bucket(record, b"target")[b"digest"].decode()
                    manifest = self._manifest(digest)
                    config_digest = manifest["config"]["digest"]
                    config_bytes = self._blob(config_digest)
                    config = json.loads(config_bytes)
                    diff_ids = list(config["rootfs"]["diff_ids"])
                    chains = chain_ids(diff_ids)
                    blobs = [d["digest"] for d in manifest["layers"]]
                    layers = []
                    for n, chain in enumerate(chains):
                        root = self.snapshot_dir(namespace, chain)
                        if root is None:
                            self.notes.append(f"{label}: layer {n} is not unpacked; left out")
                            root = self.j(OVERLAYFS, "snapshots", "<missing>", "fs")
                        blob = self._blob_rel(blobs[n]) if n < len(blobs) else None
                        layers.append(
                            DiskLayer(
                                root,
                                "overlay",
                                label=f"{root} (layer {n})",
                                blob=blob if blob and self.fs.is_file(blob) else None,
                            )
                        )
                    tag = self._label_of(namespace, name.decode())
                    image_id = config_digest
                    if image_id in out:  # the same image under another name
                        out[image_id].tags.append(tag)
                        continue
                    out[image_id] = HostImageRecord(
                        image_id=image_id,
                        config_bytes=config_bytes,
                        config_label=self.fs.label(self.j(CONTENT, *config_digest.split(":", 1))),
                        layers=layers,
                        diff_ids=diff_ids,
                        chain_ids=chains,
                        tags=[tag],
                        digests=[f"{tag.rsplit(':', 1)[0]}@{digest}"],
                        last_updated=go_time(record.get(b"updatedat")),
                        format="containerd-overlayfs",
                        size=sum(int(layer.get("size") or 0) for layer in manifest["layers"]),
                    )
        return list(out.values())

    # ------------------------------------------------------------------ containers
    def containers(self) -> list[ContainerRecord]:
        out = []
        try:
            namespaces = self.namespaces()
        except CorruptArchiveError as exc:
            self.notes.append(str(exc))
            return []
        image_ids = {tag: r.image_id for r in self.images() for tag in r.tags}
        if any(_bucket(self.v1, ns, b"containers") for ns in namespaces):
            self.notes.append(
                f"{self.fs.label(self.root)}: containerd keeps task states and exit codes under "
                "its state directory (/run/containerd), not here: container states are unknown"
            )
        for namespace in namespaces:
            for cid, record in _bucket(self.v1, namespace, b"containers").items():
                label = f"{self.meta_label} (container {cid.decode(errors='replace')!r})"
                with skip_damaged(self.notes, label, "the container record"):
                    spec = json.loads(_any_value(record.get(b"spec") or b"") or b"{}")
                    args = (spec.get("process") or {}).get("args") or []
                    key = (record.get(b"snapshotKey") or b"").decode()
                    upper_root = self.snapshot_dir(namespace, key) if key else None
                    upper = None
                    if upper_root is not None and self.fs.is_dir(upper_root):
                        upper = DiskLayer(upper_root, "overlay", label=self.fs.label(upper_root))
                    image = (record.get(b"image") or b"").decode() or None
                    image = image and self._label_of(namespace, image)
                    out.append(
                        ContainerRecord(
                            id=self._label_of(namespace, cid.decode()),
                            name=cid.decode(),
                            image=image,
                            image_id=image_ids.get(image) if image else None,
                            config={
                                "Created": go_time(record.get(b"createdat")),
                                "Path": args[0] if args else None,
                                "Args": args[1:],
                                # task state lives in the runtime's state dir, not here
                                "State": {},
                            },
                            hostconfig={},
                            upper=upper,
                            init=None,
                            log_path=None,
                            driver=self.driver,
                            mount_id=key or None,
                        )
                    )
        return out
