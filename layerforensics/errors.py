"""The exceptions and warnings layerforensics raises.

Every error a user can see derives from :class:`LayerForensicsError` and names the file (or the
member inside an archive) and what is wrong with it, so a responder never has to read a bare
``tarfile`` or ``json`` traceback to learn that the evidence is damaged.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "CorruptArchiveError",
    "DigestMismatchError",
    "DigestMismatchWarning",
    "ImageReferenceError",
    "InvalidJSONError",
    "LayerForensicsError",
    "MissingBlobError",
    "NotAnImageError",
    "PathNotFoundError",
    "PlatformError",
    "UnsafePathError",
]


class LayerForensicsError(Exception):
    """Base class of every error raised by layerforensics.

    Parameters
    ----------
    source
        The file, directory or archive member the problem is in.
    problem
        What is wrong, in words a user can act on.
    """

    def __init__(self, source: str, problem: str) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class NotAnImageError(LayerForensicsError):
    """The input is readable but is not a container image in any format we know."""


class ArtifactError(NotAnImageError):
    """The input is an OCI artifact (a Helm chart, a signature, ...), not a container image."""


class CorruptArchiveError(LayerForensicsError):
    """An archive or layer is truncated, or its bytes cannot be decoded."""


class InvalidJSONError(CorruptArchiveError):
    """A manifest, index or config is not valid JSON, or lacks a required field."""


class MissingBlobError(LayerForensicsError):
    """A manifest names a blob (layer, config) that is not in the archive or layout."""


class DigestMismatchError(LayerForensicsError):
    """A blob's bytes do not hash to the digest that names it (raised with ``strict=True``)."""


class PlatformError(LayerForensicsError):
    """The requested platform is absent, or several are present and none was chosen."""


class ImageReferenceError(LayerForensicsError):
    """The requested image reference is not in the archive, or several images and none chosen."""


class PathNotFoundError(LayerForensicsError, KeyError):
    """A path asked for does not exist in the requested layer or filesystem."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return f"{self.source}: {self.problem}"


class UnsafePathError(LayerForensicsError):
    """An export would write outside its destination folder (``..``, absolute links, ...)."""


class DigestMismatchWarning(UserWarning):
    """A blob digest or a diff_id does not match; the layer is marked ``verified=False``."""
