"""Reading a dump's records in blocks and recognising their values, a block ahead.

Matching (:mod:`bpoguard.trace.matcher`) looks a block's values up together; the
values are recognised (:func:`~.values.recognise`, a pure function of the cells)
in a forked worker process a block ahead, so both cores work. This module knows
nothing of the vault or the database, so it imports only the standard library
and the recogniser.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
from collections.abc import Iterable, Iterator

from bpoguard.trace.dump import Cells
from bpoguard.trace.values import Sighting, pack, recognise, unpack

# Records whose values are looked up in one batch, at most: large enough that the
# look-ups cost a few statements per client and field, small enough that memory stays
# bounded.
BLOCK = 5_000
# The first block is recognised here while a worker recognises the second; each block
# after it is twice the one before, up to BLOCK. Recognising a record costs a little
# less than deciding it, so the worker recognising block k+1 is nearly done when this
# process has decided block k, and yet there are few workers: each fork costs this
# process some thousands of copy-on-write page faults (blocks a third larger each, from
# 600, took six forks instead of three on a 10,000-record dump and measured no faster on
# two shared cores under load).
# The first block is large enough that a column has taught which field types match in
# it (the matcher's LEARN_AFTER) before the next blocks look up only those.
FIRST_BLOCK = 1_000
GROWTH = 2

# Blocks of at least this many records are recognised in a forked worker process while
# this one looks up and decides the block before (recognising is two fifths of matching,
# and the machine has a second core); smaller ones are not worth a fork.
AHEAD_AT = 500


def _blocks(records: Iterable[Cells]) -> Iterator[list[Cells]]:
    block: list[Cells] = []
    size = FIRST_BLOCK
    for record in records:
        block.append(record)
        if len(block) >= size:
            yield block
            block, size = [], min(BLOCK, max(size + 1, size * GROWTH))
    if block:
        yield block


def recognised(records: Iterable[Cells]) -> Iterator[tuple[list[Cells], list[Sighting]]]:
    """Each block of records with its sightings; the next block is recognised while this one is matched.

    The first block is recognised here, while a worker recognises the second: nothing
    is there to be matched yet, so both cores work from the start.
    """
    blocks = _blocks(records)
    current = next(blocks, None)
    if current is None:
        return
    job = _Recognition(current, ahead=False)
    try:
        for following in blocks:
            ahead = _Recognition(following)
            try:
                sightings = job.sightings()
            except BaseException:
                ahead.cancel()
                raise
            job = ahead
            yield current, sightings
            current = following
        yield current, job.sightings()
    finally:
        job.cancel()  # the consumer stopped early, or failed: no worker left behind


def _can_fork() -> bool:
    if not hasattr(os, "fork"):
        return False
    cores = (
        os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    )
    return len(cores) > 1


_CAN_FORK = _can_fork()


class _Recognition:
    """One block's values recognised in a forked worker, or here when a worker cannot help.

    The worker is a fork of this process (everything imported, the block already in
    memory), so it needs nothing sent to it; it hands back :func:`~.values.pack`'s
    bytes through a pipe and exits. Recognising is a pure function of the cells: if
    the worker fails in any way, the block is recognised here, with the same answer.
    """

    def __init__(self, block: list[Cells], *, ahead: bool = True) -> None:
        self.block = block
        self._pid: int | None = None
        self._pipe: int | None = None
        if ahead and len(block) >= AHEAD_AT and _CAN_FORK:
            self._start()

    def _start(self) -> None:
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            return  # no process to be had: recognised here instead
        if pid == 0:  # the worker: recognise, write, and leave without running any cleanup
            code = 1
            try:
                # The worker makes no cycles and exits in a moment; a collection would
                # walk (and copy, page by page) the whole heap it shares with the parent.
                gc.disable()
                os.close(read)
                data = pack([recognise(record.cells) for record in self.block])
                with os.fdopen(write, "wb") as out:
                    out.write(data)
                code = 0
            finally:
                os._exit(code)  # never a traceback or the parent's exit handlers here
        os.close(write)
        self._pid, self._pipe = pid, read

    def sightings(self) -> list[Sighting]:
        """The block's sightings, from the worker if it managed, else recognised here."""
        if self._pipe is not None and self._pid is not None:
            with os.fdopen(self._pipe, "rb") as pipe:
                self._pipe = None
                data = pipe.read()
            _, status = os.waitpid(self._pid, 0)
            self._pid = None
            if os.waitstatus_to_exitcode(status) == 0:
                return unpack(data)
        return [recognise(record.cells) for record in self.block]

    def cancel(self) -> None:
        """Stop and reap the worker, if it is still there."""
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):  # gone already: reaped all the same
                os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = None
