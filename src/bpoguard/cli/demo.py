"""`bpoguard demo`: the main job on the embedded defaults."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bpoguard import demo
from bpoguard.cli._common import Json, emit_json, out
from bpoguard.cli._progress import stages
from bpoguard.cli.simulate import summary_table

DESCRIPTIONS = {
    "harvester": "agent reads bank, card and passport fields of customers no call asked for, at night",
    "mailbox": "client's shared mailboxes signed into from outside and from a rival; passwords changed",
    "leaver": "agent exports the client list, leaves, keeps the laptop and goes on reading records",
    "ring": "agents' customers later report scam calls",
}


def demo_command(
    home: Annotated[
        Path, typer.Option("--home", help="Demo workspace; a previous demo there is replaced.")
    ] = Path(".bpoguard-demo"),
    json_out: Json = False,
) -> None:
    """Run the demo: a fresh workspace and a simulated BPO with the seed stories' crimes. [admin]"""
    with stages(enabled=not json_out) as progress:
        result = demo.run(home, progress=progress)
    if json_out:
        emit_json(asdict(result))
        return
    out.print(f"\nDemo workspace: {result.home}\n")
    out.print(summary_table(result.simulated))
    sources = Table(title="Events in the lake, by source")
    sources.add_column("source")
    sources.add_column("events", justify="right")
    for source, count in sorted(result.events_by_source.items()):
        sources.add_row(source, f"{count:,}")
    out.print(sources)
    out.print(_crimes(result))
    out.print(
        "Caught: nothing yet. This build records and simulates; the guard, the ledger and\n"
        "detection are the next capabilities, and each will add its findings here."
    )


def _crimes(result: demo.DemoResult) -> Table:
    table = Table(title="Crimes injected (ground truth)")
    for column in ("scenario", "what happened", "who", "first act (UTC)", "events by them"):
        table.add_column(column)
    evidence = {e["scenario"]: e["events"] for e in result.scenario_evidence}
    for truth in result.simulated.scenarios:
        table.add_row(truth["scenario"], DESCRIPTIONS[truth["scenario"]],
                      ", ".join(truth["persons"]), truth["first_act"] or "-",
                      f"{evidence.get(truth['scenario'], 0):,}")  # fmt: skip
    return table
