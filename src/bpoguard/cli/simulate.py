"""`bpoguard simulate`: a synthetic BPO world with the seed stories' crimes in it."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from bpoguard.cli._common import DEFAULT_HOME, Db, Home, Json, emit_json, open_workspace, out
from bpoguard.cli._progress import stages
from bpoguard.errors import InputError
from bpoguard.simulate.run import SimConfig, SimSummary, simulate


def simulate_command(
    home: Home = DEFAULT_HOME,
    db: Db = None,
    agents: Annotated[
        int, typer.Option(help="Agents (supervisors come on top, one per 12).")
    ] = 200,
    customers: Annotated[int, typer.Option(help="Customers, split across the clients.")] = 20_000,
    days: Annotated[int, typer.Option(help="Days to play out.")] = 7,
    seed: Annotated[int, typer.Option(help="Same seed, same world.")] = 1,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2026-03-02",
    scenarios: Annotated[
        str, typer.Option(help="Crimes to inject: harvester,mailbox,leaver,ring, all or none.")
    ] = "all",
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="Scenario setting, e.g. --set ring.size=4 (repeatable)."),
    ] = None,
    guard: Annotated[
        bool, typer.Option("--guard/--no-guard", help="Have the guard decide every request.")
    ] = False,
    json_out: Json = False,
) -> None:
    """Simulate a BPO world into the workspace, with a ground-truth file. [admin]"""
    try:
        first = dt.date.fromisoformat(start)
    except ValueError:
        raise InputError(f"--start {start!r} is not a date (YYYY-MM-DD)") from None
    config = SimConfig(
        agents=agents,
        customers=customers,
        days=days,
        seed=seed,
        start=first,
        scenarios=scenarios,
        settings=tuple(settings or ()),
        guard=guard,
    )
    config.check()
    with open_workspace(home, db) as ws, stages() as progress:
        summary = simulate(ws, config, progress)
    if json_out:
        emit_json(asdict(summary))
        return
    out.print(summary_table(summary))
    out.print(f"Ground truth: {summary.files['truth']}")


def summary_table(summary: SimSummary) -> Table:
    """The simulated world in one table, for people."""
    table = Table(title="Simulated world", show_header=False)
    for label, value in (
        ("sites", summary.sites),
        ("clients", summary.clients),
        ("staff (agents)", f"{summary.staff:,} ({summary.agents:,})"),
        ("customers", f"{summary.customers:,}"),
        ("interactions", f"{summary.interactions:,}"),
        ("record requests (denied)", f"{summary.requests:,} ({summary.denied:,})"),
        ("events in the lake", f"{summary.events:,}"),
        ("ledger entries (signed)", f"{summary.ledger_entries:,}"),
        ("joiners / leavers", f"{summary.joiners} / {summary.leavers}"),
    ):
        table.add_row(label, str(value))
    return table
