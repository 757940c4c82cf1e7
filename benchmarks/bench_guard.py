"""Guard benchmark: one view in-process, decision + slice + audit write, on one core.

    .venv/bin/python benchmarks/bench_guard.py [--views N] [--quick] [--cpu N] [--db URL]
                                               [--profile] [--group N] [--fresh N] [--parts]

Builds a small simulated BPO (customers encrypted in the vault), opens calls
for agents at their desks in shift, then times ``Guard.view``: facts from the
store, the contract's Cedar policies, the budget charged, the decision
appended to the ledger and committed, then the asked fields decrypted from
the vault and masked. Every view is its own transaction unless ``--group``
lets the guard's caller hand it several at once (group commit, as a bulk
caller such as the simulator does). Prints median, p99 and views a second;
``--profile`` prints where the time goes (cProfile, by own time);
``--parts`` times each part of first views (CPU time, then wall time, per view).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import importlib
import io
import os
import pstats
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, update

from bpoguard import workspace
from bpoguard.access import AccessRequest, InteractionStart, Verb
from bpoguard.audit import AuditSink
from bpoguard.events.lake import LakeWriter
from bpoguard.fields import FieldType
from bpoguard.guard.canary import CanaryListener
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.service import Guard
from bpoguard.guard.vault import Vault
from bpoguard.ledger import Ledger
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.store import models as m
from bpoguard.workspace import Workspace

DAY = dt.date(2026, 3, 10)
CUSTOMERS_PER_DESK = 8  # calls an agent has open over the run, each viewed repeatedly
FRESH_POSITIONS = 390 - CUSTOMERS_PER_DESK  # pool positions left for first views (--parts: 390+)


@dataclass(frozen=True)
class Call:
    request: AccessRequest


def _world(home: Path, db: str | None) -> None:
    workspace.init(home, db=db)
    with Workspace.open(home) as ws:
        simulate(ws, SimConfig(agents=60, customers=5_000, days=1, scenarios="none", guard=True))
        with ws.store.engine.begin() as conn:
            # Budgets high enough that the run measures allowed views throughout
            # (the budget queries and writes still run on every request).
            conn.execute(update(m.Contract).values(records_per_shift=10**6, records_per_hour=10**6))


def _calls(
    guard: Guard,
    ws: Workspace,
    per_desk: int = CUSTOMERS_PER_DESK,
    first: int = 0,
    next_id: int = 90_000_000,
) -> list[AccessRequest]:
    """One open call per (agent, customer); returns a view request for each.

    Agent k's customers are positions ``k * CUSTOMERS_PER_DESK + first`` onwards
    of its client's pool, so calls made with a later ``first`` reach customers the
    agent has not seen this shift.
    """
    with ws.store.session() as s:
        agents = s.execute(
            select(m.Staff.id, m.Staff.site_id, m.Staff.shift, m.Device.id)
            .join(m.Device, m.Device.holder_id == m.Staff.id)
            .where(m.Staff.role == m.StaffRole.AGENT, m.Device.kind == m.DeviceKind.DESKTOP,
                   m.Staff.left.is_(None), m.Device.status == m.DeviceStatus.ISSUED)
            .order_by(m.Staff.id)
        ).all()  # fmt: skip
        contracts = list(s.scalars(select(m.Contract)))
        purposes = {p.contract_id: p for p in s.scalars(select(m.Purpose))}
        customers = {
            c.client_id: list(
                s.scalars(
                    select(m.Customer.id)
                    .where(m.Customer.client_id == c.client_id, m.Customer.is_canary.is_(False))
                    .limit(400)
                )
            )
            for c in contracts
        }
    requests: list[AccessRequest] = []
    for k, (staff, site_id, shift, device) in enumerate(agents):
        contract = next((c for c in contracts if site_id in c.allowed_sites), None)
        site = guard.directory.site(site_id)
        if contract is None or site is None or shift not in site.shifts:
            continue
        purpose = purposes[contract.id]
        start, _ = site.shifts[shift]
        at = (
            dt.datetime.combine(DAY, start, tzinfo=site.timezone) + dt.timedelta(hours=2)
        ).astimezone(dt.UTC)
        ip = str(site.networks[0].network_address + 40 + k % 200)
        pool = customers[contract.client_id]
        for j in range(first, first + per_desk):
            customer = pool[(k * CUSTOMERS_PER_DESK + j) % len(pool)]
            guard.open_interaction(InteractionStart(next_id, contract.id, staff, customer,
                                                    purpose.name, m.Channel.CALL, at))  # fmt: skip
            fields = tuple(FieldType(f) for f in purpose.fields)
            requests.append(AccessRequest(staff, Verb.VIEW, customer, fields,
                                          at + dt.timedelta(minutes=1), ip, device, next_id))  # fmt: skip
            next_id += 1
    return requests


def _count_statements(ws: Workspace, guard: Guard, requests: Sequence[AccessRequest]) -> float:
    """Statements the driver ran a view, BEGIN and COMMIT not counted.

    On SQLite every statement is counted by sqlite3's own trace hook, so the ones
    sent straight to the driver (the decision's read, the budget and ledger
    writes) count too; on PostgreSQL only those through SQLAlchemy are seen.
    """
    seen = [0]

    def count(*_: object) -> None:
        seen[0] += 1

    def traced(sql: str) -> None:
        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            seen[0] += 1

    if ws.store.is_sqlite:

        def hook(dbapi_connection: Any, *_: object) -> None:
            dbapi_connection.set_trace_callback(traced)

        def unhook(dbapi_connection: Any, *_: object) -> None:
            dbapi_connection.set_trace_callback(None)

        event.listen(ws.store.engine, "checkout", hook)
        event.listen(ws.store.engine, "checkin", unhook)
        for request in requests:
            guard.view(request)
        event.remove(ws.store.engine, "checkout", hook)
        event.remove(ws.store.engine, "checkin", unhook)
        return seen[0] / len(requests)
    event.listen(ws.store.engine, "before_cursor_execute", count)
    for request in requests:
        guard.view(request)
    event.remove(ws.store.engine, "before_cursor_execute", count)
    return seen[0] / len(requests)


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _time(guard: Guard, requests: Sequence[AccessRequest], n: int) -> tuple[list[float], float]:
    samples = []
    denied = 0
    cpu = time.process_time()
    began = time.perf_counter()
    for i in range(n):
        request = requests[i % len(requests)]
        start = time.perf_counter()
        seen = guard.view(request)
        samples.append(time.perf_counter() - start)
        denied += not seen.decision.allowed
    took = time.perf_counter() - began
    cpu = time.process_time() - cpu
    print(f"  CPU time {cpu / n * 1e3:.3f} ms a view ({n / cpu:,.0f} views a CPU-second)")
    if denied:
        raise SystemExit(f"{denied} views were denied: the benchmark's desks are not set up right")
    return samples, took


def _time_grouped(
    ws: Workspace,
    guard: Guard,
    sink: AuditSink,
    requests: Sequence[AccessRequest],
    n: int,
    group: int,
) -> tuple[list[float], float]:
    """Views `group` at a time in one transaction, their ledger entries appended together."""
    samples: list[float] = []
    began = time.perf_counter()
    done = 0
    while done < n:
        size = min(group, n - done)
        start = time.perf_counter()
        with ws.store.engine.begin() as conn:
            bound = guard.bound(conn, sink)
            for i in range(size):
                bound.view(requests[(done + i) % len(requests)])
            bound.flush()
        samples.extend([(time.perf_counter() - start) / size] * size)
        done += size
    return samples, time.perf_counter() - began


# The parts of a view, as (label, module, attribute path); a part nested in another is
# listed after it and indented. Wrapped only while --parts measures, to time each one.
PARTS: tuple[tuple[str, str, str], ...] = (
    ("decision (all of Guard._decide)", "bpoguard.guard.service", "Guard._decide"),
    ("  the state read (customer, call, budgets)", "bpoguard.guard.service", "_state"),
    ("  the facts", "bpoguard.guard.service", "Guard._facts"),
    ("  policy decision (PolicyStore.decide)", "bpoguard.guard.policy", "PolicyStore.decide"),
    ("    Cedar request built", "bpoguard.guard.policy", "cedar_request"),
    ("    Cedar entities", "bpoguard.guard.policy", "cedar_entities"),
    ("    Cedar evaluation (cedarpy.is_authorized)", "cedarpy", "is_authorized"),
    ("    reasons written", "bpoguard.guard.policy", "PolicySet._explain"),
    ("  budgets charged (usage.take)", "bpoguard.guard.usage", "take"),
    ("  audit (ledger entry, listeners)", "bpoguard.guard.service", "Guard._audit"),
    ("    ledger append", "bpoguard.ledger._ledger", "Ledger.append_within"),
    ("vault read and decrypt (Vault.get)", "bpoguard.guard.vault", "Vault.get"),
    ("masking", "bpoguard.guard.service", "mask_slice"),
    ("commit (SQLAlchemy and SQLite)", "sqlalchemy.engine.base", "RootTransaction.commit"),
    ("lake events (LakeWriter.write)", "bpoguard.events.lake", "LakeWriter.write"),
)


@contextmanager
def _timed_parts() -> Iterator[dict[str, list[int]]]:
    """Wrap each of PARTS to add its CPU and wall nanoseconds up; unwrapped on exit."""
    totals: dict[str, list[int]] = {label: [0, 0, 0] for label, _, _ in PARTS}
    undo: list[Callable[[], None]] = []
    for label, module_name, path in PARTS:
        owner: Any = importlib.import_module(module_name)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        if not hasattr(owner, name):
            continue  # a part the code no longer has
        original = getattr(owner, name)
        if isinstance(owner, type) and name not in owner.__dict__:
            undo.append(lambda o=owner, n=name: delattr(o, n))  # inherited: unshadow it
        else:
            undo.append(lambda o=owner, n=name, f=original: setattr(o, n, f))
        setattr(owner, name, _timer(original, totals[label]))
    try:
        yield totals
    finally:
        for restore in reversed(undo):
            restore()


def _timer(function: Any, total: list[int]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        try:
            return function(*args, **kwargs)
        finally:
            total[0] += time.thread_time_ns() - cpu
            total[1] += time.perf_counter_ns() - wall
            total[2] += 1

    return timed


def _parts(guard: Guard, requests: Sequence[AccessRequest]) -> None:
    """Time first views part by part: CPU and wall microseconds a view."""
    n = len(requests)
    with _timed_parts() as totals:
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        for request in requests:
            guard.view(request)
        cpu, wall = time.thread_time_ns() - cpu, time.perf_counter_ns() - wall
    print(f"first views part by part, {n:,} views (µs a view; wrapping adds about 0.3 µs a call)")
    print(f"  {'part':48s} {'CPU':>8s} {'wall':>8s} {'calls':>6s}")
    for label, (part_cpu, part_wall, calls) in totals.items():
        if calls:
            print(f"  {label:48s} {part_cpu / n / 1e3:8.1f} {part_wall / n / 1e3:8.1f} "
                  f"{calls / n:6.1f}")  # fmt: skip
    print(f"  {'the whole view':48s} {cpu / n / 1e3:8.1f} {wall / n / 1e3:8.1f}")


def report(name: str, samples: Sequence[float], took: float) -> None:
    median = statistics.median(samples) * 1e3
    p99 = percentile(samples, 0.99) * 1e3
    rate = len(samples) / took
    print(f"{name:46s} median {median:6.3f} ms   p99 {p99:6.3f} ms   {rate:7,.0f} views/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="2,000 views")
    parser.add_argument("--cpu", type=int, default=0, help="pin to this core (Linux)")
    parser.add_argument("--db", default=None, help="a PostgreSQL URL instead of SQLite")
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    parser.add_argument("--parts", action="store_true", help="time each part of first views")
    parser.add_argument("--group", type=int, default=0, help="also time group commits of N")
    parser.add_argument(
        "--fresh",
        type=int,
        default=0,
        help="also time N first views: each a new call with a customer new to the agent "
        "(no decision remembered for its facts, budget places taken; Cedar's answer may be)",
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    n = 2_000 if args.quick else args.views
    home = Path(tempfile.mkdtemp(prefix="bench-guard-")) / "ws"
    _world(home, args.db)
    with Workspace.open(home) as ws:
        vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
        lake = LakeWriter(ws.settings.lake_dir, source="guard")
        sink_ledger = Ledger.for_workspace(ws)
        sink = AuditSink(sink_ledger, lake, listeners=[CanaryListener()])
        guard = Guard(ws.store, vault, sink)
        requests = _calls(guard, ws)
        for request in requests:  # warm: caches, the first touch of each budget row
            guard.view(request)
        print(
            f"{ws.store.description.split(':')[0]}, {len(requests)} open calls, {n:,} views, one core"
        )
        statements = _count_statements(ws, guard, requests[:100])
        print(f"  {statements:.1f} SQL statements a view (BEGIN and COMMIT not counted)")

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
        samples, took = _time(guard, requests, n)
        if args.profile:
            profiler.disable()
        report("view: decide + slice + ledger entry committed", samples, took)
        if args.group:
            batching = AuditSink(sink_ledger, lake, args.group, listeners=[CanaryListener()])
            grouped, took = _time_grouped(ws, guard, batching, requests, n, args.group)
            report(f"view, {args.group} a transaction (group commit)", grouped, took)
        if args.fresh:
            desks = max(1, len(requests) // CUSTOMERS_PER_DESK)
            # Positions 8-389 of each agent's pool are new to it: half for first views
            # one transaction each, half for first views in group commits.
            per_desk = min(-(-args.fresh // desks), FRESH_POSITIONS // 2)
            fresh = _calls(guard, ws, per_desk, CUSTOMERS_PER_DESK, 91_000_000)[: args.fresh]
            samples, took = _time(guard, fresh, len(fresh))
            report("first view of a new customer", samples, took)
            if args.group:
                later = CUSTOMERS_PER_DESK + per_desk
                fresh = _calls(guard, ws, per_desk, later, 93_000_000)[: args.fresh]
                cpu = time.process_time()
                samples, took = _time_grouped(ws, guard, batching, fresh, len(fresh), args.group)
                cpu = time.process_time() - cpu
                print(f"  CPU time {cpu / len(fresh) * 1e3:.3f} ms a view "
                      f"({len(fresh) / cpu:,.0f} views a CPU-second)")  # fmt: skip
                report(f"first view, {args.group} a transaction", samples, took)
        if args.parts:
            # Positions 390-397 of agent k's run (which starts at 8k in its pool):
            # customers it has not seen (--fresh takes positions 8-389 at most).
            _parts(guard, _calls(guard, ws, 8, 390, 92_000_000))
        lake.commit()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")
    if args.profile:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(
            r"bpoguard|commit|is_authorized", 40
        )
        print(stream.getvalue())


if __name__ == "__main__":
    main()
