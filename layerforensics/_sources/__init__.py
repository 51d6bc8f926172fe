"""Sources: where an image's bytes come from, and nothing about what its layers mean.

:func:`discover` looks at a container (a tar or a directory) and recognises, from its content
alone, which image format it holds; it returns one :class:`ImageRecord` per image it finds.
Each record knows the raw config bytes, the manifest facts and an ordered list of
:class:`LayerBlob` that can be opened as streams. The analysis modules never look at file names.
"""

from __future__ import annotations

import re

from .._container import Container
from ..errors import NotAnImageError
from ._model import ImageRecord, LayerBlob
from .docker_archive import discover_docker_archive, discover_v1_repositories
from .oci_layout import discover_oci_layout, discover_skopeo_dir

__all__ = ["ImageRecord", "LayerBlob", "discover"]

_ENGINE_TREE = re.compile(
    r"(^|/)(image/(overlay2|overlay|aufs|vfs|btrfs)/|graph/[0-9a-f]{64}/|"
    r"overlay-layers/|overlay-images/)"
)


def discover(container: Container) -> list[ImageRecord]:
    """Every image in ``container``, whatever the format, detected from content.

    Raises
    ------
    NotAnImageError
        Nothing in the container is an image (a plain tar, a bare layer, an artifact).
    """
    # Order matters: Docker 25+ archives are both an OCI layout and a docker save; their
    # manifest.json is the reliable part (moby issues 47065, 47150, 47210).
    for finder in (
        discover_docker_archive,
        discover_oci_layout,
        discover_skopeo_dir,
        discover_v1_repositories,
    ):
        records = finder(container)
        if records:
            return records
    names = [n for n in container.names() if n]
    if any(_ENGINE_TREE.search(n) for n in names):
        raise NotAnImageError(
            container.path,
            "this is a container engine's storage tree (/var/lib/docker or containers/storage), "
            "not an image archive: open it with layerforensics.open_host()",
        )
    if not names:
        raise NotAnImageError(container.path, "empty archive or directory: no image inside")
    raise NotAnImageError(
        container.path,
        "not a container image: no manifest.json, index.json or repositories file "
        f"(it holds {len(names)} plain files, e.g. {sorted(names)[0]!r}; a single layer tar or "
        "a file tree?)",
    )
