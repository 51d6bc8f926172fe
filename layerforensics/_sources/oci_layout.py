"""OCI image layouts (directory or tar), and skopeo's ``dir:`` transport.

Index descriptors are dispatched on the *blob's own* shape (``manifests`` -> an index,
``config`` + ``layers`` -> a manifest, ``fsLayers`` -> a Docker schema1 manifest), not on the
descriptor's media type, because real layouts label them loosely. Manifests whose config is not
an image config are artifacts (Helm charts, signatures) and are reported as such. Attestation
manifests (BuildKit provenance) are skipped; a platform whose blobs are absent (a
containerd-store save keeps only the local platform) is skipped with a note.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .._container import Container
from ..errors import ArtifactError, InvalidJSONError, MissingBlobError, NotAnImageError
from ._model import (
    ImageRecord,
    LayerBlob,
    diff_ids_of,
    json_field,
    json_list,
    load_json,
    parse_json,
    platform_of,
    v1_command,
)

IMAGE_CONFIG_TYPES = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)
ATTESTATION = "attestation-manifest"


# The OCI digest grammar: algorithm ":" encoded.
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


def _blob_name(digest: str) -> str:
    alg, _, hexpart = digest.partition(":")
    return f"blobs/{alg}/{hexpart}"


def _digest(desc: dict[str, Any], key: str, label: str, where: str) -> str:
    """A descriptor's digest, checked against the OCI grammar (it becomes a blob path)."""
    digest = json_field(desc, key, str, label, where)
    if digest is None:
        raise InvalidJSONError(label, f"{where}has no {key}")
    if not _DIGEST.match(digest):
        raise InvalidJSONError(label, f"{where}{key} {digest[:80]!r} is not a digest")
    return digest


def discover_oci_layout(container: Container) -> list[ImageRecord]:
    if not container.exists("index.json"):
        if container.is_dir("index.json"):
            raise InvalidJSONError(container.label("index.json"), "is a directory, not a file")
        if container.exists("oci-layout"):
            raise NotAnImageError(container.label("index.json"), "OCI layout without index.json")
        return []
    index = load_json(container, "index.json")
    if not isinstance(index, dict):
        raise InvalidJSONError(container.label("index.json"), "not a JSON object")
    walker = _Walker(container)
    walker.walk_index(index, container.label("index.json"), ref=None, platform=None, depth=0)
    if walker.records:
        return walker.records
    if walker.artifacts:
        raise ArtifactError(container.path, "not a container image: " + "; ".join(walker.artifacts))
    problems = "; ".join(walker.skipped) if walker.skipped else "index.json lists no manifests"
    raise NotAnImageError(container.label("index.json"), f"no usable image: {problems}")


class _Walker:
    def __init__(self, container: Container) -> None:
        self.c = container
        self.records: list[ImageRecord] = []
        self.artifacts: list[str] = []
        self.skipped: list[str] = []

    def walk_index(
        self, index: dict[str, Any], label: str, ref: str | None, platform: str | None, depth: int
    ) -> None:
        if depth > 8:
            raise InvalidJSONError(label, "indexes nested too deeply (a loop?)")
        manifests = index.get("manifests")
        if manifests is None:
            self.skipped.append(f"{label} has `manifests: null`")
            return
        if not isinstance(manifests, list):
            raise InvalidJSONError(label, "`manifests` is not a list")
        for n, desc in enumerate(manifests):
            where = f"manifests[{n}]."
            if not isinstance(desc, dict):
                raise InvalidJSONError(label, f"manifests[{n}] is not an object")
            digest = _digest(desc, "digest", label, where)
            annotations = json_field(desc, "annotations", dict, label, where) or {}
            if annotations.get("vnd.docker.reference.type") == ATTESTATION:
                continue
            desc_platform = json_field(desc, "platform", dict, label, where) or {}
            plat = platform
            if desc_platform.get("os"):
                if desc_platform.get("os") == "unknown":
                    continue
                plat = platform_of(desc_platform)
            name_ref = annotations.get("io.containerd.image.name") or annotations.get(
                "org.opencontainers.image.ref.name"
            )
            this_ref = name_ref if isinstance(name_ref, str) and name_ref else ref
            blob = _blob_name(digest)
            if not self.c.exists(blob):
                if plat and depth > 0:
                    self.skipped.append(f"platform {plat}: blob {digest} absent")
                    continue
                raise MissingBlobError(self.c.label(blob), "manifest named by the index is missing")
            data = self.c.read(blob)
            doc = parse_json(data, self.c.label(blob))
            if not isinstance(doc, dict):
                raise InvalidJSONError(self.c.label(blob), "not a JSON object")
            if "manifests" in doc:
                self.walk_index(doc, self.c.label(blob), this_ref, plat, depth + 1)
            elif "layers" in doc and "config" in doc:
                self.add_manifest(doc, digest, this_ref, plat)
            elif "fsLayers" in doc:
                self.records.append(schema1_record(self.c, doc, this_ref, "oci-layout"))
            else:
                media = doc.get("mediaType") or desc.get("mediaType")
                raise InvalidJSONError(self.c.label(blob), f"unknown document (mediaType {media})")

    def add_manifest(
        self, manifest: dict[str, Any], digest: str, ref: str | None, platform: str | None
    ) -> None:
        label = self.c.label(_blob_name(digest))
        config_desc = json_field(manifest, "config", dict, label) or {}
        config_type = json_field(config_desc, "mediaType", str, label, "config.")
        artifact = json_field(manifest, "artifactType", str, label)
        if config_type not in IMAGE_CONFIG_TYPES or artifact:
            kind = artifact or config_type
            self.artifacts.append(f"{digest} is an OCI artifact of type {kind!r}")
            return
        self.records.append(manifest_record(self.c, manifest, digest, ref, platform, "oci-layout"))


def manifest_record(
    c: Container,
    manifest: dict[str, Any],
    digest: str | None,
    ref: str | None,
    platform: str | None,
    fmt: str,
    blob_name: Any = _blob_name,
) -> ImageRecord:
    label = c.label(blob_name(digest) if digest else "manifest.json")
    config_desc = json_field(manifest, "config", dict, label) or {}
    config_digest = _digest(config_desc, "digest", label, "config.")
    config_name = blob_name(config_digest)
    if not c.exists(config_name):
        raise MissingBlobError(
            c.label(config_name), "image config named by the manifest is missing"
        )
    config_bytes = c.read(config_name)
    config = parse_json(config_bytes, c.label(config_name))
    if not isinstance(config, dict):
        raise InvalidJSONError(c.label(config_name), "image config is not a JSON object")
    diff_ids = diff_ids_of(config, c.label(config_name))
    blobs = []
    for n, desc in enumerate(json_list(manifest, "layers", dict, label)):
        where = f"layers[{n}]."
        layer_digest = _digest(desc, "digest", label, where)
        blobs.append(
            LayerBlob(
                member=blob_name(layer_digest),
                declared_digest=layer_digest,
                expected_diff_id=diff_ids[n] if n < len(diff_ids) else None,
                media_type=json_field(desc, "mediaType", str, label, where),
                declared_size=json_field(desc, "size", int, label, where),
            )
        )
    record = ImageRecord(
        container=c,
        format=fmt,
        config_bytes=config_bytes,
        config_label=c.label(config_name),
        layers=blobs,
        tags=[ref] if ref else [],
        config_digest=config_digest,
        platform=platform_of(config) or platform,
        manifest_digest=digest,
    )
    if len(diff_ids) != len(blobs):
        record.notes.append(f"config lists {len(diff_ids)} diff_ids, manifest {len(blobs)} layers")
    return record


def schema1_record(
    c: Container, manifest: dict[str, Any], ref: str | None, fmt: str, blob_name: Any = _blob_name
) -> ImageRecord:
    """Docker schema1: layers listed top first, history as ``v1Compatibility`` strings."""
    label = c.path
    fs_layers = list(reversed(json_list(manifest, "fsLayers", dict, label)))
    v1 = []
    for n, h in enumerate(reversed(json_list(manifest, "history", dict, label))):
        text = json_field(h, "v1Compatibility", str, label, "history[].") or "{}"
        meta = parse_json(text.encode(), label)
        if not isinstance(meta, dict):
            raise InvalidJSONError(label, f"history entry {n} (from the top) is not an object")
        v1.append(meta)
    blobs = []
    history = []
    for layer, meta in zip(fs_layers, v1, strict=False):
        empty = bool(meta.get("throwaway"))
        history.append(
            {
                "created": meta.get("created"),
                "created_by": v1_command(meta),
                "author": meta.get("author"),
                "empty_layer": empty,
            }
        )
        if not empty:
            blob_sum = _digest(layer, "blobSum", label, "fsLayers[].")
            blobs.append(LayerBlob(member=blob_name(blob_sum), declared_digest=blob_sum))
    top = v1[-1] if v1 else {}
    config_bytes = json.dumps(top).encode()
    tag = manifest.get("tag")
    name = manifest.get("name")
    return ImageRecord(
        container=c,
        format=f"{fmt}(schema1)",
        config_bytes=config_bytes,
        config_label=f"{c.path} (schema1 v1Compatibility)",
        layers=blobs,
        tags=[ref] if ref else ([f"{name}:{tag}"] if name and tag else []),
        platform=platform_of(top) or "linux/amd64",
        history_override=history,
    )


def discover_skopeo_dir(container: Container) -> list[ImageRecord]:
    """skopeo's ``dir:`` transport: a single ``manifest.json`` object, blobs named by hex."""
    if not container.exists("manifest.json"):
        return []
    manifest = load_json(container, "manifest.json")
    if not isinstance(manifest, dict):
        return []

    def blob_name(digest: str) -> str:
        return digest.partition(":")[2]

    if "fsLayers" in manifest:
        return [schema1_record(container, manifest, None, "skopeo-dir", blob_name)]
    if "layers" in manifest and "config" in manifest:
        return [manifest_record(container, manifest, None, None, None, "skopeo-dir", blob_name)]
    if "manifests" in manifest:
        raise NotAnImageError(
            container.label("manifest.json"), "a manifest list without the per-platform manifests"
        )
    raise InvalidJSONError(container.label("manifest.json"), "neither a manifest nor a list")
