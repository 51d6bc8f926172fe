"""``docker save`` archives of every era.

- legacy (1.10 to 24, podman/skopeo ``docker-archive``, kaniko tarballs): ``manifest.json``
  naming a config and layer members, which may be symlinks or compressed;
- Docker 25+ and containerd-store saves: the same ``manifest.json`` beside an OCI layout;
- pre-1.10: ``repositories`` plus ``<v1-id>/json`` parent chains, no manifest at all.
"""

from __future__ import annotations

import json
from typing import Any

from .._container import Container
from ..errors import InvalidJSONError, MissingBlobError, NotAnImageError
from ._model import (
    HEX64,
    ImageRecord,
    LayerBlob,
    diff_ids_of,
    digest_from_name,
    json_field,
    load_json,
    platform_of,
    v1_command,
)


def discover_docker_archive(container: Container) -> list[ImageRecord]:
    if not container.exists("manifest.json"):
        return []
    manifest = load_json(container, "manifest.json")
    label = container.label("manifest.json")
    if manifest is None and not (
        container.exists("index.json") or container.exists("repositories")
    ):
        raise NotAnImageError(label, "manifest.json is null: the archive lists no image")
    if not isinstance(manifest, list):
        # A dict is skopeo's dir: transport or an OCI manifest; null is a broken save that the
        # OCI layout beside it (if any) may still describe.
        return []
    records = []
    for i, entry in enumerate(manifest):
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidJSONError(label, f"entry {i} has no Config")
        layers = entry.get("Layers") or []
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise InvalidJSONError(label, f"entry {i} has a malformed Layers list")
        config_name = entry["Config"]
        if not container.exists(config_name):
            raise MissingBlobError(
                container.label(config_name), "config named by manifest.json is missing"
            )
        config_bytes = container.read(config_name)
        config_label = container.label(config_name)
        config = _parse_config(config_bytes, config_label)
        diff_ids = diff_ids_of(config, config_label)
        where = f"entry {i}: "
        sources = json_field(entry, "LayerSources", dict, label, where) or {}
        blobs = []
        for n, member in enumerate(layers):
            expected = diff_ids[n] if n < len(diff_ids) else None
            descriptor = sources.get(expected) or {}
            if not isinstance(descriptor, dict):
                raise InvalidJSONError(label, f"{where}LayerSources[{expected!r}] is not an object")
            blobs.append(
                LayerBlob(
                    member=member,
                    declared_digest=digest_from_name(member) if "blobs/" in member else None,
                    expected_diff_id=expected,
                    media_type=json_field(descriptor, "mediaType", str, label, where),
                    declared_size=json_field(descriptor, "size", int, label, where),
                )
            )
        fmt = "docker-archive"
        if container.exists("index.json"):
            fmt = "docker-archive+oci"  # Docker 25+ or the containerd image store
        record = ImageRecord(
            container=container,
            format=fmt,
            config_bytes=config_bytes,
            config_label=container.label(config_name),
            layers=blobs,
            tags=[
                t
                for t in (json_field(entry, "RepoTags", list, label, where) or [])
                if isinstance(t, str)
            ],
            config_digest=digest_from_name(config_name),
            platform=platform_of(config),
        )
        if len(diff_ids) != len(layers):
            record.notes.append(
                f"config lists {len(diff_ids)} diff_ids but manifest.json {len(layers)} layers"
            )
        records.append(record)
    return records


def _parse_config(data: bytes, label: str) -> dict[str, Any]:
    try:
        config = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJSONError(label, f"image config is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise InvalidJSONError(label, "image config is not a JSON object")
    return config


def discover_v1_repositories(container: Container) -> list[ImageRecord]:
    """Pre-1.10 archives: follow ``parent`` links from each tagged v1 id down to the base."""
    if not container.exists("repositories"):
        return []
    repos = load_json(container, "repositories")
    label = container.label("repositories")
    if not isinstance(repos, dict):
        raise InvalidJSONError(label, "repositories is not a JSON object")
    by_top: dict[str, list[str]] = {}
    for name, tags in repos.items():
        if not isinstance(tags, dict):
            raise InvalidJSONError(label, f"entry {name!r} is not an object")
        for tag, top in tags.items():
            by_top.setdefault(str(top), []).append(f"{name}:{tag}")
    records = []
    for top, tags in by_top.items():
        chain: list[tuple[str, dict[str, Any]]] = []
        current: str | None = top
        while current:
            if not HEX64.match(current) or not container.exists(f"{current}/json"):
                raise MissingBlobError(
                    container.label(f"{current}/json"),
                    "v1 layer metadata named in the chain is missing",
                )
            meta_label = container.label(f"{current}/json")
            meta = load_json(container, f"{current}/json")
            if not isinstance(meta, dict):
                raise InvalidJSONError(meta_label, "v1 layer metadata is not a JSON object")
            chain.append((current, meta))
            current = json_field(meta, "parent", str, meta_label)
            if len(chain) > 10_000:
                raise InvalidJSONError(label, "v1 parent chain loops")
        chain.reverse()  # base first
        config_bytes, config_label, config_digest = _v1_config(container, chain)
        config = _parse_config(config_bytes, config_label)
        diff_ids = diff_ids_of(config, config_label)
        blobs = [
            LayerBlob(
                member=f"{v1id}/layer.tar",
                expected_diff_id=diff_ids[i] if len(diff_ids) == len(chain) else None,
            )
            for i, (v1id, _meta) in enumerate(chain)
        ]
        history = None
        if not config.get("history"):
            history = [_v1_history(meta) for _v1id, meta in chain]
        records.append(
            ImageRecord(
                container=container,
                format="docker-v1",
                config_bytes=config_bytes,
                config_label=config_label,
                layers=blobs,
                tags=tags,
                config_digest=config_digest,
                platform=platform_of(config) or "linux/amd64",
                history_override=history,
            )
        )
    return records


def _v1_config(
    container: Container, chain: list[tuple[str, dict[str, Any]]]
) -> tuple[bytes, str, str | None]:
    # A 1.10-era archive without manifest.json still has the real config at <hex>.json; use it
    # when its diff_ids count matches the chain, else the top layer's v1 json is the config.
    for name in container.names():
        stem = name.removesuffix(".json")
        if "/" not in name and name.endswith(".json") and HEX64.match(stem):
            data = container.read(name)
            try:
                config = json.loads(data)
                diff_ids = diff_ids_of(config, name) if isinstance(config, dict) else []
            except (UnicodeDecodeError, json.JSONDecodeError, InvalidJSONError):
                continue  # not the config this chain needs
            if diff_ids and len(diff_ids) == len(chain):
                return data, container.label(name), f"sha256:{stem}"
    top = chain[-1][0]
    return container.read(f"{top}/json"), container.label(f"{top}/json"), None


def _v1_history(meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "created": meta.get("created"),
        "created_by": v1_command(meta),
        "author": meta.get("author"),
        "comment": meta.get("comment"),
    }
