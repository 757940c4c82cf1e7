"""Benchmark `trace complaints` on the ring case, trial after trial, on an existing simulated workspace.

Each trial draws a ring of three colleagues of one team (agents who each
accessed at least 20 customers) and writes a complaints file of 30 fraud
reports: 15 of customers the ring accessed, each reported 3 to 20 days after
its member's first access (at most at the end of the lake), and 15 customers
drawn at random, reported in the second half of the lake's time. The trial
is a hit when all three members are among the top five staff lines of
:func:`trace_complaints`. This is the ring case of
``benchmarks/bench_trace_scale.py``, drawn the same way, timed alone.

    python benchmarks/bench_trace_complaints.py --home /tmp/ws --trials 200
    python benchmarks/bench_trace_complaints.py --home /tmp/ws --trials 200 --rebuild
    PYTHONPATH=/tmp/old/src python benchmarks/bench_trace_complaints.py --home /tmp/ws --trials 5

Prints the world's size, the cost of building the complaints cache (with
``--rebuild`` it is deleted first; the first trial then also builds the
per-group counts and is reported apart), then the hit rate and the median,
p99 and maximum wall and CPU seconds of a trial (:func:`trace_complaints`
alone, not writing the file), and the process's peak RSS. Run with an older
checkout on PYTHONPATH it times that code (which has no cache) the same way.
The machine is shared: figures are pessimistic; the load average is printed.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import resource
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
from sqlalchemy import func, select

from bpoguard.store import models as m
from bpoguard.trace.complaints import trace_complaints
from bpoguard.workspace import Workspace

DAY_US = 86_400 * 1_000_000
RING, VICTIMS, OTHERS, TOP = 3, 15, 15, 5


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class World:
    """Who accessed whom, first, and the teams agents are in."""

    people: list[str]
    starts: np.ndarray  # person k's rows are starts[k]:starts[k + 1]
    customers: np.ndarray
    first_us: np.ndarray
    by_team: dict[str, list[int]]
    team_of: dict[int, str]
    top_customer: int

    def accessed(self, person: int) -> tuple[np.ndarray, np.ndarray]:
        """The customers this person accessed, and when first."""
        lo, hi = self.starts[person], self.starts[person + 1]
        return self.customers[lo:hi], self.first_us[lo:hi]


def read_world(ws: Workspace) -> World:
    """The lake's (person, customer, first access) pairs and the agents' teams."""
    start = time.perf_counter()
    con = duckdb.connect()
    try:
        con.read_parquet(str(ws.settings.lake_dir / "day=*" / "*.parquet"),
                         hive_partitioning=True).create_view("lake")  # fmt: skip
        table = con.execute(
            "SELECT actor, customer_id, min(epoch_us(time)) AS first_us FROM lake "
            "WHERE source = 'guard' AND customer_id IS NOT NULL AND actor IS NOT NULL "
            "AND action LIKE 'record.%' GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchnumpy()
    finally:
        con.close()
    actors = np.asarray(table["actor"], dtype=object)
    people, starts = np.unique(actors, return_index=True)
    starts = np.append(starts, actors.size)
    with ws.store.engine.connect() as conn:
        rows = conn.execute(select(m.Staff.id, m.Staff.role, m.Staff.team)).all()
        top = conn.scalar(select(func.max(m.Customer.id))) or 0
    where = {str(p): k for k, p in enumerate(people)}
    team_of = {where[r.id]: r.team for r in rows
               if r.id in where and r.team and r.role == m.StaffRole.AGENT}  # fmt: skip
    by_team: dict[str, list[int]] = {}
    for person, team in team_of.items():
        if starts[person + 1] - starts[person] >= 20:
            by_team.setdefault(team, []).append(person)
    by_team = {t: ps for t, ps in by_team.items() if len(ps) >= RING}
    world = World([str(p) for p in people], starts, np.asarray(table["customer_id"]),
                  np.asarray(table["first_us"]), by_team, team_of, int(top))  # fmt: skip
    print(f"{actors.size:,} pairs of {len(people):,} people, {len(by_team):,} teams with "
          f"{RING}+ agents of 20+ customers, read in {time.perf_counter() - start:.1f} s")  # fmt: skip
    return world


def write_ring(world: World, rng: np.random.Generator, path: Path) -> list[str]:
    """A complaints file for one trial; returns the ring's members."""
    teams = sorted(world.by_team)
    team = world.by_team[teams[int(rng.integers(len(teams)))]]
    members = [team[int(k)] for k in rng.choice(len(team), size=RING, replace=False)]
    end_us, start_us = int(world.first_us.max()), int(world.first_us.min())
    reports: dict[int, int] = {}
    for k in range(VICTIMS):  # victims the ring accessed, reported 3 to 20 days later
        customers, firsts = world.accessed(members[k % RING])
        at = int(rng.integers(customers.size))
        when = int(firsts[at]) + int(rng.integers(3, 21)) * DAY_US
        reports.setdefault(int(customers[at]), min(when, end_us))
    while len(reports) < VICTIMS + OTHERS:  # unrelated fraud, reported in the second half
        c = int(rng.integers(1, world.top_customer + 1))
        if c not in reports:
            reports[c] = int(rng.integers((start_us + end_us) // 2, end_us))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "reported_on"])
        for c, us in reports.items():
            writer.writerow([c, dt.datetime.fromtimestamp(us / 1e6, dt.UTC).date().isoformat()])
    return [world.people[p] for p in members]


def build_cache(ws: Workspace, rebuild: bool) -> None:
    """Build (or find) the first-access file, timed; nothing to do for code without one."""
    try:
        from bpoguard.trace.complaints import firsts_dir
        from bpoguard.trace.firsts import firsts_file
    except ImportError:
        print("this code has no complaints cache: every trial reads the lake")
        return
    folder = firsts_dir(ws)
    if rebuild:
        shutil.rmtree(folder, ignore_errors=True)
    start, cpu = time.perf_counter(), time.process_time()
    path = firsts_file(ws.settings.lake_dir, folder)
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    if path is not None:
        rows = duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [str(path)])
        count = rows.fetchone()
        print(f"first accesses: {count[0] if count else 0:,} rows, "
              f"{path.stat().st_size / 2**20:.1f} MiB, ready in {wall:.1f} s wall, "
              f"{used:.1f} s CPU (built from the lake the first time); load {_load()}")  # fmt: skip


def main() -> None:
    """Run the trials and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a simulated workspace")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--allowed-only", action="store_true", help="count allowed requests only")
    parser.add_argument("--rebuild", action="store_true", help="delete the complaints cache first")
    parser.add_argument("--folder", type=Path, default=None, help="where trial files go")
    args = parser.parse_args()

    folder = args.folder or args.home.parent / "bench-trace-complaints"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    with Workspace.open(args.home) as ws:
        world = read_world(ws)
        build_cache(ws, args.rebuild)
        hits, walls, cpus = 0, list[float](), list[float]()
        for trial in range(args.trials):
            path = folder / "complaints.csv"
            members = write_ring(world, rng, path)
            start, cpu = time.perf_counter(), time.process_time()
            result = trace_complaints(ws, path, include_denied=not args.allowed_only)
            wall, used = time.perf_counter() - start, time.process_time() - cpu
            top = [ln.value for ln in result.lines if ln.dimension == "staff"][:TOP]
            hit = all(p in top for p in members)
            hits += hit
            if trial == 0 and args.rebuild:
                print(f"first trial (builds the per-group counts): {wall:.2f} s wall, "
                      f"{used:.2f} s CPU, {'hit' if hit else 'miss'}; load {_load()}")  # fmt: skip
                continue
            walls.append(wall)
            cpus.append(used)
            if len(walls) % 20 == 0 or args.trials <= 10 or trial == args.trials - 1:
                print(f"  {trial + 1} trials: {hits} hits; median {statistics.median(walls):.3f} s "
                      f"wall, {statistics.median(cpus):.3f} s CPU; load {_load()}", flush=True)  # fmt: skip
    p99 = sorted(walls)[min(len(walls) - 1, int(len(walls) * 0.99))] if walls else 0.0
    print(
        f"ring of {RING} in the top {TOP} staff: {hits}/{args.trials} = "
        f"{100 * hits / max(1, args.trials):.1f}% (bar 95%); a trial median "
        f"{statistics.median(walls or [0]):.3f} s, p99 {p99:.3f} s, max {max(walls or [0]):.3f} s "
        f"wall; CPU median {statistics.median(cpus or [0]):.3f} s, max {max(cpus or [0]):.3f} s; "
        f"peak RSS {_rss_mib():.0f} MiB; load {_load()} (2 shared cores: figures are pessimistic)"
    )


if __name__ == "__main__":
    main()
