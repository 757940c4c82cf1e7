"""Vault benchmarks: load rate, get and look-up latency, rotation time, bytes per customer.

    .venv/bin/python benchmarks/bench_vault.py [--customers 100000] [--clients 1000] [--workdir DIR]

A simulated workspace (SQLite) with N customers is built first (not timed);
its four customer files are then loaded through the loader, one transaction
each, as `bpoguard customers load` does. Latencies are per call with a
connection already open, the Vault's key cache warm unless said otherwise.
Rotation is timed for the four simulated clients and for extra synthetic
clients (keys only) so that there are --clients in all.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sqlalchemy import func, insert, select, text

from bpoguard import workspace
from bpoguard.fields import FieldType as F
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.loader import load_customers
from bpoguard.guard.vault import Vault, rotate_kek
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.store import models as m


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(samples: list[float], call: Callable[[], object]) -> None:
    start = time.perf_counter()
    call()
    samples.append(time.perf_counter() - start)


def build(home: Path, customers: int) -> workspace.Workspace:
    workspace.init(home)
    ws = workspace.Workspace.open(home)
    simulate(ws, SimConfig(agents=24, customers=customers, days=1, scenarios="none"))
    return ws


def load_all(ws: workspace.Workspace, vault: Vault) -> tuple[int, float]:
    rows = 0
    start = time.perf_counter()
    for path in sorted(ws.settings.sim_dir.glob("customers-*.csv")):
        client = "org-" + path.stem.removeprefix("customers-")
        with ws.store.engine.begin() as conn:
            rows += load_customers(conn, vault, client, path).rows
    return rows, time.perf_counter() - start


def sample_rows(ws: workspace.Workspace, count: int) -> list[dict[str, str]]:
    path = ws.settings.sim_dir / "customers-albion.csv"
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return random.Random(7).sample(rows, min(count, len(rows)))


def latencies(ws: workspace.Workspace, keys_dir: Path, rows: list[dict[str, str]]) -> None:
    ids = [int(r["customer_id"]) for r in rows]
    gets: list[float] = []
    cold: list[float] = []
    looks: list[float] = []
    slices: list[float] = []
    with ws.store.engine.connect() as conn:
        vault = Vault(KeyfileProvider.from_dir(keys_dir))
        for i in ids:
            timed(gets, partial(vault.get, conn, i, [F.CARD_NUMBER]))
        fields = [F.NAME, F.DATE_OF_BIRTH, F.ADDRESS, F.SORT_CODE, F.ACCOUNT_NUMBER, F.BALANCE]
        for i in ids:
            timed(slices, partial(vault.get, conn, i, fields))
        for r in rows:
            national = "0" + r["phone"].removeprefix("+44")
            timed(looks, partial(vault.lookup, conn, "org-albion", F.PHONE, national))
        for i in ids[:200]:
            fresh = Vault(KeyfileProvider.from_dir(keys_dir))
            timed(cold, partial(fresh.get, conn, i, [F.CARD_NUMBER]))
    for name, samples in (
        ("get one field (warm)", gets),
        ("get six fields (warm)", slices),
        ("get one field (new Vault, cold key cache)", cold),
        ("lookup phone, national form", looks),
    ):
        median = statistics.median(samples) * 1e6
        p99 = percentile(samples, 0.99) * 1e6
        print(f"{name:<45} median {median:8.1f} us   p99 {p99:8.1f} us   n={len(samples)}")


def storage(ws: workspace.Workspace, customers: int) -> None:
    db = Path(ws.settings.db_url.removeprefix("sqlite:///"))
    with ws.store.engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        per_table = {
            name: conn.execute(
                text("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE :n"), {"n": f"%{name}%"}
            ).scalar()
            or 0
            for name in ("vault_values", "vault_index", "vault_keys")
        }
        values = conn.scalar(text("SELECT COUNT(*) FROM vault_values")) or 0
    total = sum(per_table.values())
    print(f"vault storage: {total / customers:,.0f} bytes per customer "
          f"({per_table['vault_values'] / customers:,.0f} values incl. PK index, "
          f"{per_table['vault_index'] / customers:,.0f} blind index), "
          f"{values / customers:.1f} values per customer; whole file {db.stat().st_size:,} bytes")  # fmt: skip


def add_clients(ws: workspace.Workspace, vault: Vault, count: int) -> None:
    with ws.store.engine.begin() as conn:
        conn.execute(
            insert(m.Organisation),
            [{"id": f"org-bench-{i}", "name": f"Bench {i}", "kind": m.OrgKind.CLIENT,
              "country": "GB", "networks": []} for i in range(count)],
        )  # fmt: skip
        for i in range(count):
            vault.ensure_keys(conn, f"org-bench-{i}")


def rotation(ws: workspace.Workspace, keys_dir: Path, clients: int) -> None:
    start = time.perf_counter()
    result = rotate_kek(ws.store.engine, keys_dir)
    took = time.perf_counter() - start
    print(f"rotate KEK: {result.rewrapped:,} client keys ({result.status.clients:,} clients) "
          f"re-wrapped in {took * 1000:,.0f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-vault-"))
    start = time.perf_counter()
    ws = build(work / "ws", args.customers)
    print(f"simulated {args.customers:,} customers in {time.perf_counter() - start:.1f} s (setup)")
    keys_dir = ws.settings.keys_dir
    vault = Vault(KeyfileProvider.from_dir(keys_dir))
    rows, took = load_all(ws, vault)
    with ws.store.engine.connect() as conn:
        values = conn.scalar(select(func.count()).select_from(text("vault_values")))
    print(
        f"load: {rows:,} customers, {values:,} values in {took:.1f} s = {rows / took:,.0f} rows/s"
    )
    latencies(ws, keys_dir, sample_rows(ws, 2_000))
    storage(ws, args.customers)
    rotation(ws, keys_dir, 4)
    add_clients(ws, vault, max(0, args.clients - 4))
    rotation(ws, keys_dir, args.clients)
    ws.close()


if __name__ == "__main__":
    main()
