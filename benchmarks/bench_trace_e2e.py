"""Benchmark `trace leak` end to end: a simulated workspace, a leaked dump, the whole trace.

Builds (once, then reuses) a real simulated workspace with the guard on, so
the customers are in the vault and every access is in the ledger and the
lake; writes a leaked dump from its ground truth with the same code as
`bpoguard trace make-dump`; then times :func:`bpoguard.trace.leak.trace_leak`
(reading, matching through the blind indexes, access analysis, scoring,
ledger proofs) over several runs in one process.

    python benchmarks/bench_trace_e2e.py                          # 200 agents, 20,000 customers, 3 days, 10,000 records
    python benchmarks/bench_trace_e2e.py --home /tmp/ws --runs 9  # reuse a world
    python benchmarks/bench_trace_e2e.py --agents 48 --customers 3000 --records 3000   # quicker

Prints the median, p99 and maximum wall time, CPU time, records a second,
look-ups and statements, peak RSS, and the load average beside the figure
(the machine is shared: figures are pessimistic, ratios say more).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

from bpoguard import workspace
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.trace.dumps import DumpSpec, make_dump
from bpoguard.trace.leak import trace_leak
from bpoguard.workspace import Workspace


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _world(home: Path, args: argparse.Namespace) -> None:
    if (home / "sim" / "truth.json").exists():
        print(f"reusing the world in {home}")
        return
    print(f"simulating {args.agents} agents, {args.customers:,} customers, {args.days} days ...")
    start = time.perf_counter()
    workspace.init(home)
    config = SimConfig(agents=args.agents, customers=args.customers, days=args.days,
                       seed=args.seed, guard=True)  # fmt: skip
    with Workspace.open(home) as ws:
        simulate(ws, config)
    print(f"  simulated in {time.perf_counter() - start:.0f} s")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="workspace to build or reuse")
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--kind", default="mixed", help="one, pair or mixed (make-dump --kind)")
    parser.add_argument("--format", default="csv")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="bench-trace-")) / "ws"
    _world(home, args)
    dump = home.parent / f"dump-{args.kind}-{args.records}.{args.format}"
    with Workspace.open(home) as ws:
        made = make_dump(ws, DumpSpec(args.kind, args.records, args.format, args.seed), dump)
        print(f"dump: {made.records:,} records ({made.from_culprits:,} from {made.culprits}, "
              f"{made.from_elsewhere:,} from elsewhere), {dump.stat().st_size / 1e6:.1f} MB")  # fmt: skip
        statements = 0

        def _count(*_: object) -> None:
            nonlocal statements
            statements += 1

        event.listen(ws.store.engine, "before_cursor_execute", _count)
        walls: list[float] = []
        cpus: list[float] = []
        first: tuple[str, ...] = ()
        print(f"load average before: {_load()}")
        for run in range(args.runs):
            statements = 0
            vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))  # keys unwrapped afresh
            start, cpu = time.perf_counter(), time.process_time()
            trace = trace_leak(ws, vault, dump)
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            outcome = tuple(s.person for s in trace.attribution.ranking[:5])
            first = first or outcome
            assert outcome == first, "runs disagree"  # the same dump, the same answer
            print(f"  run {run + 1}: {walls[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU, "
                  f"{statements:,} statements, load {_load()}")  # fmt: skip
    counts = trace.counts
    median = statistics.median(walls)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"matched {counts['matched']:,}, ambiguous {counts['ambiguous']:,}, "
          f"nothing we hold {counts['nothing_we_hold']:,}; {counts['lookups']:,} look-ups; "
          f"top suspects {list(first[:3])} (culprits {made.culprits})")  # fmt: skip
    print(f"trace_leak over {args.runs} runs: median {median:.2f} s, p99 "
          f"{_percentile(walls, 0.99):.2f} s, max {max(walls):.2f} s wall; median "
          f"{statistics.median(cpus):.2f} s CPU; {made.records / median:,.0f} records a second; "
          f"peak RSS {peak:.0f} MiB")  # fmt: skip
    print(f"load average after: {_load()} (2 shared cores: figures are pessimistic)")


if __name__ == "__main__":
    main()
