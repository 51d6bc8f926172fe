"""The two records every source produces."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._container import Container
from .._tarscan import TarEntry
from ..errors import InvalidJSONError

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(slots=True)
class LayerInfo:
    """What one indexing pass learned about a layer besides its entries."""

    compression: str
    stored_size: int
    tar_size: int
    digest: str | None
    diff_id: str | None
    verified: bool | None


class LayerProvider(Protocol):
    """A layer whose entries come from somewhere other than a tar blob (an overlay ``diff``
    directory on a seized host, for example). Sources return one in :attr:`LayerBlob.provider`.
    """

    label: str

    def scan(
        self,
        want: Callable[[TarEntry], bool] | None,
        sink: Callable[[int, TarEntry, bytes], None] | None,
    ) -> tuple[list[TarEntry], LayerInfo]:
        """Every entry, in a stable order, with whiteouts expressed as tar-style markers."""
        ...

    def read(self, entry: TarEntry) -> bytes:
        """The bytes of one regular-file entry returned by :meth:`scan`."""
        ...


@dataclass(slots=True)
class LayerBlob:
    """One stored layer of an image.

    Attributes
    ----------
    member
        The member name inside the container (``blobs/sha256/...``, ``<id>/layer.tar``).
    declared_digest
        ``sha256:<hex>`` of the stored bytes, when the manifest or the blob's name says it.
    expected_diff_id
        ``sha256:<hex>`` of the uncompressed tar, from the config's ``rootfs.diff_ids``.
    media_type
        The declared media type (information only: compression is sniffed from bytes).
    declared_size
        The size the descriptor declares, when there is one.
    """

    member: str
    declared_digest: str | None = None
    expected_diff_id: str | None = None
    media_type: str | None = None
    declared_size: int | None = None
    provider: LayerProvider | None = None


@dataclass(slots=True)
class ImageRecord:
    """What a source knows about one image before any layer is read."""

    container: Container
    format: str
    config_bytes: bytes
    config_label: str
    layers: list[LayerBlob]
    tags: list[str] = field(default_factory=list)
    config_digest: str | None = None  # the digest that names the config, to verify it
    platform: str | None = None
    manifest_digest: str | None = None
    #: Synthesised history (schema1 / pre-1.10 archives carry it outside the config).
    history_override: list[dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str | None:
        return self.tags[0] if self.tags else None


def load_json(container: Container, name: str) -> Any:
    """Parse a JSON member, turning any decoding problem into :class:`InvalidJSONError`."""
    data = container.read(name)
    return parse_json(data, container.label(name))


def parse_json(data: bytes, label: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJSONError(label, f"not valid JSON ({exc})") from None


_KINDS: dict[type, str] = {dict: "an object", list: "a list", str: "a string", int: "a number"}


def _describe(value: Any) -> str:
    for kind, name in _KINDS.items():
        if isinstance(value, kind) and not isinstance(value, bool):
            return name
    return "a boolean" if isinstance(value, bool) else "a number"


def json_field(obj: dict[str, Any], key: str, kind: type, label: str, where: str = "") -> Any:
    """``obj[key]`` when it is of the JSON type ``kind`` (``dict``, ``list``, ``str``, ``int``);
    None when absent or null.

    Raises
    ------
    InvalidJSONError
        The value has another type: the message names the file and the field.
    """
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidJSONError(
            label, f"{where}{key} is {_describe(value)}, expected {_KINDS[kind]}"
        )
    return value


def json_list(obj: dict[str, Any], key: str, item: type, label: str, where: str = "") -> list[Any]:
    """``obj[key]`` as a list whose every item is of the JSON type ``item`` (empty when absent
    or null); see :func:`json_field`."""
    values = json_field(obj, key, list, label, where) or []
    for i, value in enumerate(values):
        if not isinstance(value, item):
            raise InvalidJSONError(
                label, f"{where}{key}[{i}] is {_describe(value)}, expected {_KINDS[item]}"
            )
    return values


def diff_ids_of(config: dict[str, Any], label: str) -> list[str]:
    """The config's ``rootfs.diff_ids`` (empty when it has none)."""
    rootfs = json_field(config, "rootfs", dict, label) or {}
    return json_list(rootfs, "diff_ids", str, label, "rootfs.")


def v1_command(meta: dict[str, Any]) -> str:
    """The build command a v1 layer json records (``container_config.Cmd``), as one string."""
    container_config = meta.get("container_config")
    cmd = container_config.get("Cmd") if isinstance(container_config, dict) else None
    if isinstance(cmd, list):
        return " ".join(map(str, cmd))
    return "" if cmd is None else str(cmd)


def digest_from_name(name: str) -> str | None:
    """``sha256:<hex>`` when a member name is a content address (``blobs/sha256/<hex>``...)."""
    base = name.rsplit("/", 1)[-1]
    parts = name.split("/")
    if len(parts) >= 2 and parts[-2] == "sha256" and HEX64.match(base):
        return f"sha256:{base}"
    if base.startswith("sha256:") and HEX64.match(base[7:]):
        return base
    stem = base.removesuffix(".json")
    if HEX64.match(stem) and base.endswith(".json"):
        return f"sha256:{stem}"
    return None


def platform_of(config: dict[str, Any]) -> str | None:
    os_ = config.get("os")
    arch = config.get("architecture")
    if not isinstance(os_, str) or not isinstance(arch, str) or not os_ or not arch:
        return None
    variant = config.get("variant")
    return f"{os_}/{arch}/{variant}" if isinstance(variant, str) and variant else f"{os_}/{arch}"
