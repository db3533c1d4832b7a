"""Many independent file reads or copies on a few threads, results in input order (harmonise's STAR merge, the
GDC download from a local mirror). Threads, not processes: polars' CSV reader, hashlib and file I/O release the
GIL, and the results (arrays) need no pickling."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


def ordered_map(function: Callable[[_T], _R], items: Iterable[_T], workers: int, ahead: int = 4) -> Iterator[_R]:
    """`function(item)` for each item, in order, on `workers` threads (in the caller's thread when `workers` <= 1).

    At most `ahead` x `workers` results are computed ahead of the consumer, so memory stays bounded when each
    result is large (a file's columns). An exception of `function` is raised when its result is reached; when the
    consumer stops early, the calls already started finish and the rest are cancelled.
    """
    if workers <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[_R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= ahead * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
