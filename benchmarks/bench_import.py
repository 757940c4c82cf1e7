"""Import benchmark: CERT-format data generated, then imported into a fresh workspace's lake.

    .venv/bin/python benchmarks/bench_import.py [--events N] [--users N] [--format r4.2|r6.2]
                                                [--data DIR] [--keep DIR]

Generates about N events (default 3,000,000) of CERT r4.2 data with
``bpoguard.events.certgen`` in a child process (its memory is not counted),
then times ``import_cert`` in this process: every file hashed, cut into
32 MB byte ranges that worker processes parse, map to the event schema and
write to the Parquet lake, and the import recorded. Prints events a second,
MB a second of CSV, the CPU time of the whole process tree (the importing
process and its workers, sampled from /proc every 0.2 s, the sampling itself left out), the peak resident
memory of the importing process and of the whole tree (the sum of the
processes' proportional set sizes, sampled), the time
per range (median, p99), the lake's size, and the time of a second import of
the same folder (which adds nothing: the files are known by their SHA-256).
``--workers 1`` runs every range in the importing process.

The figures depend on what else the machine is doing: the load average
before and after is printed with them. ``--same-as LAKE`` then checks that
the lake holds exactly the rows of another lake (another code's import of
the same data): same event ids, every column equal.
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
import threading
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


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _tree() -> dict[int, tuple[float, int]]:
    """CPU seconds and proportional set size of each descendant of this process, from /proc."""
    parents: dict[int, int] = {}
    stats: dict[int, tuple[float, int]] = {}
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        # Descendants started after this process have higher ids (barring wrap-around).
        if not entry.name.isdigit() or int(entry.name) <= me:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        stats[pid] = ((int(fields[11]) + int(fields[12])) / _TICK, 0)
    found: dict[int, tuple[float, int]] = {}
    for pid in stats:
        up = parents.get(pid)
        while up is not None and up not in (me, 0, 1):
            up = parents.get(up)
        if up == me and pid != me:
            found[pid] = (stats[pid][0], _pss(pid))
    return found


def _pss(pid: int) -> int:
    """Proportional set size in bytes: pages shared by forked workers counted once in all."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class TreeSampler:
    """Samples the CPU and memory of this process's descendants (the import's workers)."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.cpu: dict[int, float] = {}
        self.peak_rss = 0
        self.own_cpu = 0.0  # the sampler's own CPU time, not the import's
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            tree = _tree()
            for pid, (cpu, _) in tree.items():
                self.cpu[pid] = max(cpu, self.cpu.get(pid, 0.0))
            own = _pss(os.getpid())
            self.peak_rss = max(self.peak_rss, own + sum(pss for _, pss in tree.values()))
            self.own_cpu = time.thread_time()


def _same(ours: Path, theirs: Path) -> str:
    """'same' when both lakes hold the same rows (by event id, every column), else what differs."""
    a = lake.dataset(ours).to_table().sort_by("event_id")
    b = lake.dataset(theirs).to_table().sort_by("event_id")
    if a.num_rows != b.num_rows:
        return f"different: {a.num_rows:,} rows against {b.num_rows:,}"
    differ = [n for n in a.column_names if not a.column(n).equals(b.column(n))]
    return "same rows, every column equal" if not differ else f"different: {', '.join(differ)}"


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
    parser.add_argument("--workers", type=int, help="worker processes (default: the cores, <= 4)")
    parser.add_argument("--same-as", type=Path, help="a lake that must hold exactly the same rows")
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
    seen: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        # Time between two progress reports of one file: one range parsed, mapped and written.
        now = time.perf_counter()
        if stage.startswith("hash ") or seen.get(stage) == done:
            return
        if stage in last and done < total:
            ticks.append(now - last[stage])
        last[stage], seen[stage] = now, done

    load_before = os.getloadavg()[0]
    with Workspace.open(home) as ws:
        cpu_before = _cpu()
        started = time.perf_counter()
        with TreeSampler() as tree:
            report = import_cert(
                ws, data, progress=progress, keep_raw=not args.no_raw, workers=args.workers
            )
        elapsed = time.perf_counter() - started
        own_cpu = _cpu() - cpu_before - tree.own_cpu
        workers_cpu = sum(tree.cpu.values())
        cpu = own_cpu + workers_cpu
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
        f"  CPU time {cpu:.1f} s ({own_cpu:.1f} importing process, {workers_cpu:.1f} its "
        f"{len(tree.cpu)} child processes): {events / cpu:,.0f} events per CPU-second, "
        f"{cpu / elapsed:.2f} cores busy on average"
    )
    print(
        f"  peak RSS: importing process {peak:,.0f} MB, "
        f"whole process tree {tree.peak_rss / 2**20:,.0f} MB (sum of PSS, sampled)"
    )
    if blocks:
        p99 = blocks[min(len(blocks) - 1, int(len(blocks) * 0.99))]
        print(
            f"  between progress reports: median {statistics.median(blocks) * 1000:,.0f} ms, "
            f"p99 {p99 * 1000:,.0f} ms ({len(blocks)} reports)"
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
    if args.same_as is not None:
        print(f"against {args.same_as}: {_same(home / 'lake', args.same_as)}")
    if args.keep is None:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
