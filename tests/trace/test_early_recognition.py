"""One worker reads and recognises the whole dump from the start: the same answers, nothing left behind."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from trace_world import World, reaped

from bpoguard.cli import main
from bpoguard.cli.vault import provider
from bpoguard.guard.vault import Vault
from bpoguard.trace import dump as dump_module
from bpoguard.trace import recognition
from bpoguard.trace.dump import Cells, ReadStats, read_dump
from bpoguard.trace.dumps import DumpSpec, make_dump
from bpoguard.trace.leak import LeakOptions, trace_leak
from bpoguard.trace.recognition import DumpRecognition, recognised
from bpoguard.trace.report import leak_document
from bpoguard.workspace import Workspace

needs_fork = pytest.mark.skipif(not recognition._CAN_FORK, reason="needs fork and two cores")

Blocks = list[tuple[list[Cells], list[Any]]]


@pytest.fixture(scope="module")
def dump(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-record mixed dump of the trace world, as CSV."""
    path = tmp_path_factory.mktemp("early") / "mixed.csv"
    with Workspace.open(world.home) as ws:
        make_dump(ws, DumpSpec("mixed", 300, "csv", seed=6), path)
    return path


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Blocks of a few dozen records; the pids of the early workers, as started."""
    monkeypatch.setattr(recognition, "FIRST_BLOCK", 20)
    monkeypatch.setattr(recognition, "BLOCK", 45)
    started: list[int] = []
    start = DumpRecognition._start

    def _counted(self: DumpRecognition) -> None:
        start(self)
        if self._pid is not None:
            started.append(self._pid)

    monkeypatch.setattr(DumpRecognition, "_start", _counted)
    return started


@pytest.fixture
def taken_over(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int | None]]:
    """Where this process took over reading: the first record it recognised, and the block size."""
    seen: list[tuple[int, int | None]] = []
    recognise_here = recognition.recognised

    def _spied(records: Iterator[Cells], first: int | None = None) -> Iterator[Any]:
        for n, item in enumerate(recognise_here(records, first)):
            if n == 0:
                seen.append((item[0][0].number, first))
            yield item

    monkeypatch.setattr(recognition, "recognised", _spied)
    return seen


def _here(path: Path, max_records: int = dump_module.MAX_RECORDS) -> tuple[Blocks, ReadStats]:
    """The blocks and stats of reading and recognising in this process, as before the worker."""
    stats = ReadStats()
    return list(recognised(read_dump(path, stats, max_records))), stats


def _early(path: Path, max_records: int = dump_module.MAX_RECORDS) -> tuple[Blocks, ReadStats]:
    stats = ReadStats()
    with DumpRecognition(path, max_records) as early:
        return list(early.blocks(stats)), stats


def _no_reader_threads() -> bool:
    return not any(t.name == "trace-dump" for t in threading.enumerate())


@needs_fork
def test_the_workers_blocks_and_stats_are_those_read_and_recognised_here(
    dump: Path, small_blocks: list[int], taken_over: list[tuple[int, int | None]]
) -> None:
    here, here_stats = _here(dump)
    taken_over.clear()
    early, early_stats = _early(dump)
    assert len(small_blocks) == 1  # one worker for the whole dump
    assert taken_over == []  # and nothing read here
    assert len(early) >= 6
    assert early == here  # every block: the same records, cut the same, the same sightings
    assert dataclasses.asdict(early_stats) == dataclasses.asdict(here_stats)
    assert early_stats.records == 300 and early_stats.format == "csv"
    assert reaped(small_blocks[0]) and _no_reader_threads()


@needs_fork
def test_the_record_limit_is_kept_by_the_worker(dump: Path, small_blocks: list[int]) -> None:
    early, stats = _early(dump, max_records=50)
    assert sum(len(block) for block, _ in early) == 50
    assert stats.stopped_at_limit and stats.records == 50
    assert (early, dataclasses.asdict(stats)) == (
        _here(dump, 50)[0],
        dataclasses.asdict(_here(dump, 50)[1]),
    )


@needs_fork
def test_a_worker_failing_at_once_leaves_the_dump_to_be_read_here_silently(
    dump: Path,
    small_blocks: list[int],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    taken_over: list[tuple[int, int | None]],
) -> None:
    here, here_stats = _here(dump)
    taken_over.clear()
    records = list(read_dump(dump))
    parent = os.getpid()

    def _broken(sightings: object) -> bytes:
        if os.getpid() != parent:
            raise RuntimeError(f"worker failed on {records[0].cells}")  # would name values
        raise AssertionError("the early worker's pack runs only in the worker")

    monkeypatch.setattr(recognition, "pack", _broken)
    monkeypatch.setattr(recognition, "AHEAD_AT", 10**9)  # the fallback's own blocks here
    capfd.readouterr()
    early, stats = _early(dump)
    assert small_blocks  # the worker was started, and failed
    assert taken_over == [(1, 20)]  # the whole dump read here, cut as before
    assert early == here
    assert dataclasses.asdict(stats) == dataclasses.asdict(here_stats)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no traceback, and so no value, from the worker
    assert reaped(small_blocks[0]) and _no_reader_threads()


@needs_fork
def test_a_worker_dying_midway_is_taken_over_where_it_stopped(
    dump: Path,
    small_blocks: list[int],
    monkeypatch: pytest.MonkeyPatch,
    taken_over: list[tuple[int, int | None]],
) -> None:
    here, here_stats = _here(dump)
    taken_over.clear()
    write = recognition._write
    parent = os.getpid()
    sent: list[int] = []

    def _dies_after_two(out: Any, kind: bytes, payload: bytes) -> None:
        assert os.getpid() != parent
        if len(sent) == 2:
            os._exit(3)  # as a crash would: no last frame, no stats
        sent.append(1)
        write(out, kind, payload)

    monkeypatch.setattr(recognition, "_write", _dies_after_two)
    early, stats = _early(dump)
    assert taken_over == [(61, 45)]  # blocks of 20 and 40 from the worker, then here
    assert early == here  # cut into the same blocks all the same
    numbers = [r.number for block, _ in early for r in block]
    assert numbers == list(range(1, 301))  # none twice, none missed
    assert dataclasses.asdict(stats) == dataclasses.asdict(here_stats)
    assert reaped(small_blocks[0]) and _no_reader_threads()


def test_without_fork_the_dump_is_read_and_recognised_here(
    dump: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, here_stats = _here(dump)
    monkeypatch.setattr(recognition, "_CAN_FORK", False)
    with DumpRecognition(dump) as early:
        assert early._pid is None and early._reader is None
        stats = ReadStats()
        assert list(early.blocks(stats)) == here
    assert dataclasses.asdict(stats) == dataclasses.asdict(here_stats)


def test_one_core_is_no_place_for_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert not recognition._can_fork()


@needs_fork
def test_stopping_early_leaves_no_worker_or_thread_behind(
    dump: Path, small_blocks: list[int]
) -> None:
    stats = ReadStats()
    with DumpRecognition(dump) as early:
        blocks = early.blocks(stats)
        first = next(blocks)
        assert len(first[0]) == 20
    assert reaped(small_blocks[0]) and _no_reader_threads()
    # Never consumed at all: the worker fills the queue and waits; closing still reaps it.
    with DumpRecognition(dump):
        pass
    assert len(small_blocks) == 2 and reaped(small_blocks[1]) and _no_reader_threads()


def _noise(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("name,notes\n")
        for k in range(count):
            handle.write(
                f"person {k},ticket {k} order ORD-2026-{100_000 + k} total 12.{k % 100:02d}\n"
            )
    return path


def _peak_while_consuming(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        records = 0
        with DumpRecognition(path) as early:
            for n, (block, _) in enumerate(early.blocks(ReadStats())):
                if n == 0:
                    # A consumer busy elsewhere (as the command is, importing): the worker
                    # runs ahead until the queue is full, whatever the dump's length. Every
                    # dump is then held at its fullest here, so the peaks compare alike.
                    deadline = time.monotonic() + 60
                    while not early._frames.full() and time.monotonic() < deadline:
                        time.sleep(0.01)
                    assert early._frames.full()
                    time.sleep(0.2)  # were the queue unbounded, the worker would run on
                records += len(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, records


@needs_fork
@pytest.mark.slow
def test_memory_here_is_bounded_by_the_queued_blocks_not_the_dump(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recognition, "FIRST_BLOCK", 50)
    monkeypatch.setattr(recognition, "BLOCK", 100)
    _peak_while_consuming(_noise(tmp_path / "warm.csv", 200))  # first compiles, caches
    short, n_short = _peak_while_consuming(_noise(tmp_path / "short.csv", 800))
    long, n_long = _peak_while_consuming(_noise(tmp_path / "long.csv", 3_200))
    assert (n_short, n_long) == (800, 3_200)
    # Four times the records, not four times the memory: what is held here is the
    # queue's few blocks, whatever the dump's length.
    assert long < short * 1.25


def _document(world: World, dump: Path, options: LeakOptions, *, early: bool = True) -> str:
    """The report, the dump recognised by an early worker (as the command does) or not."""
    with Workspace.open(world.home) as ws:
        vault = Vault(provider(ws))
        if not early:
            trace = trace_leak(ws, vault, dump, options)
        else:
            with DumpRecognition(dump, options.max_records) as started:
                trace = trace_leak(ws, vault, dump, options, early=started)
    return json.dumps(leak_document(trace), sort_keys=True, default=str)


@needs_fork
def test_a_trace_gives_the_same_report_with_the_worker_failing_or_not_forked(
    world: World,
    dump: Path,
    small_blocks: list[int],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    options = LeakOptions(max_records=250)
    with_worker = _document(world, dump, options)
    assert len(small_blocks) == 1 and reaped(small_blocks[0])
    assert json.loads(with_worker)["matching"]["matched"] > 50
    assert _document(world, dump, options, early=False) == with_worker  # as before it
    assert len(small_blocks) == 1  # no early worker in process unless started
    monkeypatch.setattr(recognition, "_CAN_FORK", False)
    assert _document(world, dump, options) == with_worker
    monkeypatch.setattr(recognition, "_CAN_FORK", True)
    parent = os.getpid()

    def _broken(sightings: object) -> bytes:
        if os.getpid() != parent:
            raise RuntimeError("the worker fails")
        raise AssertionError("pack runs only in a worker")

    monkeypatch.setattr(recognition, "pack", _broken)
    capfd.readouterr()
    assert _document(world, dump, options) == with_worker
    assert capfd.readouterr() == ("", "")
    assert len(small_blocks) == 2 and reaped(small_blocks[1])


def test_a_recognition_started_for_another_dump_is_refused(world: World, dump: Path) -> None:
    with (
        DumpRecognition(dump, 10) as early,
        Workspace.open(world.home) as ws,
        pytest.raises(ValueError, match="another file"),
    ):
        trace_leak(ws, Vault(provider(ws)), dump, LeakOptions(max_records=20), early=early)


@needs_fork
def test_an_interrupted_trace_leaves_no_worker_behind(
    world: World,
    dump: Path,
    small_blocks: list[int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    matched = 0

    def _interrupt(self: Any, blocks: Iterator[Any]) -> Iterator[Any]:
        nonlocal matched
        for block, _ in blocks:
            matched += len(block)
            raise KeyboardInterrupt  # Ctrl-C while the first block is matched
        yield from ()

    monkeypatch.setattr("bpoguard.trace.matcher.Matcher.match_blocks", _interrupt)
    code = main(["trace", "leak", str(dump), "--home", str(world.home), "--json"])
    captured = capsys.readouterr()
    assert code == 130 and captured.out == ""  # typer turns Ctrl-C into exit status 130
    assert matched == 20
    assert len(small_blocks) == 1 and reaped(small_blocks[0]) and _no_reader_threads()


def test_a_dump_failing_midway_gives_the_same_one_line_with_the_worker_or_without(
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A JSON record too large to read, after good ones: found only while reading.
    monkeypatch.setattr(dump_module, "MAX_JSON_RECORD", 10_000)
    path = tmp_path / "huge-record.json"
    path.write_text('[{"card": "4111 1111 1111 1111"}, {"notes": "' + "x" * 200_000 + '"}]')
    said = []
    for can_fork in (True, False):
        monkeypatch.setattr(recognition, "_CAN_FORK", can_fork and recognition._CAN_FORK)
        code = main(["trace", "leak", str(path), "--home", str(world.home), "--json"])
        captured = capsys.readouterr()
        assert code == 1 and captured.out == ""
        assert captured.err.count("\n") == 1 and "too large" in captured.err
        said.append(captured.err)
    assert said[0] == said[1]
    assert _no_reader_threads()


@needs_fork
@pytest.mark.slow
def test_the_command_forks_its_worker_before_the_database_and_analytics_are_imported(
    world: World, dump: Path
) -> None:
    # Run as a user runs it, in a fresh process: what was imported when the worker started.
    probe = (
        "import sys\n"
        "from bpoguard.trace import recognition\n"
        "start = recognition.DumpRecognition._start\n"
        "def _start(self):\n"
        "    heavy = ('sqlalchemy', 'numpy', 'duckdb', 'pyarrow', 'bpoguard.guard.vault')\n"
        "    print('HELD', sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
        "    start(self)\n"
        "recognition.DumpRecognition._start = _start\n"
        "from bpoguard.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "trace", "leak", str(dump), "--home", str(world.home),
         "--json"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HELD []" in done.stderr
    assert json.loads(done.stdout)["matching"]["records"] == 300
