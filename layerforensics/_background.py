"""Run a producer on a worker thread and consume what it emits as an ordinary iterator.

Used where one pass must feed two parties at once: decompression overlapping the tar parsing,
and the indexing pass handing file contents to a caller (the secrets scan) as it goes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

_END = object()


class _Stopped(Exception):
    """Raised inside the producer when the consumer has gone away."""


def background(work: Callable[[Callable[[Any], None]], None], *, maxsize: int = 8) -> Iterator[Any]:
    """Yield, in order, every item ``work(emit)`` emits on a worker thread.

    The queue between them is bounded (memory stays bounded), an exception in ``work`` is
    raised in the consumer, and a consumer that stops early stops the producer at its next
    ``emit``.
    """
    out: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
    stop = threading.Event()

    def emit(item: Any) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def run() -> None:
        try:
            work(emit)
            out.put(_END)
        except _Stopped:
            return
        except BaseException as exc:  # handed over to the consumer, raised there
            out.put(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
