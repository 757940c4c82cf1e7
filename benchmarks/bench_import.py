"""Import benchmark: CERT-format data generated, then imported into a fresh workspace's lake.

    .venv/bin/python benchmarks/bench_import.py [--events N] [--users N] [--format r4.2|r6.2]
                                                [--data DIR] [--keep DIR]

Generates about N events (default 3,000,000) of CERT r4.2 data with
``bpoguard.events.certgen`` in a child process (its memory is not counted),
then times ``import_cert`` in this process: every file hashed, parsed in
8 MB blocks, mapped to the event schema and written to the Parquet lake,
and the import recorded. Prints events a second, MB a second of CSV, peak
resident memory of the importing process, the time per 8 MB block (median,
p99), the lake's size, and the time of a second import of the same folder
(which adds nothing: the files are known by their SHA-256).

The figures depend on what else the machine is doing: the load average
before and after is printed with them.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bpoguard import workspace
from bpoguard.events import lake
from bpoguard.events.importers import import_cert
from bpoguard.workspace import Workspace

EVENTS_PER_USER_DAY = (
    45  # what certgen's staff produce a calendar day, weekends and leavers included
)


def _generate(out: Path, events: int, users: int, fmt: str) -> float:
    days = max(30, round(events / (users * EVENTS_PER_USER_DAY)))
    code = (
        "from pathlib import Path; from bpoguard.events.certgen import CertConfig, generate; "
        f"s = generate(Path({str(out)!r}), CertConfig(users={users}, days={days}, seed=1, "
        f"insiders={max(3, users // 100)}, fmt={fmt!r})); print(s.total_events)"
    )
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    print(
        f"generated {int(result.stdout):,} events ({users} users, {days} days) in {elapsed:.1f} s"
    )
    print(f"  generator: {int(result.stdout) / elapsed:,.0f} events/s")
    return elapsed


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _size(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--format", default="r4.2", choices=["r4.2", "r6.2"])
    parser.add_argument("--data", type=Path, help="import this CERT folder instead of generating")
    parser.add_argument("--keep", type=Path, help="put the data and workspace here and keep them")
    parser.add_argument("--no-raw", action="store_true", help="import without the raw source lines")
    args = parser.parse_args()

    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-import-"))
    base.mkdir(parents=True, exist_ok=True)
    data = args.data or base / "cert"
    if args.data is None:
        _generate(data, args.events, args.users, args.format)
    home = base / "ws"
    workspace.init(home, force=home.exists())

    ticks: list[float] = []
    last: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        # Time between two reads of one file: one 8 MB block parsed, mapped and written.
        now = time.perf_counter()
        if not stage.startswith("hash ") and stage in last and done < total:
            ticks.append(now - last[stage])
        last[stage] = now

    load_before = os.getloadavg()[0]
    with Workspace.open(home) as ws:
        cpu_before = _cpu()
        started = time.perf_counter()
        report = import_cert(ws, data, progress=progress, keep_raw=not args.no_raw)
        elapsed = time.perf_counter() - started
        cpu = _cpu() - cpu_before
        again_started = time.perf_counter()
        again = import_cert(ws, data)
        again_elapsed = time.perf_counter() - again_started
        events = lake.count(ws.settings.lake_dir)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_after = os.getloadavg()[0]
    csv_bytes = _size(data, "*.csv") - _size(data / "answers", "*.csv")
    lake_bytes = _size(home / "lake", "*.parquet")
    blocks = sorted(t for t in ticks if t > 0)

    print(f"imported {report.rows:,} rows ({events:,} events in the lake) in {elapsed:.1f} s")
    print(
        f"  rate: {events / elapsed:,.0f} events/s, {csv_bytes / elapsed / 2**20:,.1f} MB/s of CSV"
    )
    print(
        f"  CPU time {cpu:.1f} s (both threads): {events / cpu:,.0f} events per CPU-second, "
        "what an otherwise idle core gives"
    )
    print(f"  peak RSS of the importing process: {peak:,.0f} MB")
    if blocks:
        p99 = blocks[min(len(blocks) - 1, int(len(blocks) * 0.99))]
        print(
            f"  per 8 MB block: median {statistics.median(blocks) * 1000:,.0f} ms, "
            f"p99 {p99 * 1000:,.0f} ms ({len(blocks)} blocks)"
        )
    print(
        f"  CSV {csv_bytes / 2**20:,.0f} MB -> lake {lake_bytes / 2**20:,.0f} MB "
        f"({lake_bytes / csv_bytes:.2f} of the CSV)"
    )
    for f in report.files:
        if f.rows > 100_000:
            print(f"  {f.name}: {f.rows:,} rows")
    print(
        f"second import: {again.rows} rows added, {again_elapsed:.1f} s "
        f"({csv_bytes / again_elapsed / 2**20:,.0f} MB/s hashed)"
    )
    print(
        f"load average: {load_before:.1f} before, {load_after:.1f} after ({os.cpu_count()} cores)"
    )
    if args.keep is None:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
