"""Progress bars for slow steps: ``tqdm.auto`` when someone is watching, silent otherwise.

A bar is shown in a Jupyter kernel or when stderr is a terminal; never in CI logs, pipes or
tests. ``LAYERFORENSICS_PROGRESS=1`` forces bars on, ``=0`` forces them off.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

__all__ = ["ensure_indexed", "interactive", "progress", "track"]

T = TypeVar("T")

if TYPE_CHECKING:
    from .image import Image


def interactive() -> bool:
    """True when a progress bar would be seen (a Jupyter kernel, or a terminal on stderr)."""
    forced = os.environ.get("LAYERFORENSICS_PROGRESS", "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        get = getattr(ipython, "get_ipython", None)
        shell = get() if get else None
        if shell is not None and getattr(shell, "kernel", None) is not None:
            return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Silent:
    """The subset of the tqdm API used here, doing nothing."""

    def update(self, n: float = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def progress(
    total: float | None, desc: str, *, unit: str = "it", unit_scale: bool = False
) -> Iterator[Any]:
    """A ``tqdm.auto`` bar (or a silent stand-in) that is closed on exit.

    Parameters
    ----------
    total
        Expected total (``None``: unknown).
    desc
        Label shown before the bar.
    unit, unit_scale
        As in tqdm (``unit="B", unit_scale=True`` for bytes).
    """
    if not interactive():
        bar: Any = _Silent()
    else:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, leave=False)
    try:
        yield bar
    finally:
        bar.close()


def track(items: Iterable[T], desc: str, *, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` with a progress bar when interactive."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress(total, desc) as bar:
        for item in items:
            yield item
            bar.update(1)


def ensure_indexed(img: Image, desc: str = "indexing layers") -> None:
    """Index every layer of ``img`` (one streaming pass each) with a bar per layer."""
    with progress(img.layer_count, desc, unit="layer") as bar:
        done = [0]

        def callback(n: int, total: int) -> None:
            bar.update(n - done[0])
            done[0] = n

        img.index(progress=callback)
