"""Benchmark `bpoguard trace leak` on a very large dump: wall time and peak memory.

Writes a dump of about 2 GB to a temporary folder (``--size-gb``): a CSV export
of a ticketing system, mostly noise (a row: a name, a ticket id, a town, 200
characters of notes with an order number, a price and a date drawn afresh,
and a 5 KB base64 attachment, longer than any cell the tracer reads), with
the records of a real leak (`make-dump`, from the world's culprits) spread
through it; runs the real command in a child process (``bpoguard trace leak
FILE --json``) and reports its wall time, CPU time, the child's peak RSS and
what it found; then deletes the dump.

    python benchmarks/bench_trace_big.py --home /tmp/ws                 # 2 GB against a world
    python benchmarks/bench_trace_big.py --home /tmp/ws --size-gb 0.05  # a quick look
    python benchmarks/bench_trace_big.py --home /tmp/ws --blob 0 --notes-chars 1900  # all text

The world is any simulated workspace with the guard on (bench_trace_e2e.py
builds one). Memory must stay bounded by the block and the caches, whatever
the file's size: the figure to compare is peak RSS against the file's size.
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bpoguard.trace.dumps import DumpSpec, make_dump
from bpoguard.workspace import Workspace

_WORDS = (
    "customer", "called", "about", "delivery", "refund", "order", "late", "parcel", "courier",
    "address", "changed", "please", "escalate", "supervisor", "agreed", "voucher", "issued",
    "callback", "tomorrow", "morning", "complaint", "resolved", "satisfied", "survey", "sent",
    "no", "answer", "voicemail", "left", "email", "follow", "up", "account", "locked",
    "password", "reset", "verified", "identity", "security", "questions", "passed",
)  # fmt: skip
_TOWNS = ("Leeds", "Pune", "Ohio City", "Bristol", "Nagpur", "Dayton", "Cardiff", "Surat")
_NAMES = ("amy", "raj", "tom", "li", "sara", "dev", "ian", "meera", "joe", "kate", "anil")


def _prose(rng: random.Random, count: int, chars: int) -> list[str]:
    """Ticket notes in words: what most of a scraped or exported dump is."""
    notes = []
    for _ in range(count):
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < chars:
            words.append(rng.choice(_WORDS))
        notes.append(" ".join(words))
    return notes


def _noise_row(rng: random.Random, notes: str, width: int, blob: int) -> str:
    """One ticket: a name, the leak's columns empty, notes with numbers no customer has.

    The order number, price and date are drawn afresh for every row, so no cache
    of the tracer's sees the same value twice by the generator's doing; the
    attachment (base64, ``blob`` bytes) is longer than a cell the tracer reads.
    """
    order = f"ORD-{rng.randint(2020, 2026)}-{rng.randint(100_000, 999_999)}"
    price = f"£{rng.randint(1, 999)}.{rng.randint(0, 99):02d}"
    date = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2026"
    name = f"{rng.choice(_NAMES)} {rng.choice(_NAMES)}son"
    cells = [name] + [""] * (width - 1)
    cells += [f"TCK{rng.randint(10**6, 10**7)}", rng.choice(_TOWNS),
              f"{notes} order {order} total {price} on {date}",
              base64.b64encode(os.urandom(blob * 3 // 4)).decode() if blob else ""]  # fmt: skip
    return ";".join(cells) + "\n"


def _write_dump(
    path: Path, leak: Path, size: int, seed: int, notes_chars: int, blob: int
) -> tuple[int, int]:
    """Noise rows up to ``size`` bytes, the leak's rows spread evenly; returns (rows, leaked)."""
    rng = random.Random(seed)
    with leak.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        header = next(reader)  # make-dump's columns, then the ticket system's own
        leaked = [row for row in reader if any(row)]
    notes = _prose(rng, 1_000, chars=notes_chars)
    every = max(1, (size // (notes_chars + blob + 100)) // max(1, len(leaked)))
    written = rows = taken = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(";".join([*header, "Ticket", "Town", "Notes", "Attachment"]) + "\n")
        while written < size:
            if rows % every == every // 2 and taken < len(leaked):
                line = ";".join([*leaked[taken], f"TCK{rows}", "", "called back", ""]) + "\n"
                taken += 1
            else:
                line = _noise_row(rng, notes[rows % len(notes)], len(header), blob)
            out.write(line)
            written += len(line)
            rows += 1
    return rows, taken


def main() -> None:
    """Write the big dump, trace it in a child process, print the figures, delete it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a simulated workspace (guard on)")
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--records", type=int, default=500, help="leaked records spread through it")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--notes-chars", type=int, default=200, help="words of notes a row")
    parser.add_argument("--blob", type=int, default=5_000, help="attachment bytes a row")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-trace-big-", dir=args.folder))
    try:
        leak = folder / "leak.csv"
        with Workspace.open(args.home) as ws:
            made = make_dump(ws, DumpSpec("one", args.records, "csv", args.seed), leak)
        dump = folder / "big.csv"
        start = time.perf_counter()
        rows, taken = _write_dump(
            dump, leak, int(args.size_gb * 1e9), args.seed, args.notes_chars, args.blob
        )
        size = dump.stat().st_size
        print(f"wrote {size / 1e9:.2f} GB, {rows:,} rows ({taken:,} leaked records from "
              f"{made.culprits}) in {time.perf_counter() - start:.0f} s")  # fmt: skip
        bpoguard = Path(sys.executable).with_name("bpoguard")
        command = [str(bpoguard), "trace", "leak", str(dump), "--home", str(args.home), "--json"]
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            print(f"trace leak failed ({done.returncode}): {done.stderr.strip()[-500:]}")
            raise SystemExit(1)
        report = json.loads(done.stdout)
        cpu = (usage.ru_utime - before.ru_utime) + (usage.ru_stime - before.ru_stime)
        matching = report["matching"]
        top = [r["person"] for r in report["ranking"][:3]]
        print(f"trace leak: {wall:.0f} s wall, {cpu:.0f} s CPU, {size / 1e6 / wall:.1f} MB/s, "
              f"{matching['records']:,} records; peak RSS {usage.ru_maxrss / 1024:.0f} MiB "
              f"for a {size / 2**20:,.0f} MiB file")  # fmt: skip
        print(f"matched {matching['customers']:,} customers; top {top} (culprits {made.culprits});"
              f" notes: {report['dump']['warnings']}")  # fmt: skip
        print(f"load average after: {os.getloadavg()[0]:.2f} (2 shared cores: pessimistic)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
