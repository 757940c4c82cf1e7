"""Benchmark the matching stage of `trace leak` and the whole command, on an existing world.

    python benchmarks/bench_trace_match.py --home /tmp/t1/ws --dump /tmp/t1/mixed-10000.csv
    python benchmarks/bench_trace_match.py --home WS --dump D --runs 5 --commands 3

Runs :func:`bpoguard.trace.leak.trace_leak` ``--runs`` times in one process
(per-stage wall seconds from ``LeakTrace.timings``, CPU seconds of this process
and of any worker processes it forked, SQL statements, peak RSS), then
``bpoguard trace leak DUMP --json`` ``--commands`` times as a new process each
(wall, CPU, peak RSS of the command). Prints medians and maxima. To compare two
versions of the code back to back, run it twice alternating ``PYTHONPATH``
(``git archive COMMIT src | tar -x -C /tmp/old`` and ``PYTHONPATH=/tmp/old/src``):
it uses only what both have. The machine is shared: wall figures are
pessimistic; CPU seconds and before/after ratios say more.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import event

import bpoguard
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.trace.leak import trace_leak
from bpoguard.workspace import Workspace


def _cpu() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _in_process(home: Path, dump: Path, runs: int) -> None:
    with Workspace.open(home) as ws:
        statements = 0

        def _count(*_: object) -> None:
            nonlocal statements
            statements += 1

        event.listen(ws.store.engine, "before_cursor_execute", _count)
        walls: list[float] = []
        cpus: list[float] = []
        workers: list[float] = []
        stages: list[dict[str, float]] = []
        for run in range(runs):
            vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
            statements = 0
            (own, kids), start = _cpu(), time.perf_counter()
            trace = trace_leak(ws, vault, dump)
            wall = time.perf_counter() - start
            own2, kids2 = _cpu()
            walls.append(wall)
            cpus.append(own2 - own)
            workers.append(kids2 - kids)
            stages.append(trace.timings)
            parts = " ".join(f"{k}={v:.3f}" for k, v in trace.timings.items())
            print(f"  run {run}: wall {wall:.2f} s, CPU {cpus[-1]:.2f} s + workers "
                  f"{workers[-1]:.2f} s, {statements} statements; {parts}", flush=True)  # fmt: skip
        names = list(stages[0])
        medians = " ".join(
            f"{k} {statistics.median(s.get(k, 0.0) for s in stages):.3f}" for k in names
        )
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        kids_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"in process, {runs} runs: median wall {statistics.median(walls):.2f} s (max "
              f"{max(walls):.2f}), median CPU {statistics.median(cpus):.2f} s + workers "
              f"{statistics.median(workers):.2f} s, peak RSS {rss:.0f} MiB (workers {kids_rss:.0f} MiB)")  # fmt: skip
        print(f"  median stage wall (s): {medians}")


def _commands(home: Path, dump: Path, runs: int) -> None:
    walls: list[float] = []
    cpus: list[float] = []
    peaks: list[float] = []
    code = "import sys; from bpoguard.cli import entry; sys.argv[0] = 'bpoguard'; sys.exit(entry())"
    argv = [sys.executable, "-c", code, "trace", "leak", str(dump), "--home", str(home), "--json"]
    for _ in range(runs):
        start = time.perf_counter()
        # os.wait4: the command's own CPU and peak RSS, its workers' included in the CPU.
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        walls.append(time.perf_counter() - start)
        if child.returncode != 0:
            raise SystemExit(f"the command failed with exit {child.returncode}")
        cpus.append(usage.ru_utime + usage.ru_stime)
        peaks.append(usage.ru_maxrss / 1024)
        print(f"  command: wall {walls[-1]:.2f} s, CPU {cpus[-1]:.2f} s, peak {peaks[-1]:.0f} MiB",
              flush=True)  # fmt: skip
    print(f"command, {runs} runs: median wall {statistics.median(walls):.2f} s (max "
          f"{max(walls):.2f}), median CPU {statistics.median(cpus):.2f} s, peak RSS "
          f"{max(peaks):.0f} MiB")  # fmt: skip


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="an existing workspace (read)")
    parser.add_argument("--dump", type=Path, required=True, help="the dump to trace")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--commands", type=int, default=0)
    args = parser.parse_args()
    one, five, _ = os.getloadavg()
    print(f"code: {Path(bpoguard.__file__).parent}; load {one:.2f} {five:.2f}")
    if args.runs:
        _in_process(args.home, args.dump, args.runs)
    if args.commands:
        _commands(args.home, args.dump, args.commands)
    one, five, _ = os.getloadavg()
    print(f"load after: {one:.2f} {five:.2f}")


if __name__ == "__main__":
    main()
