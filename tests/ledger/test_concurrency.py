"""Several writers never share an index or leave a gap; kill -9 never loses an acknowledged entry."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bpoguard.ledger import Ledger, canonical_json

WRITER = Path(__file__).with_name("_writer.py")
ROOT = Path(__file__).parents[2]


def spawn(url: str, tag: str, count: int, batch: int, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, str(WRITER), url, tag, str(count), str(batch), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def acknowledged(output: str, tag: str) -> dict[int, dict[str, object]]:
    """index -> entry, for every complete line a writer printed after its commit."""
    acks = {}
    for line in output.splitlines(keepends=True):
        if line == "ready\n" or not line.endswith("\n"):
            continue  # a line cut by kill -9 was never fully acknowledged
        index, seq = line.split()
        acks[int(index)] = {"writer": tag, "seq": int(seq)}
    return acks


def check_log(ledger: Ledger, expected: dict[int, dict[str, object]], total: int) -> None:
    assert ledger.size() == total
    report = ledger.verify()
    assert report.ok, report.problem
    for index, entry in expected.items():
        assert ledger.entry_bytes(index) == canonical_json(entry)


def test_threads_never_share_an_index_or_leave_a_gap(
    db_url: str, open_ledger: Callable[..., Ledger]
) -> None:
    ledger = open_ledger(db_url, checkpoint_every=40)
    results: dict[int, dict[str, object]] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(tag: str) -> None:
        try:
            for n in range(12):
                batch = [{"writer": tag, "seq": n * 3 + k} for k in range(1 + n % 3)]
                indexes = ledger.append_many(batch)
                with lock:
                    for index, entry in zip(indexes, batch, strict=True):
                        assert index not in results
                        results[index] = entry
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    total = 6 * sum(1 + n % 3 for n in range(12))
    assert sorted(results) == list(range(total))
    check_log(ledger, results, total)


def test_processes_never_share_an_index_or_leave_a_gap(
    db_url: str, open_ledger: Callable[..., Ledger]
) -> None:
    ledger = open_ledger(db_url)
    writers = {f"p{i}": spawn(db_url, f"p{i}", 60, 1 + 4 * i) for i in range(4)}
    results: dict[int, dict[str, object]] = {}
    for tag, proc in writers.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        acks = acknowledged(out, tag)
        assert len(acks) == 60
        assert not results.keys() & acks.keys()
        results.update(acks)
    assert sorted(results) == list(range(240))
    check_log(ledger, results, 240)


@pytest.mark.slow
def test_kill_9_mid_batch_never_loses_an_acknowledged_entry(
    sqlite_url: str, open_ledger: Callable[..., Ledger], key_file: Path
) -> None:
    ledger = open_ledger(sqlite_url)
    rng = random.Random(9162)
    acks: dict[int, dict[str, object]] = {}
    kills = 0
    deadline = time.monotonic() + 14
    # At least 10 kills however loaded the machine is (no timed assertion); up to 20
    # while the time allows.
    while kills < 10 or (kills < 20 and time.monotonic() < deadline):
        tag = f"run{kills}"
        proc = spawn(sqlite_url, tag, 10**6, rng.choice([1, 7, 100, 500]), str(key_file), "97")
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.01, 0.25))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        acks.update(acknowledged(out, tag))
        kills += 1
    assert acks, "no writer got as far as one commit"
    size = ledger.size()
    assert max(acks) < size
    check_log(ledger, acks, size)
    # The log takes appends again after all those crashes.
    assert ledger.append({"after": "crashes"}) == size
    assert ledger.checkpoint().size == size + 1
