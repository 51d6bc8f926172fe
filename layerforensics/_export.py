"""Safe export of a layer's entries or of the merged filesystem into a folder.

Evidence leaves the archive only through here. Nothing is written outside the export folder:
paths are normalised, an entry below a symlink of the image is skipped with a warning,
symlinks are written last (so no write can pass through a link taken from the image), every
target is checked to resolve inside the folder anyway, existing files are never overwritten,
and no device, fifo, setuid/setgid bit or ownership is recreated. Each layer is read in one
pass, whatever the number of files.
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from ._overlay import MARKER_TYPES
from ._tarscan import normalize_path
from .errors import UnsafePathError

if TYPE_CHECKING:
    from .image import Image


def export(
    image: Image,
    dest: str | os.PathLike[str],
    *,
    layer: int | None,
    path: str | None,
    merged: bool,
) -> list[Path]:
    """See :meth:`layerforensics.Image.extract`."""
    root = Path(dest).resolve()
    root.mkdir(parents=True, exist_ok=True)
    top = image._check_layer(layer)
    entries = image._index()
    prefix = normalize_path(path) if path else "/"
    if merged:
        versions = image._replay(top).state
    else:
        versions = {}
        for i, e in enumerate(entries[top]):
            if e.type not in MARKER_TYPES and not e.synthetic:
                versions[e.path] = (top, i)  # the last entry of a path wins, as in tar
    chosen = sorted(
        (p, v)
        for p, v in versions.items()
        if p != "/" and (prefix == "/" or p == prefix or p.startswith(prefix + "/"))
    )

    def target_of(p: str) -> Path:
        target = (root / p.lstrip("/")).resolve(strict=False)
        if root not in target.parents:
            raise UnsafePathError(str(root), f"{p} would be written outside the export folder")
        return target

    # An entry below a path that is a symlink in the image cannot be written without following
    # the link (the classic tar escape): it is skipped, with a warning naming it.
    link_paths = {p for p, (n, i) in chosen if entries[n][i].type == "symlink"}
    if link_paths:
        kept = []
        for p, v in chosen:
            parent = p.rpartition("/")[0]
            while parent and parent not in link_paths:
                parent = parent.rpartition("/")[0]
            if parent:
                warnings.warn(
                    f"{p}: not exported, {parent} is a symlink in the image", stacklevel=3
                )
            else:
                kept.append((p, v))
        chosen = kept

    written: list[Path] = []
    files: dict[tuple[int, int], list[tuple[Path, int]]] = defaultdict(list)
    links: list[tuple[Path, str]] = []
    for p, (n, i) in chosen:
        e = entries[n][i]
        if e.type == "dir":
            target_of(p).mkdir(parents=True, exist_ok=True)
        elif e.type in ("file", "hardlink"):
            content = image._content_version((n, i), missing_ok=True)
            if content is not None:
                mode = e.mode & 0o777 if e.type == "file" else entries[content[0]][content[1]].mode
                files[content].append((target_of(p), mode & 0o777))
        elif e.type == "symlink":
            links.append((target_of(p), e.linkname or ""))
    by_layer: dict[int, set[int]] = defaultdict(set)
    for n, i in files:
        by_layer[n].add(i)
    for n in sorted(by_layer):
        for row, data in image.iter_contents(layers=[n]):
            for target, mode in files.get((row.layer, row.entry), ()):
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "xb") as f:
                    f.write(data)
                os.chmod(target, mode)
                written.append(target)
    for target, link in links:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(link, target)
        written.append(target)
    return written
