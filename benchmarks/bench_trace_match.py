"""Benchmark the matching stage of `trace leak` and the whole command, on an existing world.

    python benchmarks/bench_trace_match.py --home /tmp/t1/ws --dump /tmp/t1/mixed-10000.csv
    python benchmarks/bench_trace_match.py --home WS --dump D --runs 5 --commands 3

Runs :func:`bpoguard.trace.leak.trace_leak` ``--runs`` times in one process
(per-stage wall seconds from ``LeakTrace.timings``, CPU seconds of this process
and of any worker processes it forked, SQL statements, peak RSS), then
``bpoguard trace leak DUMP --json`` ``--commands`` times as a new process each
(wall, CPU, peak RSS of the command). Prints medians and maxima. ``--parts`` times the matching stage alone, part by
part (waiting on the recognition worker, the prefetch, deciding records, the
vault reads for partials, the garbage collector, minor page faults), in fresh
processes (the prefetch split into digesting, its SQL and the walk; wall and the
parent's CPU seconds), and with ``--old SRC`` alternates them with an old copy of the code:

    python benchmarks/bench_trace_match.py --home WS --dump D --parts --old /tmp/old/src --rounds 5

To compare two
versions of the code back to back, run it twice alternating ``PYTHONPATH``
(``git archive COMMIT src | tar -x -C /tmp/old`` and ``PYTHONPATH=/tmp/old/src``):
it uses only what both have. The machine is shared: wall figures are
pessimistic; CPU seconds and before/after ratios say more.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import event

import bpoguard
from bpoguard.guard import vault as vault_module
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.trace import matcher
from bpoguard.trace.dump import ReadStats, read_dump
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


def _timed(
    owner: object, name: str, label: str, spent: dict[str, float], *, consume: bool = False
) -> None:
    """Wrap owner.name so that its wall and CPU seconds add up under label and label_cpu.

    ``consume``: the function returns an iterator, read whole inside the timing.
    """
    inner = getattr(owner, name)

    def timed(*args: object, **kwargs: object) -> object:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            got = inner(*args, **kwargs)
            return list(got) if consume else got
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - start
            cpu_label = f"{label}_cpu"
            spent[cpu_label] = spent.get(cpu_label, 0.0) + time.process_time() - cpu

    setattr(owner, name, timed)


def _parts_child(home: Path, dump: Path, runs: int) -> None:
    """Match the dump runs times here; print each run's parts but the first (cold) as JSON."""
    spent: dict[str, float] = {}
    # Names both the old and the new matcher have (the pipeline has its own module since
    # session 15; an older tree keeps it in the matcher).
    pipeline = sys.modules.get("bpoguard.trace.recognition", matcher)
    _timed(pipeline._Recognition, "sightings", "wait", spent)
    _timed(matcher.Matcher, "_prefetch", "prefetch", spent)
    _timed(Vault, "lookup_many", "lookups", spent)  # the digests and their SQL
    _timed(vault_module, "_find_digests", "sql", spent, consume=True)
    if hasattr(matcher.Matcher, "_search"):  # since session 15: searched, then decided
        _timed(matcher.Matcher, "_search", "decide", spent)
        _timed(matcher.Matcher, "_decided", "decide", spent)
        _timed(matcher.Matcher, "_partial_values", "partials", spent)
    else:
        _timed(matcher.Matcher, "match", "decide", spent)
        _timed(Vault, "get", "partials", spent)
    began: list[float] = []

    def _collector(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            began.append(time.perf_counter())
        elif began:
            spent["gc"] = spent.get("gc", 0.0) + time.perf_counter() - began.pop()

    gc.callbacks.append(_collector)
    out = []
    with Workspace.open(home) as ws:
        for _ in range(runs):
            spent.clear()
            vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
            with ws.store.engine.connect() as conn:
                usage = resource.getrusage(resource.RUSAGE_SELF)
                (own, kids), start = _cpu(), time.perf_counter()
                found = matcher.Matcher(conn, vault, matcher.clients(conn))
                records = sum(1 for _ in found.match_all(read_dump(dump, ReadStats())))
                wall = time.perf_counter() - start
                own2, kids2 = _cpu()
                after = resource.getrusage(resource.RUSAGE_SELF)
            for suffix in ("", "_cpu"):  # the prefetch's parts: digesting, SQL, the walk
                lookups, sql = spent.get(f"lookups{suffix}", 0.0), spent.get(f"sql{suffix}", 0.0)
                spent[f"digest{suffix}"] = lookups - sql
                spent[f"walk{suffix}"] = spent.get(f"prefetch{suffix}", 0.0) - lookups
            out.append({"wall": wall, "cpu": own2 - own, "workers": kids2 - kids,
                        "kfaults": (after.ru_minflt - usage.ru_minflt) / 1000,
                        "records": records, **spent})  # fmt: skip
    print(json.dumps(out[1:]))


def _parts(home: Path, dump: Path, old: Path | None, rounds: int) -> None:
    """Fresh processes, old and new alternated (the order swapped each round); medians."""
    here = Path(__file__).resolve()
    new = Path(bpoguard.__file__).resolve().parents[1]
    codes = [("new", new)] + ([("old", old)] if old else [])
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in codes}
    for round_ in range(rounds):
        for name, src in codes if round_ % 2 == 0 else codes[::-1]:
            env = dict(os.environ, PYTHONPATH=str(src))
            argv = [sys.executable, str(here), "--home", str(home), "--dump", str(dump),
                    "--parts-child", "3"]  # fmt: skip
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
            runs[name] += json.loads(done.stdout)
    for name, got in runs.items():
        keys = ["wall", "cpu", "workers", "wait", "prefetch", "digest", "sql", "walk", "decide",
                "partials", "gc", "kfaults"]  # fmt: skip
        medians = " ".join(f"{k} {statistics.median(r.get(k, 0.0) for r in got):.3f}" for k in keys)
        print(f"{name}: {len(got)} warm runs, medians (wall s): {medians}")
        cpu_keys = ["prefetch", "digest", "sql", "walk", "decide", "partials"]
        cpu = " ".join(
            f"{k} {statistics.median(r.get(f'{k}_cpu', 0.0) for r in got):.3f}" for k in cpu_keys
        )
        print(f"{name}: the parent's CPU s by part, medians: {cpu}")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="an existing workspace (read)")
    parser.add_argument("--dump", type=Path, required=True, help="the dump to trace")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--commands", type=int, default=0)
    parser.add_argument("--parts", action="store_true", help="the matching stage, part by part")
    parser.add_argument("--old", type=Path, help="with --parts: an old src/ to alternate with")
    parser.add_argument("--rounds", type=int, default=3, help="with --parts: processes each")
    parser.add_argument("--parts-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.parts_child:
        _parts_child(args.home, args.dump, args.parts_child)
        return
    one, five, _ = os.getloadavg()
    print(f"code: {Path(bpoguard.__file__).parent}; load {one:.2f} {five:.2f}")
    if args.parts:
        _parts(args.home, args.dump, args.old, args.rounds)
    elif args.runs:
        _in_process(args.home, args.dump, args.runs)
    if args.commands:
        _commands(args.home, args.dump, args.commands)
    one, five, _ = os.getloadavg()
    print(f"load after: {one:.2f} {five:.2f}")


if __name__ == "__main__":
    main()
