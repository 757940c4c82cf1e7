"""Reading a dump's records in blocks and recognising their values, ahead of matching.

Matching (:mod:`bpoguard.trace.matcher`) looks a block's values up together; the
values are recognised (:func:`~.values.recognise`, a pure function of the cells)
in forked worker processes, so both cores work. A trace forks one worker for the
whole dump as early as it can (:class:`DumpRecognition`: before the database and
the analytics libraries are even imported), which reads the dump and streams each
block back as it finishes it; :func:`recognised` recognises records already read,
the next block in a worker while this process matches the one before. This module
knows nothing of the vault or the database, so it imports only the standard
library, the dump reader and the recogniser.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import itertools
import marshal
import os
import queue
import signal
import struct
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from bpoguard.trace.dump import MAX_RECORDS, Cells, ReadStats, read_dump
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


def _grown(size: int) -> int:
    return min(BLOCK, max(size + 1, size * GROWTH))


def _blocks(records: Iterable[Cells], size: int | None = None) -> Iterator[list[Cells]]:
    block: list[Cells] = []
    size = FIRST_BLOCK if size is None else size
    for record in records:
        block.append(record)
        if len(block) >= size:
            yield block
            block, size = [], _grown(size)
    if block:
        yield block


def _size_after(records: int) -> int:
    """The size of the block that follows the first `records` records, cut by :func:`_blocks`."""
    size, cut = FIRST_BLOCK, 0
    while cut < records:
        cut, size = cut + size, _grown(size)
    return size


def recognised(
    records: Iterable[Cells], first: int | None = None
) -> Iterator[tuple[list[Cells], list[Sighting]]]:
    """Each block of records with its sightings; the next block is recognised while this one is matched.

    The first block (``first`` records, by default FIRST_BLOCK) is recognised here,
    while a worker recognises the second: nothing is there to be matched yet, so both
    cores work from the start.
    """
    blocks = _blocks(records, first)
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


# --- one worker for the whole dump, from the start ----------------------------------------

# Blocks the reader thread keeps for this process while it is busy elsewhere (importing,
# opening the database, matching the block before); past them the worker waits, so memory
# stays bounded whatever the dump's size. A 10,000-record dump is four blocks.
QUEUED = 3
# Asked of the kernel for the pipe (Linux; 64 KiB otherwise): a block of 1,000 records is
# some 250 KB, so the reader wakes a few times a block rather than dozens, each time taking
# the interpreter's lock from a parent busy importing.
_PIPE_SIZE = 1024 * 1024
_FRAME = struct.Struct("<cQ")  # a frame's kind, and its length in bytes
_BLOCK, _END = b"B", b"E"
_STATS = tuple(f.name for f in dataclasses.fields(ReadStats))

_Frame = tuple[bytes, bytes]
_Block = tuple[list[Cells], list[Sighting]]


class DumpRecognition:
    """A whole dump read and recognised by one forked worker, streamed back a block at a time.

    Started before anything heavy is imported or opened (the command starts it as soon
    as its arguments are checked, and imports the trace meanwhile), the worker (a fork
    of a light process) reads the dump with :func:`~.dump.read_dump`, cuts it into the blocks
    :func:`recognised` would, recognises each and writes its cells and sightings to a
    pipe as soon as it has them, then the :class:`~.dump.ReadStats`. A thread here
    drains the pipe into a queue of at most QUEUED blocks, so the worker never waits
    on a parent busy elsewhere. Sensitive values cross only that pipe, never a file.

    The same answers whatever happens: where no worker can be forked (no fork, one
    core), or it fails in any way, this process reads the dump itself, passes over the
    records already handed out, and recognises the rest with :func:`recognised`,
    exactly as a trace without this worker; a dump that cannot be read raises the
    same :class:`~.dump.DumpError` from that reading. :meth:`close` (or the end of the
    ``with`` block) stops and reaps the worker, on an error or Ctrl-C too.
    """

    def __init__(self, path: Path, max_records: int = MAX_RECORDS) -> None:
        self.path = path
        self.max_records = max_records
        self._pid: int | None = None
        self._pipe: int | None = None
        self._reader: threading.Thread | None = None
        self._frames: queue.Queue[_Frame | None] = queue.Queue(QUEUED)
        self._stop = threading.Event()
        if _CAN_FORK:
            self._start()

    def __enter__(self) -> DumpRecognition:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def blocks(self, stats: ReadStats) -> Iterator[_Block]:
        """The dump's blocks with their sightings, in order; `stats` filled as reading here fills it."""
        handed = 0
        if self._reader is not None:
            while (frame := self._frames.get()) is not None:
                kind, payload = frame
                # Bytes from our own forked worker over a private pipe, never from a user.
                found = marshal.loads(payload)  # noqa: S302
                if kind == _END:
                    self.close()
                    for name, value in zip(_STATS, found, strict=True):
                        setattr(stats, name, value)
                    return
                rows, packed = found
                block = [Cells(*row) for row in rows]
                handed += len(block)
                yield block, unpack(packed)
            self.close()  # the worker failed: reaped, and the rest is read here
        rest = itertools.islice(read_dump(self.path, stats, self.max_records), handed, None)
        yield from recognised(rest, _size_after(handed))

    def close(self) -> None:
        """Stop the worker and the reader, and reap the worker; nothing is left behind."""
        self._stop.set()
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):  # gone already: reaped all the same
                os.kill(self._pid, signal.SIGKILL)
        if self._reader is not None:
            while self._reader.is_alive():  # it sees the pipe end, or the stop, in a moment
                with contextlib.suppress(queue.Empty):
                    while True:
                        self._frames.get_nowait()
                self._reader.join(0.05)
            self._reader = None
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None
        if self._pid is not None:
            with contextlib.suppress(ChildProcessError):  # reaped by someone else
                os.waitpid(self._pid, 0)
            self._pid = None

    def _start(self) -> None:
        read, write = os.pipe()
        with contextlib.suppress(ImportError, AttributeError, OSError):  # the default size will do
            import fcntl

            fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            return  # no process to be had: read and recognised here instead
        if pid == 0:  # the worker: read, recognise, write, and leave without any cleanup
            code = 1
            try:
                os.close(read)
                _worker_quiet()
                with os.fdopen(write, "wb") as out:
                    _stream(self.path, self.max_records, out)
                code = 0
            finally:
                os._exit(code)  # never a traceback or the parent's exit handlers here
        os.close(write)
        self._pid, self._pipe = pid, read
        self._reader = threading.Thread(target=self._drain, name="trace-dump", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        """The reader thread: frames from the pipe to the queue; None if the worker failed."""
        try:
            ended = self._relay()
        except OSError:
            ended = False
        if not ended:
            self._put(None)

    def _relay(self) -> bool:
        assert self._pipe is not None
        # A read leaves the interpreter's lock while it waits: the parent imports meanwhile.
        with open(self._pipe, "rb", closefd=False) as pipe:
            while not self._stop.is_set():
                head = pipe.read(_FRAME.size)
                if len(head) < _FRAME.size:
                    return False  # the worker ended before its last frame: it failed
                kind, length = _FRAME.unpack(head)
                payload = pipe.read(length)
                if len(payload) < length or not self._put((kind, payload)):
                    return False
                if kind == _END:
                    return True
        return False

    def _put(self, frame: _Frame | None) -> bool:
        """Queue a frame, waiting while the queue is full; False once the consumer stopped."""
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._frames.put(frame, timeout=0.05)
                return True
        return False


def _worker_quiet() -> None:
    """The worker's own settings: silent, interruptible, and kept off the shared heap."""
    # Ctrl-C reaches the whole process group: the worker just ends (its parent, stopping,
    # reaps it), never with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # Nothing it does reaches the terminal: a warning or a crash report could quote a value.
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    # The heap it shares with the parent is left out of its collections (walking it would
    # copy it page by page), and the collector runs only between blocks (see _stream).
    gc.freeze()
    gc.disable()


def _stream(path: Path, max_records: int, out: io.BufferedWriter) -> None:
    """In the worker: each block's cells and sightings as a frame, then the reading's stats."""
    stats = ReadStats()
    for block in _blocks(read_dump(path, stats, max_records)):
        rows = [(r.number, r.where, r.cells) for r in block]
        _write(out, _BLOCK, marshal.dumps((rows, pack([recognise(r.cells) for r in block]))))
        del block, rows
        # Reading and recognising make no reference cycles that grow with the dump (a
        # CSV's sniffed dialects make a few), but an odd file's parser might: collected
        # here, once a block, over the worker's own few objects. With the collector
        # running as usual, its full collections walk each growing block again and again
        # (the 90-day world's 10,000-record dump, 5 runs each under load: 0.58-0.63 s of
        # the worker's CPU against 0.54-0.57 s).
        gc.collect()
    _write(out, _END, marshal.dumps([getattr(stats, name) for name in _STATS]))


def _write(out: io.BufferedWriter, kind: bytes, payload: bytes) -> None:
    out.write(_FRAME.pack(kind, len(payload)))
    out.write(payload)
    out.flush()  # the parent may be waiting on this very block
