"""Benchmark `trace leak` and `trace complaints` end to end on an existing simulated workspace.

Meant for worlds at the issue's scale (10,000 agents, 1,000,000 customers,
weeks of access), which take too long to build inside a benchmark: simulate
once (`bpoguard simulate`), then, if the world was simulated without
``--guard``, load the customer files into the vault (`bpoguard customers load
sim/customers-CLIENT.csv --client org-CLIENT`) so that dumps can be matched.

    python benchmarks/bench_trace_scale.py --home /tmp/ws                     # everything
    python benchmarks/bench_trace_scale.py --home /tmp/ws --runs 3 --commands 2 --trials 20
    python benchmarks/bench_trace_scale.py --home /tmp/ws --cases one,mixed --trial-seconds 60

Prints: the world's size; a 10,000-record `make-dump --kind mixed` dump traced
with :func:`trace_leak` in one process (median and maximum wall, CPU, SQL
statements, peak RSS, wall per stage) and as the command (`bpoguard trace
leak DUMP --json`, a new process each run: wall, CPU and peak RSS of the
child); then accuracy trials sharing one opened workspace, each a dump or a
complaints file written from the world's own accesses and traced in full:
five records of one agent (ranked first?), twenty of which half come from
elsewhere (first?), two colleagues of one team pooling ten each (both in the
top 3?), thirty fraud reports of which fifteen are customers a ring of three
colleagues accessed (all three in the top 5 staff?). Trials of a case stop at
``--trials`` or after ``--trial-seconds``. A case's trials are drawn first and
the customers' values read once for all of them (the customer files are read
whole whatever the count), so a trial costs about what its trace costs. The
machine is shared: figures are pessimistic; the load average is printed
beside them.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
from sqlalchemy import event, func, select, text

from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.simulate.identities import IdentityFactory
from bpoguard.store import models as m
from bpoguard.trace.accesses import access_index, accesses_of, pair_summary
from bpoguard.trace.complaints import trace_complaints
from bpoguard.trace.dumps import (
    DumpSpec,
    customer_values,
    leaked_record,
    make_dump,
    some_fields,
    write_records,
)
from bpoguard.trace.leak import cache_dir, trace_leak
from bpoguard.trace.report import leak_document
from bpoguard.trace.scoring import AccessIndex
from bpoguard.workspace import Workspace

DAY_US = 86_400 * 1_000_000
STAGES = ("read", "match", "customers", "access index", "accesses", "scoring", "proofs")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def world_figures(ws: Workspace) -> None:
    """The world's size: staff, customers, vault values, lake rows and bytes, ledger entries."""
    lake = ws.settings.lake_dir
    con = duckdb.connect()
    try:
        glob = str(lake / "day=*" / "*.parquet")
        rows = con.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", [glob]).fetchone()
    finally:
        con.close()
    with ws.store.engine.connect() as conn:
        staff = conn.scalar(select(func.count()).select_from(m.Staff))
        customers = conn.scalar(select(func.count()).select_from(m.Customer))
        values = conn.scalar(text("SELECT count(*) FROM vault_values"))
        entries = conn.scalar(text("SELECT count(*) FROM ledger_entries"))
    db = ws.home / "bpoguard.db"
    print(
        f"world {ws.home}: {staff:,} staff, {customers:,} customers, {values:,} vault values, "
        f"{entries:,} ledger entries; lake {rows[0] if rows else 0:,} rows in "
        f"{len(list(lake.glob('day=*/*.parquet'))):,} files, {_size(lake) / 2**30:.2f} GiB; "
        f"database {db.stat().st_size / 2**30 if db.exists() else 0:.2f} GiB"
    )


@dataclass
class Runs:
    """Figures of repeated runs."""

    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    rss: list[float] = field(default_factory=list)

    def line(self, name: str) -> str:
        """One line: median and max wall, median CPU, statements, peak RSS."""
        stmts = f", {statistics.median(self.statements):,.0f} statements" if self.statements else ""
        return (
            f"{name}: {len(self.walls)} runs, median {statistics.median(self.walls):.2f} s, "
            f"max {max(self.walls):.2f} s wall; median {statistics.median(self.cpus):.2f} s CPU"
            f"{stmts}; peak RSS {max(self.rss):.0f} MiB; load {_load()}"
        )


def in_process(ws: Workspace, dump: Path, runs: int) -> Runs:
    """trace_leak on one dump, run after run in this process."""
    figures = Runs()
    count = 0

    def _count(*_: object) -> None:
        nonlocal count
        count += 1

    event.listen(ws.store.engine, "before_cursor_execute", _count)
    first: tuple[str, ...] = ()
    for run in range(runs):
        count = 0
        vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))  # keys unwrapped afresh
        start, cpu = time.perf_counter(), time.process_time()
        trace = trace_leak(ws, vault, dump)
        leak_document(trace)
        figures.walls.append(time.perf_counter() - start)
        figures.cpus.append(time.process_time() - cpu)
        figures.statements.append(count)
        figures.rss.append(_rss_mib())
        for stage, took in trace.timings.items():
            figures.stages.setdefault(stage, []).append(took)
        top = tuple(s.person for s in trace.attribution.ranking[:5])
        first = first or top
        assert top == first, "runs disagree"  # the same dump, the same answer
        laps = ", ".join(f"{k} {v:.2f}" for k, v in trace.timings.items())
        print(f"  run {run + 1}: {figures.walls[-1]:.2f} s wall, {figures.cpus[-1]:.2f} s CPU, "
              f"{count:,} statements ({laps}); load {_load()}")  # fmt: skip
    event.remove(ws.store.engine, "before_cursor_execute", _count)
    c = trace.counts
    print(f"  matched {c['matched']:,}, ambiguous {c['ambiguous']:,}, nothing we hold "
          f"{c['nothing_we_hold']:,}; suspects {[s.person for s in trace.attribution.suspects]}")  # fmt: skip
    return figures


# Runs a command and prints its wall, CPU and peak RSS as JSON. It is started as a small,
# fresh interpreter because on Linux a child's ru_maxrss counts what the process that
# forked it held at the fork: measured straight from this (by then large) benchmark, the
# command would be charged with the benchmark's own memory.
_LAUNCHER = """
import json, os, subprocess, sys, time
start = time.perf_counter()
with open(os.devnull, "wb") as sink:
    child = subprocess.Popen(sys.argv[1:], stdout=sink, stderr=subprocess.PIPE)
    error = child.stderr.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"wall": time.perf_counter() - start, "code": os.waitstatus_to_exitcode(status),
                  "cpu": usage.ru_utime + usage.ru_stime, "rss_kib": usage.ru_maxrss,
                  "error": error[-2000:]}))
"""


def as_command(home: Path, dump: Path, runs: int) -> Runs:
    """`bpoguard trace leak DUMP --json`, a new process each run (wall, CPU and peak RSS of it)."""
    figures = Runs()
    exe = Path(sys.executable).with_name("bpoguard")
    command = [str(exe), "trace", "leak", str(dump), "--home", str(home), "--json"]
    for run in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, *command], capture_output=True, check=True, text=True
        )
        result = json.loads(done.stdout)
        assert result["code"] == 0, result["error"]
        figures.walls.append(result["wall"])
        figures.cpus.append(result["cpu"])
        figures.rss.append(result["rss_kib"] / 1024)
        print(f"  command {run + 1}: {result['wall']:.2f} s wall, {figures.cpus[-1]:.2f} s CPU, "
              f"{figures.rss[-1]:.0f} MiB; load {_load()}")  # fmt: skip
    return figures


# --- accuracy trials ---------------------------------------------------------------------------


@dataclass
class Trials:
    """The world's accesses and the values needed to write dumps from them."""

    ws: Workspace
    index: AccessIndex
    agents: list[int]  # people (indexes) who are agents
    team_of: dict[int, str]
    by_team: dict[str, list[int]]
    first_us: dict[tuple[int, int], int]  # (person, customer) -> first access
    rng: np.random.Generator
    folder: Path
    values: dict[int, dict[str, str]] = field(default_factory=dict)
    countries: dict[int, str] = field(default_factory=dict)
    fields: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    fetched: set[int] = field(default_factory=set)  # customers whose accesses are in fields
    traced: list[float] = field(default_factory=list)  # wall of each trace_leak

    def accessed(self, person: int) -> np.ndarray:
        """Customers this person accessed."""
        rows = np.flatnonzero(self.index.accessors == person)
        return self.index.customers[np.searchsorted(self.index.indptr, rows, side="right") - 1]


def prepare(ws: Workspace, folder: Path, seed: int) -> Trials:
    """Index the world once: who accessed whom, teams, first access times."""
    start = time.perf_counter()
    index = access_index(ws.settings.lake_dir, cache_dir=cache_dir(ws))
    with ws.store.engine.connect() as conn:
        rows = conn.execute(select(m.Staff.id, m.Staff.role, m.Staff.team)).all()
    where = {name: k for k, name in enumerate(index.people)}
    serving = _serving_loaded_clients(ws, index)
    team_of = {where[r.id]: r.team for r in rows if r.id in where and r.team and
               r.role == m.StaffRole.AGENT and where[r.id] in serving}  # fmt: skip
    by_team: dict[str, list[int]] = {}
    for person, team in team_of.items():
        by_team.setdefault(team, []).append(person)
    con = duckdb.connect()
    try:
        table = con.execute(
            "SELECT actor, customer_id, first_us FROM read_parquet(?)",
            [str(pair_summary(ws.settings.lake_dir, cache_dir(ws)))],
        ).fetchnumpy()
    finally:
        con.close()
    first_us = {
        (where[str(a)], int(c)): int(t)
        for a, c, t in zip(table["actor"], table["customer_id"], table["first_us"], strict=True)
    }
    print(f"indexed {index.pairs:,} pairs of {len(index.people):,} people in "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    return Trials(ws, index, sorted(team_of), team_of, by_team, first_us,
                  np.random.default_rng(seed), folder)  # fmt: skip


def _serving_loaded_clients(ws: Workspace, index: AccessIndex) -> set[int]:
    """People whose customers' client has values in the vault (dumps of them can match).

    A world simulated without --guard has its customer files loaded client by
    client; trials are drawn among the agents of the clients loaded so far.
    """
    with ws.store.engine.connect() as conn:
        loaded = set(conn.execute(text("SELECT DISTINCT client_id FROM vault_index")).scalars())
        pairs = conn.execute(select(m.Customer.id, m.Customer.client_id)).all()
    client_of = {int(i): c for i, c in pairs}
    owners = index.customers[
        np.searchsorted(index.indptr, np.arange(index.accessors.size), side="right") - 1
    ]
    people, first = np.unique(index.accessors, return_index=True)
    serving = {int(p) for p, k in zip(people, first, strict=True)
               if client_of.get(int(owners[k])) in loaded}  # fmt: skip
    print(f"vault holds the customers of {sorted(loaded)}: trials among the "
          f"{len(serving):,} people who serve them")  # fmt: skip
    return serving


def _agent(t: Trials, need: int, team: list[int] | None = None) -> int:
    pool = team or t.agents
    while True:
        person = int(pool[int(t.rng.integers(0, len(pool)))])
        if t.index.person_size[person] >= need:
            return person


@dataclass
class Draw:
    """One trial's dump, as drawn: whose customers, and which of ours and how many strangers."""

    picks: dict[int, list[int]]  # person -> customers of theirs in the dump
    ours: list[int] = field(default_factory=list)  # our customers they never accessed
    strangers: int = 0  # people we do not hold
    top: int = 1  # every person of picks must be ranked within this


def load_values(t: Trials, draws: list[Draw]) -> None:
    """The values of every drawn customer and the fields each person asked for, read once.

    Reading the simulator's customer files (256 MB for a million customers) costs
    seconds whatever the count, so the trials of a case share one read.
    """
    wanted = {c for d in draws for cs in d.picks.values() for c in cs} | {
        c for d in draws for c in d.ours
    }
    missing = wanted - t.values.keys()
    if missing:
        values, countries = customer_values(t.ws, missing)
        t.values.update(values)
        t.countries.update(countries)
    todo = {c for d in draws for cs in d.picks.values() for c in cs} - t.fetched
    people = {t.index.people[p] for d in draws for p in d.picks}
    for a in accesses_of(t.ws.settings.lake_dir, todo, cache_dir=cache_dir(t.ws), people=people):
        t.fields.setdefault((a.person, a.customer_id), set()).update(a.fields)
    t.fetched |= todo


def _record(t: Trials, person: int, customer: int) -> dict[str, str]:
    asked = t.fields.get((t.index.people[person], customer), set()) | {"name"}
    values = {k: v for k, v in t.values[customer].items() if k in asked}
    return leaked_record(values, t.countries[customer], t.rng)


def _elsewhere(t: Trials, avoid: set[int], count: int) -> list[int]:
    total = int(t.index.customers.max())
    picked: list[int] = []
    while len(picked) < count:
        c = int(t.rng.integers(1, total + 1))
        if c not in avoid and c not in picked:
            picked.append(c)
    return picked


def _leak_rank(t: Trials, rows: list[dict[str, str]], name: str) -> list[str]:
    dump = t.folder / name
    order = t.rng.permutation(len(rows))
    write_records(dump, "csv", [rows[int(k)] for k in order])
    vault = Vault(KeyfileProvider.from_dir(t.ws.settings.keys_dir))
    start = time.perf_counter()
    trace = trace_leak(t.ws, vault, dump)
    t.traced.append(time.perf_counter() - start)  # the trace alone, not writing the dump
    return [s.person for s in trace.attribution.ranking]


def draw_one(t: Trials) -> Draw:
    """Five records from one agent's accesses: is the agent ranked first?"""
    agent = _agent(t, 5)
    return Draw({agent: [int(c) for c in t.rng.choice(t.accessed(agent), size=5, replace=False)]})


def draw_mixed(t: Trials) -> Draw:
    """Twenty records, ten of one agent's, five of our other customers, five strangers: first?"""
    agent = _agent(t, 10)
    mine = t.accessed(agent)
    picks = [int(c) for c in t.rng.choice(mine, size=10, replace=False)]
    return Draw({agent: picks}, _elsewhere(t, set(mine.tolist()), 5), strangers=5)


def draw_pair(t: Trials) -> Draw:
    """Two agents of one team pooling ten records each: both in the top 3?"""
    a = _agent(t, 10)
    team = [p for p in t.by_team[t.team_of[a]] if p != a]
    b = _agent(t, 10, team)
    pa = [int(c) for c in t.rng.choice(t.accessed(a), size=10, replace=False)]
    rest = np.setdiff1d(t.accessed(b), pa)
    pb = [int(c) for c in t.rng.choice(rest, size=min(10, rest.size), replace=False)]
    return Draw({a: pa, b: pb}, top=3)


def judge(t: Trials, d: Draw) -> bool:
    """Write the drawn dump (values already loaded), trace it, and check the ranking."""
    rows = [_record(t, p, c) for p, cs in d.picks.items() for c in cs]
    rows += [leaked_record(some_fields(t.values[c], t.rng), t.countries[c], t.rng) for c in d.ours
             if c in t.values]  # fmt: skip
    if d.strangers:
        seed = int(t.rng.integers(0, 2**31))
        rows += [leaked_record(some_fields(s, t.rng), "GB", t.rng)
                 for s in IdentityFactory(seed).batch("GB", d.strangers)]  # fmt: skip
    top = _leak_rank(t, rows, "trial.csv")[: d.top]
    return all(t.index.people[p] in top for p in d.picks)


def case_ring(t: Trials) -> bool:
    """Thirty fraud reports, fifteen of customers a ring of three colleagues accessed: top 5?"""
    a = _agent(t, 20)
    team = t.by_team[t.team_of[a]]
    ring = {a}
    while len(ring) < 3:
        ring.add(_agent(t, 20, team))
    members = sorted(ring)
    end_us = max(t.first_us.values())
    reports: dict[int, int] = {}
    for k in range(15):  # victims the ring accessed, reported 3 to 20 days later
        member = members[k % 3]
        c = int(t.rng.choice(t.accessed(member)))
        when = t.first_us[(member, c)] + int(t.rng.integers(3, 21)) * DAY_US
        reports.setdefault(c, min(when, end_us))
    start_us = min(t.first_us.values())
    while len(reports) < 30:  # unrelated fraud, reported in the second half
        c = _elsewhere(t, set(reports), 1)[0]
        reports[c] = int(t.rng.integers((start_us + end_us) // 2, end_us))
    path = t.folder / "complaints.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "reported_on"])
        for c, us in reports.items():
            writer.writerow([c, dt.datetime.fromtimestamp(us / 1e6, dt.UTC).date().isoformat()])
    result = trace_complaints(t.ws, path)
    top = [line.value for line in result.lines if line.dimension == "staff"][:5]
    return all(t.index.people[p] in top for p in members)


DRAWS: dict[str, tuple[str, Callable[[Trials], Draw]]] = {
    "one": ("5 records of one agent: first (bar 99%)", draw_one),
    "mixed": ("20 records, half elsewhere: first (bar 99%)", draw_mixed),
    "pair": ("2 colleagues pooling 10 each: both top 3 (bar 95%)", draw_pair),
}
RING = "30 reports, 15 from a ring of 3: all top 5 (bar 95%)"
CASES = (*DRAWS, "ring")


def run_case(t: Trials, name: str, trials: int, seconds: float) -> None:
    """Trials of one case until the count or the time budget is reached."""
    hits, times = 0, list[float]()
    t.traced.clear()
    if name == "ring":
        label, trial = RING, case_ring
    else:
        label, draw = DRAWS[name]
        draws = [draw(t) for _ in range(trials)]
        start = time.perf_counter()
        load_values(t, draws)
        print(f"  {name}: values of {len(t.values):,} customers loaded once in "
              f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        pending = iter(draws)

        def trial(t: Trials) -> bool:
            return judge(t, next(pending))

    deadline = time.perf_counter() + seconds
    while len(times) < trials and time.perf_counter() < deadline:
        start = time.perf_counter()
        hits += trial(t)
        times.append(time.perf_counter() - start)
    if not times:
        print(f"{label:<54} no trials run (--trials 0 or no time left)")
        return
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"{label:<54} {hits}/{len(times)} = {100 * hits / len(times):5.1f}%  median "
          f"{statistics.median(times):.2f} s, p99 {p99:.2f} s a trial; load {_load()}")  # fmt: skip
    if t.traced:
        traced = sorted(t.traced)
        p99 = traced[min(len(traced) - 1, int(len(traced) * 0.99))]
        print(f"  of which trace_leak: median {statistics.median(traced):.2f} s, "
              f"p99 {p99:.2f} s, max {traced[-1]:.2f} s")  # fmt: skip


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a simulated workspace")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5, help="in-process runs of the big dump")
    parser.add_argument("--commands", type=int, default=3, help="command runs of the big dump")
    parser.add_argument("--trials", type=int, default=200, help="at most, per case")
    parser.add_argument("--trial-seconds", type=float, default=300, help="at most, per case")
    parser.add_argument("--cases", default="one,mixed,pair,ring")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--dump", type=Path, help="trace this dump instead of writing a new one (10,000 mixed)"
    )
    args = parser.parse_args()

    folder = args.home.parent / "bench-trace-scale"
    folder.mkdir(exist_ok=True)
    with Workspace.open(args.home) as ws:
        world_figures(ws)
        start = time.perf_counter()
        pair_summary(ws.settings.lake_dir, cache_dir(ws))
        print(f"pair summary ready in {time.perf_counter() - start:.1f} s "
              f"(built from the lake the first time, reused after)")  # fmt: skip
        dump = args.dump or folder / f"mixed-{args.records}.csv"
        if (args.runs or args.commands) and args.dump is None:
            start = time.perf_counter()
            made = make_dump(ws, DumpSpec("mixed", args.records, "csv", args.seed), dump)
            print(f"dump: {made.records:,} records ({made.from_culprits:,} from {made.culprits}, "
                  f"{made.from_elsewhere:,} from elsewhere), {dump.stat().st_size / 1e6:.1f} MB, "
                  f"made in {time.perf_counter() - start:.1f} s")  # fmt: skip
        if args.runs:
            runs = in_process(ws, dump, args.runs)
            print(runs.line("trace_leak in process"))
            print("  per stage, median wall s: " + ", ".join(
                f"{k} {statistics.median(v):.2f}" for k, v in runs.stages.items()))  # fmt: skip
    if args.commands:
        print(as_command(args.home, dump, args.commands).line("bpoguard trace leak --json"))
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}: choose from {', '.join(CASES)}")
    if cases:
        with Workspace.open(args.home) as ws:
            t = prepare(ws, folder, args.seed)
            for name in cases:
                run_case(t, name, args.trials, args.trial_seconds)
    print(
        f"peak RSS of this process {_rss_mib():.0f} MiB; load {_load()} "
        "(2 shared cores: figures are pessimistic)"
    )


if __name__ == "__main__":
    main()
