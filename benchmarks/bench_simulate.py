"""Benchmark `bpoguard simulate`: wall time and peak memory, and how they grow with days.

Each run is a fresh process on a fresh workspace (so peak RSS is the run's own);
figures are medians over --repeat runs. Usage:

    .venv/bin/python benchmarks/bench_simulate.py [--agents 1000] [--customers 100000]
        [--days 7 28] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "bpoguard"


def one_run(agents: int, customers: int, days: int, seed: int, guard: bool) -> dict[str, float]:
    """Time one simulate in a child process; return seconds, peak RSS and counts."""
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        home = Path(tmp) / "ws"
        subprocess.run([BIN, "init", "--home", home], check=True, capture_output=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        done = subprocess.run(
            [
                BIN,
                "simulate",
                "--home",
                home,
                "--agents",
                str(agents),
                "--customers",
                str(customers),
                "--days",
                str(days),
                "--seed",
                str(seed),
                "--json",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        summary = json.loads(done.stdout)
        lake_bytes = sum(p.stat().st_size for p in (home / "lake").rglob("*.parquet"))
        db_bytes = (home / "bpoguard.db").stat().st_size
    # ru_maxrss of children is the largest child so far; runs go smallest first.
    return {
        "seconds": seconds,
        "peak_rss_mib": max(peak_kib, before) / 1024,
        "events": summary["events"],
        "interactions": summary["interactions"],
        "lake_mib": lake_bytes / 2**20,
        "db_mib": db_bytes / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, nargs="+", default=[7, 28])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--guard", action="store_true", help="the guard decides every request")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for days in sorted(args.days):
        runs = [
            one_run(args.agents, args.customers, days, 1, args.guard) for _ in range(args.repeat)
        ]
        row = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        row.update(
            days=days,
            agents=args.agents,
            customers=args.customers,
            runs=len(runs),
            seconds_min=min(r["seconds"] for r in runs),
            seconds_max=max(r["seconds"] for r in runs),
        )
        results.append(row)
        if not args.json:
            print(
                f"{args.agents} agents x {args.customers:,} customers x {days} days"
                f"{' (guard deciding)' if args.guard else ''}: "
                f"median {row['seconds']:.1f} s (min {row['seconds_min']:.1f}, max "
                f"{row['seconds_max']:.1f}), peak RSS {row['peak_rss_mib']:.0f} MiB, "
                f"{row['events']:,.0f} events, {row['interactions']:,.0f} interactions, "
                f"lake {row['lake_mib']:.0f} MiB, db {row['db_mib']:.0f} MiB",
                flush=True,
            )
    if args.json:
        print(json.dumps({"cpu_count": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
