"""Ledger benchmarks: append throughput, full verify, proof latency, bytes per entry.

    .venv/bin/python benchmarks/bench_ledger.py [--quick] [--workdir DIR]
    .venv/bin/python benchmarks/bench_ledger.py --append-cost [--db URL]

``--append-cost`` times only what the guard pays a view: one entry appended
with ``append_within`` inside the caller's transaction (median and p99 of the
call alone, and of begin + append + commit), and on SQLite counts the
statements the driver runs for it.

Figures are medians of several runs on SQLite files (synchronous=FULL for
appends). The 10,000,000-entry proof benchmark builds the node table directly
in bulk (the same post-order nodes an append writes, computed by
``_merkle.extend`` in batches of 100,000 with no entry rows), because
appending 10 million entries through the API would only measure appends again.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bpoguard.ledger import Ledger, Signer, _merkle
from bpoguard.ledger.verifier import leaf_hash
from bpoguard.store import Store

ORIGIN = "bench.example/ledger"


def entry(i: int) -> dict[str, object]:
    """A guard decision as the guard will write it: names, ids, decision, reasons."""
    return {
        "t": "2026-11-23T10:15:02Z",
        "staff": "MUM1-A0042",
        "verb": "reveal",
        "customer": 100_000 + i,
        "fields": ["card_number"],
        "allowed": False,
        "reasons": ["outside_interaction"],
        "interaction": 7_000_000 + i,
    }


def fresh(work: Path, name: str, power_safe: bool = True) -> tuple[Store, Ledger]:
    path = work / f"{name}.db"
    for leftover in work.glob(f"{name}.db*"):
        leftover.unlink()
    store = Store(f"sqlite:///{path}")
    store.migrate()
    signer = Signer(Ed25519PrivateKey.generate(), ORIGIN)
    return store, Ledger(store, signer, power_safe=power_safe)


def median_of(runs: int, once: Callable[[], float]) -> float:
    return statistics.median(once() for _ in range(runs))


def append_rate(work: Path, writers: int, batch: int, total: int, power_safe: bool = True) -> float:
    """Entries per second, `writers` threads sharing one ledger, `batch` entries per commit."""
    store, ledger = fresh(work, f"append-{writers}-{batch}", power_safe)
    per_writer = total // writers

    def write(w: int) -> None:
        for start in range(0, per_writer, batch):
            n = min(batch, per_writer - start)
            ledger.append_many([entry(w * per_writer + start + k) for k in range(n)])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    assert ledger.size() == per_writer * writers
    store.dispose()
    return per_writer * writers / elapsed


def build_log(work: Path, n: int) -> tuple[Store, Ledger, Path]:
    store, ledger = fresh(work, f"log-{n}")
    for start in range(0, n, 50_000):
        ledger.append_many([entry(i) for i in range(start, min(n, start + 50_000))])
    ledger.checkpoint()
    return store, ledger, work / f"log-{n}.db"


def verify_seconds(ledger: Ledger) -> float:
    began = time.perf_counter()
    report = ledger.verify()
    elapsed = time.perf_counter() - began
    assert report.ok, report.problem
    return elapsed


def bulk_nodes(work: Path, n: int) -> tuple[Store, Ledger]:
    """A ledger whose node table and head describe n leaves, built without entry rows."""
    store, ledger = fresh(work, f"nodes-{n}")
    raw = store.engine.raw_connection()
    cur = raw.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    frontier: list[tuple[int, bytes]] = []
    for start in range(0, n, 100_000):
        leaves = [leaf_hash(i.to_bytes(8, "big")) for i in range(start, min(n, start + 100_000))]
        nodes, frontier = _merkle.extend(start, frontier, leaves)
        cur.executemany("INSERT INTO ledger_nodes VALUES (?, ?)", nodes)
        raw.commit()
    cur.execute("UPDATE ledger_head SET size = ?", (n,))
    raw.commit()
    raw.close()
    return store, ledger


def proof_latency_us(ledger: Ledger, n: int, samples: int) -> tuple[float, float]:
    """Median microseconds for an inclusion proof, and for a consistency proof, at size n."""
    rng = random.Random(1)
    inclusion, consistency = [], []
    for _ in range(samples):
        i = rng.randrange(n)
        began = time.perf_counter()
        ledger.inclusion_proof(i, n)
        inclusion.append(time.perf_counter() - began)
        m = rng.randrange(1, n)
        began = time.perf_counter()
        ledger.consistency_proof(m, n)
        consistency.append(time.perf_counter() - began)
    return statistics.median(inclusion) * 1e6, statistics.median(consistency) * 1e6


def guard_entry(i: int) -> dict[str, object]:
    """An entry shaped as bpoguard.audit writes a view decision."""
    return {
        "v": 1,
        "kind": "access",
        "t": "2026-11-23T10:15:02Z",
        "staff": "MUM1-A0042",
        "verb": "view",
        "customer": 100_000 + i,
        "fields": ["name", "phone", "card_number", "address", "date_of_birth"],
        "interaction": 7_000_000 + i,
        "device": "MUM1-D0042",
        "ip": "10.20.1.42",
        "site": "MUM-1",
        "decision": "allow",
        "reasons": ["inside_interaction"],
    }


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def append_cost(work: Path, url: str | None, n: int) -> None:
    """One-entry appends inside the caller's transaction, as the guard's audit sink makes."""
    if url is None:
        store, ledger = fresh(work, "append-cost")
    else:
        store = Store(url)
        store.migrate()
        ledger = Ledger(store, Signer(Ed25519PrivateKey.generate(), ORIGIN))
    ledger.append_many([guard_entry(i) for i in range(1000)])
    if store.is_sqlite:
        seen: list[str] = []
        with store.engine.begin() as conn:
            raw = conn.connection.dbapi_connection
            raw.set_trace_callback(seen.append)  # type: ignore[union-attr]
            for i in range(100):
                ledger.append_within(conn, [guard_entry(i)])
            raw.set_trace_callback(None)  # type: ignore[union-attr]
        run = [s for s in seen if not s.startswith("BEGIN")]
        print(f"  statements a one-entry append (SQLite, by the driver): {len(run) / 100:.2f}")
    inner, whole = [], []
    for i in range(n):
        began = time.perf_counter()
        with store.engine.begin() as conn:
            start = time.perf_counter()
            ledger.append_within(conn, [guard_entry(i)])
            inner.append(time.perf_counter() - start)
        whole.append(time.perf_counter() - began)
    for name, samples in (("append_within alone", inner), ("begin + append + commit", whole)):
        med, p99 = statistics.median(samples) * 1e6, percentile(samples, 0.99) * 1e6
        print(f"  {name:24s} median {med:7.0f} us   p99 {p99:7.0f} us   ({n:,} appends)")
    store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--append-cost", action="store_true", help="only one-entry appends")
    parser.add_argument("--db", default=None, help="with --append-cost: a PostgreSQL URL")
    parser.add_argument("--appends", type=int, default=5_000, help="with --append-cost")
    args = parser.parse_args()
    quick = args.quick
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    work.mkdir(parents=True, exist_ok=True)
    runs = 3
    print(
        f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; work dir {work}"
    )
    if args.append_cost:
        print(f"one-entry append_within, {'PostgreSQL' if args.db else 'SQLite'}:")
        append_cost(work, args.db, args.appends)
        return

    for writers in (1, 4):
        for batch, total, safe in (
            (1000, 40_000 if quick else 200_000, True),
            (1, 1_000 if quick else 5_000, True),
            (1, 2_000 if quick else 10_000, False),
        ):
            rate = median_of(
                runs, lambda w=writers, b=batch, t=total, p=safe: append_rate(work, w, b, t, p)
            )
            sync = "FULL  " if safe else "NORMAL"
            print(
                f"append {batch:>5}/commit, {writers} writer(s), sync {sync}: {rate:>8,.0f} entries/s"
            )

    n = 100_000 if quick else 1_000_000
    store, ledger, path = build_log(work, n)
    seconds = median_of(runs, lambda: verify_seconds(ledger))
    size = sum(p.stat().st_size for p in work.glob(path.name + "*"))
    print(f"full verify of {n:,} entries: {seconds:.2f} s ({n / seconds:,.0f} entries/s)")
    print(f"storage: {size / n:.0f} bytes per entry (SQLite file, entries of 180 bytes JSON)")
    store.dispose()

    n = 1_000_000 if quick else 10_000_000
    began = time.perf_counter()
    store, ledger = bulk_nodes(work, n)
    print(f"built the node table for {n:,} leaves in {time.perf_counter() - began:.0f} s")
    inc, con = proof_latency_us(ledger, n, 2_000)
    print(f"inclusion proof at {n:,} entries: {inc:.0f} us median")
    print(f"consistency proof at {n:,} entries: {con:.0f} us median")
    store.dispose()


if __name__ == "__main__":
    main()
