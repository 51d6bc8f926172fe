"""layerforensics: container images (layers, history, config) as pandas DataFrames.

>>> import layerforensics as lf
>>> img = lf.open_image("app.tar")        # docker save, OCI layout, ... detected from content
>>> img.deleted                            # files removed by a later layer, still recoverable
>>> img.read("/secret.txt", layer=1)       # their bytes, from the layer that wrote them

Sources (where bytes come from) live in ``_container`` and ``_sources``; the analysis of what
layers mean in ``_tarscan``, ``_overlay`` and :mod:`layerforensics.image`; presentation in
``cli`` (and plots and widgets). Everything public is listed in ``__all__``.
"""

from __future__ import annotations

from typing import Any

from . import accessor, errors
from .errors import LayerForensicsError
from .host import Host, HostContainer, open_host
from .image import FileRow, Image, list_images, open_image
from .query import read_parquet, sql


def explore(image: Image, **options: Any) -> Any:
    """The dive-like explorer widget for JupyterLab (ipywidgets is imported on first use)."""
    from .explore import explore as _explore

    return _explore(image, **options)


__version__ = "0.1.0"

__all__ = [
    "FileRow",
    "Host",
    "HostContainer",
    "Image",
    "LayerForensicsError",
    "__version__",
    "accessor",
    "errors",
    "explore",
    "list_images",
    "open_host",
    "open_image",
    "read_parquet",
    "sql",
]
