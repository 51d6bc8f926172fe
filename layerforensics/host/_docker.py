"""The storage of a Docker daemon (``/var/lib/docker``) and of containers/storage (podman).

Plain records, no frames: :mod:`layerforensics.host._host` turns them into DataFrames and
:class:`~layerforensics.image.Image` objects.
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import CorruptArchiveError, LayerForensicsError
from ._bolt import BoltFile
from ._fs import HostFS
from ._provider import DiskLayer

__all__ = ["ContainerRecord", "HostImageRecord", "StorageRoot", "find_roots"]

DRIVERS = ("overlay2", "overlay", "aufs", "vfs")
_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(slots=True)
class HostImageRecord:
    """One image found in the storage."""

    image_id: str  # sha256:<config digest> (the v1 id for pre-1.10 stores)
    config_bytes: bytes
    config_label: str
    layers: list[DiskLayer]
    diff_ids: list[str]
    chain_ids: list[str]
    tags: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    last_updated: str | None = None
    history_override: list[dict[str, Any]] | None = None
    format: str = "docker-overlay2"
    size: int | None = None


@dataclass(slots=True)
class ContainerRecord:
    """One container found in the storage."""

    id: str
    name: str | None
    image: str | None
    image_id: str | None
    config: dict[str, Any]
    hostconfig: dict[str, Any]
    upper: DiskLayer | None
    init: DiskLayer | None
    log_path: str | None  # relative path of a json-file log in the evidence
    driver: str
    mount_id: str | None = None


def _json(fs: HostFS, rel: str) -> Any:
    data = fs.read(rel)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptArchiveError(fs.label(rel), f"not valid JSON ({exc})") from None


#: What reading a damaged metadata record raises: a field of the wrong JSON type, a number
#: field holding text, a missing key.
_DAMAGE = (TypeError, ValueError, AttributeError, KeyError, IndexError)


@contextmanager
def skip_damaged(notes: list[str], label: str, what: str) -> Iterator[None]:
    """Run one evidence record's block; if the record is damaged, note it and go on.

    A seized host's metadata can be partly corrupt: one damaged ``config.v2.json`` or
    ``images.json`` entry must not hide every other image and container. The note names the
    file and what was wrong; the record is left out of the answer.
    """
    try:
        yield
    except _DAMAGE as exc:
        notes.append(f"{label}: {what} is damaged ({type(exc).__name__}: {exc}); left out")


def chain_ids(diff_ids: list[str]) -> list[str]:
    """Docker's ChainIDs: chain[0] = diff[0], chain[n] = sha256(chain[n-1] + " " + diff[n])."""
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


class StorageRoot:
    """Base of the two storage kinds."""

    kind: str
    root: str
    driver: str

    def __init__(self, fs: HostFS, root: str) -> None:
        self.fs = fs
        self.root = root
        self.notes: list[str] = []

    def j(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts) if self.root else posixpath.join(*parts)

    def images(self) -> list[HostImageRecord]:
        raise NotImplementedError

    def containers(self) -> list[ContainerRecord]:
        raise NotImplementedError


class DockerRoot(StorageRoot):
    """``/var/lib/docker`` with the classic image store (overlay2, overlay, aufs, vfs)."""

    kind = "docker"

    def __init__(self, fs: HostFS, root: str) -> None:
        super().__init__(fs, root)
        self.v1 = fs.is_dir(self.j("graph")) and not fs.is_dir(self.j("image"))
        drivers = [d for d in DRIVERS if fs.is_dir(self.j("image", d, "imagedb"))]
        used = [d for d in drivers if fs.is_dir(self.j(d))]
        if self.v1:
            self.driver = next((d for d in DRIVERS if fs.is_dir(self.j(d))), "aufs")
        elif used:
            # the driver whose layer store holds layers (overlay2 trees keep an empty overlay/)
            best = max(used, key=lambda d: len(fs.listdir(self.j("image", d, "layerdb", "sha256"))))
            self.driver = best
        else:
            self.driver = drivers[0] if drivers else "overlay2"
        self.image_dir = self.j("image", self.driver)

    # ------------------------------------------------------------------ layers
    def _layer_dir(
        self, cache_id: str, parent_cache: str | None, tar_split: str | None, label: str
    ) -> DiskLayer:
        d = self.driver
        if d == "overlay2":
            return DiskLayer(
                self.j("overlay2", cache_id, "diff"), "overlay", tar_split, label=label
            )
        if d == "overlay":
            if self.fs.is_dir(self.j("overlay", cache_id, "root")):
                parent = self.j("overlay", parent_cache, "root") if parent_cache else None
                return DiskLayer(
                    self.j("overlay", cache_id, "root"), "full", tar_split, parent, label=label
                )
            return DiskLayer(
                self.j("overlay", cache_id, "upper"), "overlay", tar_split, label=label
            )
        if d == "aufs":
            return DiskLayer(self.j("aufs", "diff", cache_id), "aufs", tar_split, label=label)
        parent = self.j("vfs", "dir", parent_cache) if parent_cache else None
        return DiskLayer(self.j("vfs", "dir", cache_id), "full", tar_split, parent, label=label)

    def _size(self, rel: str) -> int:
        """A layer's recorded size (0, with a note, when the file holds no number)."""
        text = self.fs.read_text(rel, "0") or "0"
        if text.isdigit():
            return int(text)
        self.notes.append(f"{self.fs.label(rel)}: not a size ({text[:40]!r}); counted as 0")
        return 0

    def _tags(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        tags: dict[str, list[str]] = {}
        digests: dict[str, list[str]] = {}
        if self.v1:
            name = next(
                (n for n in self.fs.listdir(self.root) if n.startswith("repositories-")), None
            )
            if name is None:
                return tags, digests
            with skip_damaged(self.notes, self.fs.label(self.j(name)), "the tag list"):
                repos = _json(self.fs, self.j(name)).get("Repositories") or {}
                for repo, entries in repos.items():
                    for tag, image_id in (entries or {}).items():
                        tags.setdefault(str(image_id), []).append(f"{repo}:{tag}")
            return tags, digests
        rel = posixpath.join(self.image_dir, "repositories.json")
        if not self.fs.is_file(rel):
            return tags, digests
        with skip_damaged(self.notes, self.fs.label(rel), "the tag list"):
            repos = _json(self.fs, rel).get("Repositories") or {}
            for _repo, entries in repos.items():
                for ref, image_id in (entries or {}).items():
                    if "@" in ref:
                        digests.setdefault(str(image_id), []).append(ref)
                    else:
                        tags.setdefault(str(image_id), []).append(ref)
        return tags, digests

    def images(self) -> list[HostImageRecord]:
        if self.v1:
            return self._images_v1()
        fs = self.fs
        tags, digests = self._tags()
        content = posixpath.join(self.image_dir, "imagedb", "content", "sha256")
        out = []
        for hexid in fs.listdir(content):
            image_id = f"sha256:{hexid}"
            rel = posixpath.join(content, hexid)
            with skip_damaged(self.notes, fs.label(rel), "the image config or its layer records"):
                config_bytes = fs.read(rel)
                try:
                    config = json.loads(config_bytes)
                except (UnicodeDecodeError, json.JSONDecodeError):
                    self.notes.append(f"{fs.label(rel)}: image config is not JSON; skipped")
                    continue
                diff_ids = list(((config.get("rootfs") or {}).get("diff_ids")) or [])
                chains = chain_ids(diff_ids)
                layers = []
                size = 0
                parent_cache: str | None = None
                for n, chain in enumerate(chains):
                    ldir = posixpath.join(
                        self.image_dir, "layerdb", "sha256", chain.split(":", 1)[1]
                    )
                    cache_id = fs.read_text(posixpath.join(ldir, "cache-id"))
                    size += self._size(posixpath.join(ldir, "size"))
                    if cache_id is None:
                        self.notes.append(f"{fs.label(ldir)}: layer {n} of {image_id} missing")
                        cache_id = "<missing>"
                    split = posixpath.join(ldir, "tar-split.json.gz")
                    layers.append(
                        self._layer_dir(
                            cache_id,
                            parent_cache,
                            split if fs.is_file(split) else None,
                            f"{fs.label(self.j(self.driver, cache_id))} (layer {n})",
                        )
                    )
                    parent_cache = cache_id
                meta = posixpath.join(self.image_dir, "imagedb", "metadata", "sha256", hexid)
                out.append(
                    HostImageRecord(
                        image_id=image_id,
                        config_bytes=config_bytes,
                        config_label=fs.label(rel),
                        layers=layers,
                        diff_ids=diff_ids,
                        chain_ids=chains,
                        tags=sorted(tags.get(image_id, [])),
                        digests=sorted(digests.get(image_id, [])),
                        last_updated=fs.read_text(posixpath.join(meta, "lastUpdated")),
                        format=f"docker-{self.driver}",
                        size=size,
                    )
                )
        return out

    def _images_v1(self) -> list[HostImageRecord]:
        from .._sources.docker_archive import _v1_history

        fs = self.fs
        tags, _ = self._tags()
        graph = self.j("graph")
        metas: dict[str, dict[str, Any]] = {}
        for v1id in fs.listdir(graph):
            rel = posixpath.join(graph, v1id, "json")
            if fs.is_file(rel):
                meta = _json(fs, rel)
                if isinstance(meta, dict):
                    metas[v1id] = meta
                else:
                    self.notes.append(f"{fs.label(rel)}: not a JSON object; layer left out")
        parents = {m.get("parent") for m in metas.values()}
        out = []
        for top in metas:
            if top in parents and top not in tags:
                continue  # an intermediate layer of a tagged image
            with skip_damaged(self.notes, fs.label(graph), f"the layer chain of {top}"):
                chain = []
                cur: str | None = top
                while cur and cur in metas and len(chain) < 10_000:
                    chain.append(cur)
                    cur = metas[cur].get("parent")
                chain.reverse()
                layers = []
                size = 0
                for n, v1id in enumerate(chain):
                    split = posixpath.join(graph, v1id, "tar-data.json.gz")
                    size += self._size(posixpath.join(graph, v1id, "layersize"))
                    layers.append(
                        DiskLayer(
                            self.j("aufs", "diff", v1id),
                            "aufs",
                            split if fs.is_file(split) else None,
                            label=f"{fs.label(self.j('aufs', 'diff', v1id))} (layer {n})",
                        )
                    )
                config_bytes = fs.read(posixpath.join(graph, top, "json"))
                out.append(
                    HostImageRecord(
                        image_id=top,
                        config_bytes=config_bytes,
                        config_label=fs.label(posixpath.join(graph, top, "json")),
                        layers=layers,
                        diff_ids=[],
                        chain_ids=chain,
                        tags=sorted(tags.get(top, [])),
                        history_override=[_v1_history(metas[c]) for c in chain],
                        format=f"docker-v1-{self.driver}",
                        size=size,
                    )
                )
        return out

    # ------------------------------------------------------------------ containers
    def containers(self) -> list[ContainerRecord]:
        fs = self.fs
        out = []
        for cid in fs.listdir(self.j("containers")):
            cdir = self.j("containers", cid)
            name = (
                "config.v2.json"
                if fs.is_file(posixpath.join(cdir, "config.v2.json"))
                else "config.json"
            )
            if not fs.is_file(posixpath.join(cdir, name)):
                continue
            with skip_damaged(self.notes, fs.label(cdir), "the container record"):
                config = _json(fs, posixpath.join(cdir, name))
                hostconfig_rel = posixpath.join(cdir, "hostconfig.json")
                hostconfig = _json(fs, hostconfig_rel) if fs.is_file(hostconfig_rel) else {}
                mount_id: str | None = None
                if self.v1:
                    mount_id = cid
                else:
                    mdir = posixpath.join(self.image_dir, "layerdb", "mounts", cid)
                    mount_id = fs.read_text(posixpath.join(mdir, "mount-id"))
                upper = init = None
                if mount_id:
                    d = self.driver
                    if d == "overlay2":
                        upper = DiskLayer(self.j("overlay2", mount_id, "diff"), "overlay")
                        init = DiskLayer(self.j("overlay2", mount_id + "-init", "diff"), "overlay")
                    elif d == "overlay":
                        upper = DiskLayer(self.j("overlay", mount_id, "upper"), "overlay")
                        init = DiskLayer(self.j("overlay", mount_id + "-init", "upper"), "overlay")
                    elif d == "aufs":
                        upper = DiskLayer(self.j("aufs", "diff", mount_id), "aufs")
                        init = DiskLayer(self.j("aufs", "diff", mount_id + "-init"), "aufs")
                    else:
                        upper = DiskLayer(self.j("vfs", "dir", mount_id), "full")
                        init = DiskLayer(self.j("vfs", "dir", mount_id + "-init"), "full")
                    for layer in (upper, init):
                        layer.label = fs.label(layer.root)
                log = None
                for candidate in (f"{cid}-json.log", "local-logs/container.log"):
                    if fs.is_file(posixpath.join(cdir, candidate)):
                        log = posixpath.join(cdir, candidate)
                        break
                image_id = config.get("Image")
                if image_id and not str(image_id).startswith("sha256:") and not self.v1:
                    image_id = f"sha256:{image_id}"
                out.append(
                    ContainerRecord(
                        id=config.get("ID") or cid,
                        name=config.get("Name"),
                        image=(config.get("Config") or {}).get("Image"),
                        image_id=image_id,
                        config=config,
                        hostconfig=hostconfig,
                        upper=upper if upper and fs.is_dir(upper.root) else None,
                        init=init if init and fs.is_dir(init.root) else None,
                        log_path=log,
                        driver=self.driver,
                        mount_id=mount_id,
                    )
                )
        return out


class ContainersStorageRoot(StorageRoot):
    """containers/storage (podman, buildah, CRI-O): ``overlay-images/images.json`` & co."""

    kind = "containers-storage"

    def __init__(self, fs: HostFS, root: str) -> None:
        super().__init__(fs, root)
        self.driver = next(
            (d for d in ("overlay", "vfs") if fs.is_file(self.j(f"{d}-images", "images.json"))),
            "overlay",
        )

    def _layers(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in ("layers.json", "volatile-layers.json"):
            rel = self.j(f"{self.driver}-layers", name)
            if self.fs.is_file(rel):
                for layer in _json(self.fs, rel) or []:
                    with skip_damaged(self.notes, self.fs.label(rel), "a layer record"):
                        out[layer["id"]] = layer
        return out

    def _layer_dir(self, layer_id: str, parent: str | None) -> DiskLayer:
        split = self.j(f"{self.driver}-layers", f"{layer_id}.tar-split.gz")
        split_rel = split if self.fs.is_file(split) else None
        if self.driver == "overlay":
            root = self.j("overlay", layer_id, "diff")
            return DiskLayer(root, "overlay", split_rel, label=self.fs.label(root))
        root = self.j("vfs", "dir", layer_id)
        parent_root = self.j("vfs", "dir", parent) if parent else None
        return DiskLayer(root, "full", split_rel, parent_root, label=self.fs.label(root))

    def images(self) -> list[HostImageRecord]:
        fs = self.fs
        layers = self._layers()
        rel = self.j(f"{self.driver}-images", "images.json")
        out = []
        for img in _json(fs, rel) or []:
            with skip_damaged(self.notes, fs.label(rel), "an image record"):
                iid = img["id"]
                key = f"sha256:{iid}"
                big = self.j(
                    f"{self.driver}-images", iid, "=" + base64.b64encode(key.encode()).decode()
                )
                if not fs.is_file(big):
                    self.notes.append(f"{fs.label(big)}: config of image {iid} missing; skipped")
                    continue
                chain: list[dict[str, Any]] = []
                cur = img.get("layer")
                while cur and cur in layers and len(chain) < 10_000:
                    chain.append(layers[cur])
                    cur = layers[cur].get("parent")
                chain.reverse()
                names = list(img.get("names") or [])
                out.append(
                    HostImageRecord(
                        image_id=key,
                        config_bytes=fs.read(big),
                        config_label=fs.label(big),
                        layers=[self._layer_dir(x["id"], x.get("parent")) for x in chain],
                        diff_ids=[x.get("diff-digest") for x in chain],
                        chain_ids=[x["id"] for x in chain],
                        tags=sorted(n for n in names if "@" not in n),
                        digests=sorted(n for n in names if "@" in n)
                        + ([img["digest"]] if img.get("digest") else []),
                        last_updated=img.get("created"),
                        format=f"containers-storage-{self.driver}",
                        size=sum(int(x.get("diff-size") or 0) for x in chain),
                    )
                )
        return out

    def containers(self) -> list[ContainerRecord]:
        fs = self.fs
        rel = self.j(f"{self.driver}-containers", "containers.json")
        if not fs.is_file(rel):
            return []
        layers = self._layers()
        states = self._libpod_states()
        out = []
        for c in _json(fs, rel) or []:
            with skip_damaged(self.notes, fs.label(rel), "a container record"):
                meta: dict[str, Any] = {}
                try:
                    meta = json.loads(c.get("metadata") or "{}")
                except json.JSONDecodeError:
                    meta = {}
                layer_id = c.get("layer")
                upper = None
                if layer_id:
                    upper = self._layer_dir(layer_id, (layers.get(layer_id) or {}).get("parent"))
                    upper.tar_split = None
                spec_rel = self.j(f"{self.driver}-containers", c["id"], "userdata", "config.json")
                spec = _json(fs, spec_rel) if fs.is_file(spec_rel) else {}
                process = spec.get("process") or {}
                config = {
                    "ID": c["id"],
                    "Created": states.get(c["id"], ({}, None))[1]
                    or c.get("created")
                    or meta.get("created-at"),
                    "Path": (process.get("args") or [None])[0],
                    "Args": (process.get("args") or [])[1:],
                    "State": states.get(c["id"], ({}, None))[0],
                    "MountPoints": {
                        m.get("destination"): {
                            "Source": m.get("source"),
                            "Destination": m.get("destination"),
                            "Type": m.get("type"),
                        }
                        for m in spec.get("mounts") or []
                        if m.get("type") == "bind"
                    },
                }
                log = self.j(f"{self.driver}-containers", c["id"], "userdata", "ctr.log")
                names = c.get("names") or []
                out.append(
                    ContainerRecord(
                        id=c["id"],
                        name=meta.get("name") or (names[0] if names else None),
                        image=meta.get("image-name"),
                        image_id=f"sha256:{c['image']}" if c.get("image") else None,
                        config=config,
                        hostconfig={},
                        upper=upper if upper and fs.is_dir(upper.root) else None,
                        init=None,
                        log_path=log if fs.is_file(log) else None,
                        driver=self.driver,
                        mount_id=layer_id,
                    )
                )
        return out

    def _libpod_states(self) -> dict[str, tuple[dict[str, Any], str | None]]:
        """podman's record of each container (``libpod/bolt_state.db``): its state in the shape
        of Docker's ``State`` (Running, Paused, StartedAt, FinishedAt, ExitCode), and when
        podman created it."""
        rel = self.j("libpod", "bolt_state.db")
        if not self.fs.is_file(rel):
            self.notes.append(f"{self.fs.label(rel)}: absent; podman container states are unknown")
            return {}
        try:
            db = BoltFile(self.fs.read(rel), self.fs.label(rel))
            out = {}
            for cid, record in (db.tree(b"ctr") or {}).items():
                with skip_damaged(self.notes, db.label, f"the state of container {cid[:12]!r}"):
                    state = json.loads(record.get(b"state") or b"{}")
                    config = json.loads(record.get(b"config") or b"{}")
                    code = state.get("state")
                    docker_state = {}
                    if code in _LIBPOD_RUNNING or code in _LIBPOD_STOPPED:
                        docker_state = {
                            "Running": code in _LIBPOD_RUNNING,
                            "Paused": code == _LIBPOD_PAUSED,
                            "StartedAt": state.get("startedTime"),
                            "FinishedAt": state.get("finishedTime"),
                            "ExitCode": state.get("exitCode", 0),
                        }
                    out[cid.decode()] = (docker_state, config.get("createdTime"))
            return out
        except CorruptArchiveError as exc:
            self.notes.append(f"{exc}; podman container states are unknown")
            return {}


# libpod's ContainerState numbers: 1 configured and 2 created (both shown as "created"),
# 3 running, 4 stopped, 5 paused, 6 exited, 7 removing, 8 stopping.
_LIBPOD_RUNNING = (3, 5, 8)
_LIBPOD_STOPPED = (1, 2, 4, 6, 7)
_LIBPOD_PAUSED = 5


def find_roots(fs: HostFS) -> list[StorageRoot]:
    """Every Docker root and containers/storage root in the evidence (searched a few levels)."""
    found: list[StorageRoot] = []
    seen: set[str] = set()

    def check(rel: str) -> None:
        if rel in seen:
            return
        seen.add(rel)
        j = (lambda *p: posixpath.join(rel, *p)) if rel else (lambda *p: posixpath.join(*p))
        if fs.is_dir(j("containers")) and (fs.is_dir(j("image")) or fs.is_dir(j("graph"))):
            found.append(DockerRoot(fs, rel))
        elif any(fs.is_file(j(f"{d}-images", "images.json")) for d in ("overlay", "vfs")):
            found.append(ContainersStorageRoot(fs, rel))
        elif fs.is_file(j("io.containerd.metadata.v1.bolt", "meta.db")):
            from ._containerd import ContainerdRoot  # builds on this module's records

            found.append(ContainerdRoot(fs, rel))

    check("")
    for candidate in (
        "var/lib/docker",
        "docker",
        "var/lib/containers/storage",
        "storage",
        "var/lib/containerd",
        "containerd",
    ):
        check(candidate)
    if not found:
        # a tar of one folder: look one and two levels down
        for name in fs.listdir(""):
            check(name)
            for sub in fs.listdir(name)[:50]:
                check(posixpath.join(name, sub))
    if not found:
        raise LayerForensicsError(
            fs.path,
            "no Docker root (containers/ + image/ or graph/), containers/storage "
            "(overlay-images/images.json) nor containerd root (io.containerd.metadata.v1.bolt) "
            "found",
        )
    return found
