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
    if not os_ or not arch:
        return None
    variant = config.get("variant")
    return f"{os_}/{arch}/{variant}" if variant else f"{os_}/{arch}"
