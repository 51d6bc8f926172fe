"""Write small, real image archives from layer specs in memory: no engine needed.

Used by the tests (hand-made edge cases, property tests), by ``data/make_examples.py`` and by
the teaching notebook. The archives are ordinary ``docker save`` (legacy) tars or OCI layouts
that Docker, podman and skopeo accept.

>>> from layerforensics.builder import ImageBuilder, File, Whiteout
>>> b = ImageBuilder()
>>> b.layer([File("/secret.txt", b"hunter2\\n")], created_by="RUN echo hunter2 > /secret.txt")
>>> b.layer([Whiteout("/secret.txt")], created_by="RUN rm /secret.txt")
>>> b.save_docker("classic.tar", tag="demo:1")  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import tarfile
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

import zstandard

__all__ = [
    "Dir",
    "Entry",
    "File",
    "Hardlink",
    "ImageBuilder",
    "Opaque",
    "Symlink",
    "Whiteout",
]

FIXED_MTIME = 1_700_000_000  # reproducible archives


@dataclass
class Entry:
    """Base of every layer entry; ``path`` is absolute (``/etc/passwd``)."""

    path: str
    _: KW_ONLY
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = FIXED_MTIME
    #: The member name written to the tar; defaults to ``path`` without its leading slash.
    tar_name: str | None = None

    def name(self) -> str:
        return self.tar_name if self.tar_name is not None else self.path.lstrip("/")

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        raise NotImplementedError

    def _info(self, name: str, kind: bytes) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = self.mode
        info.uid, info.gid = self.uid, self.gid
        info.mtime = self.mtime
        return info


@dataclass
class File(Entry):
    """A regular file with its bytes."""

    data: bytes = b""

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        info = self._info(self.name(), tarfile.REGTYPE)
        info.size = len(self.data)
        return info, self.data


@dataclass
class Dir(Entry):
    _: KW_ONLY
    mode: int = 0o755

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        return self._info(self.name().rstrip("/") + "/", tarfile.DIRTYPE), None


@dataclass
class Symlink(Entry):
    target: str = ""
    _: KW_ONLY
    mode: int = 0o777

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        info = self._info(self.name(), tarfile.SYMTYPE)
        info.linkname = self.target
        return info, None


@dataclass
class Hardlink(Entry):
    """A hardlink to ``target`` (an absolute path, in this or a lower layer)."""

    target: str = ""

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        info = self._info(self.name(), tarfile.LNKTYPE)
        info.linkname = self.target.lstrip("/")
        return info, None


@dataclass
class Whiteout(Entry):
    """Deletes ``path`` (and everything below it) from lower layers."""

    def name(self) -> str:
        if self.tar_name is not None:
            return self.tar_name
        parent, base = posixpath.split(self.path.lstrip("/"))
        return posixpath.join(parent, ".wh." + base)

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        info = self._info(self.name(), tarfile.REGTYPE)
        info.size = 0
        return info, b""


@dataclass
class Opaque(Entry):
    """Hides every lower-layer child of the directory ``path``."""

    def name(self) -> str:
        if self.tar_name is not None:
            return self.tar_name
        return posixpath.join(self.path.lstrip("/"), ".wh..wh..opq")

    def tarinfo(self) -> tuple[tarfile.TarInfo, bytes | None]:
        info = self._info(self.name(), tarfile.REGTYPE)
        info.size = 0
        return info, b""


@dataclass
class _Layer:
    tar: bytes
    created_by: str
    comment: str | None


@dataclass
class ImageBuilder:
    """Collects layers and metadata, then writes a ``docker save`` tar or an OCI layout."""

    architecture: str = "amd64"
    os: str = "linux"
    env: list[str] = field(
        default_factory=lambda: [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ]
    )
    labels: dict[str, str] = field(default_factory=dict)
    cmd: list[str] | None = field(default_factory=lambda: ["/bin/sh"])
    _layers: list[_Layer] = field(default_factory=list)
    _history: list[dict[str, Any]] = field(default_factory=list)

    def layer(
        self,
        entries: list[Entry],
        *,
        created_by: str = "",
        comment: str | None = None,
        format: int = tarfile.PAX_FORMAT,
    ) -> ImageBuilder:
        """Append a layer with these entries, in this tar order."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=format) as tar:
            for e in entries:
                info, data = e.tarinfo()
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        self._layers.append(_Layer(buf.getvalue(), created_by, comment))
        self._history.append(self._step(created_by, comment, empty=False))
        return self

    def raw_layer(self, tar_bytes: bytes, *, created_by: str = "") -> ImageBuilder:
        """Append a layer from ready-made tar bytes (for malformed or unusual tars)."""
        self._layers.append(_Layer(tar_bytes, created_by, None))
        self._history.append(self._step(created_by, None, empty=False))
        return self

    def step(self, created_by: str) -> ImageBuilder:
        """Append a metadata-only history step (ENV, LABEL, CMD, ...)."""
        self._history.append(self._step(created_by, None, empty=True))
        return self

    @staticmethod
    def _step(created_by: str, comment: str | None, *, empty: bool) -> dict[str, Any]:
        step: dict[str, Any] = {"created": "2023-11-14T22:13:20Z", "created_by": created_by}
        if comment:
            step["comment"] = comment
        if empty:
            step["empty_layer"] = True
        return step

    def config(self) -> bytes:
        cfg: dict[str, Any] = {
            "architecture": self.architecture,
            "os": self.os,
            "created": "2023-11-14T22:13:20Z",
            "config": {"Env": self.env, "Cmd": self.cmd, "Labels": self.labels or None},
            "rootfs": {"type": "layers", "diff_ids": [_sha(layer.tar) for layer in self._layers]},
            "history": self._history,
        }
        return json.dumps(cfg, indent=None, separators=(",", ":")).encode()

    # -------------------------------------------------------------- writers
    def save_docker(
        self, path: str | os.PathLike[str], *, tag: str | None = "example:latest"
    ) -> str:
        """Write a legacy ``docker save`` archive (uncompressed ``<id>/layer.tar`` members)."""
        config = self.config()
        config_name = _sha(config).split(":")[1] + ".json"
        members: list[tuple[str, bytes]] = [(config_name, config)]
        layer_paths = []
        parent = ""
        for layer in self._layers:
            v1 = hashlib.sha256((parent + _sha(layer.tar)).encode()).hexdigest()
            members.append((f"{v1}/VERSION", b"1.0"))
            members.append(
                (f"{v1}/json", json.dumps({"id": v1, "parent": parent or None}).encode())
            )
            members.append((f"{v1}/layer.tar", layer.tar))
            layer_paths.append(f"{v1}/layer.tar")
            parent = v1
        manifest = [
            {"Config": config_name, "RepoTags": [tag] if tag else None, "Layers": layer_paths}
        ]
        members.append(("manifest.json", json.dumps(manifest).encode()))
        if tag:
            name, _, t = tag.rpartition(":")
            members.append(("repositories", json.dumps({name: {t: parent}}).encode()))
        _write_tar(path, members)
        return _sha(config)

    def save_oci(
        self,
        path: str | os.PathLike[str],
        *,
        compression: Literal["gzip", "zstd"] | None = "gzip",
        tag: str | None = "latest",
        as_directory: bool = False,
    ) -> str:
        """Write an OCI image layout, as a tar (default) or a directory."""
        blobs: dict[str, bytes] = {}
        layer_descs = []
        media = {
            None: "application/vnd.oci.image.layer.v1.tar",
            "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
            "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
        }
        for layer in self._layers:
            data = _compress(layer.tar, compression)
            digest = _sha(data)
            blobs[digest] = data
            layer_descs.append(
                {"mediaType": media[compression], "digest": digest, "size": len(data)}
            )
        config = self.config()
        blobs[_sha(config)] = config
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": _sha(config),
                    "size": len(config),
                },
                "layers": layer_descs,
            }
        ).encode()
        blobs[_sha(manifest)] = manifest
        desc: dict[str, Any] = {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": _sha(manifest),
            "size": len(manifest),
        }
        if tag:
            desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [desc],
        }
        members = [
            ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
            ("index.json", json.dumps(index).encode()),
        ]
        members += [(f"blobs/sha256/{d.split(':')[1]}", data) for d, data in blobs.items()]
        if as_directory:
            for name, data in members:
                target = os.path.join(os.fspath(path), name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(data)
        else:
            _write_tar(path, members)
        return _sha(config)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _compress(data: bytes, compression: str | None) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def _write_tar(path: str | os.PathLike[str], members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
