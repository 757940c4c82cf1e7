"""The garbage collector, set for bpoguard's servers.

Reference counting frees almost everything a request allocates (rows, tuples,
dicts); CPython's cyclic collector still runs every 700 net allocations of
container objects and, every hundred of those runs, traverses the whole
long-lived heap of a server (SQLAlchemy, FastAPI, the policies and the
directory): a quarter of a web worker's CPU and the tail of its latency.
:func:`tune`, run once a process has built what it keeps, freezes that heap
out of every collection and collects young objects far less often, for a few
MiB. Measured (docs/benchmarks.md): web workers paced at 1,000 views/s, p99
85 -> 40 ms (medians of runs) and 1.07 -> 0.81 ms of CPU a view. A one-shot command gains
nothing measurable (`bpoguard trace leak` on a 10,000-record dump, three
alternated pairs, 3.7-4.4 s either way), so the CLI leaves the defaults.
:func:`paused` instead switches the collector off around one stretch of work that
allocates a great many objects and no cycles (a simulated day, a block of a dump,
a report), whose full collections would only walk the heap for nothing.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 100_000  # young objects left before a collection (CPython's default: 700)
_MIDDLE, _OLD = 50, 100  # collections of the younger generation before an older one's

__all__ = ["YOUNG_THRESHOLD", "paused", "tune"]


def tune() -> None:
    """Freeze the heap built so far out of collections and collect young objects seldom."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, _MIDDLE, _OLD)


@contextmanager
def paused() -> Iterator[None]:
    """The cyclic collector off for the block, and on again after it if it was on.

    For work that makes no reference cycles: refcounting frees everything, and
    whatever is left to collect is collected once the collector runs again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
