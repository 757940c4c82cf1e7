"""`bpoguard simulate cert`: CERT insider-threat format data with scenario 1-3 insiders.

`bpoguard simulate` stays what it was (the BPO world, run when no subcommand
is given); this module turns it into a group so that `cert` can sit under it.
"""

from __future__ import annotations

import datetime as dt
import inspect
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bpoguard.cli._common import Json, emit_json, err, out
from bpoguard.cli._progress import stages
from bpoguard.cli.simulate import simulate_command
from bpoguard.errors import InputError
from bpoguard.events.certgen import FORMATS, CertConfig, generate

simulate_app = typer.Typer(
    add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None
)


def _world(ctx: typer.Context, **options: Any) -> None:
    if ctx.invoked_subcommand is None:
        simulate_command(**options)


# The group's own options are exactly `simulate`'s, so `bpoguard simulate --agents 50`
# behaves as before; Typer reads them from this signature.
_signature = inspect.signature(simulate_command, eval_str=True)
_world.__signature__ = _signature.replace(  # type: ignore[attr-defined]
    parameters=[
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        *_signature.parameters.values(),
    ]
)
_world.__doc__ = simulate_command.__doc__
simulate_app.callback(invoke_without_command=True)(_world)


@simulate_app.command("cert")
def cert_command(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder to write the dataset into (new or empty).")
    ],
    users: Annotated[int, typer.Option(help="Staff in the organisation.")] = 200,
    days: Annotated[int, typer.Option(help="Days to play out.")] = 120,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 1,
    insiders: Annotated[
        int, typer.Option(help="Insiders, taking scenarios 1, 2, 3, 1, ... in turn.")
    ] = 3,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2010-01-04",
    fmt: Annotated[
        str, typer.Option("--format", help=f"Release format: {', '.join(FORMATS)}.")
    ] = "r4.2",
    json_out: Json = False,
) -> None:
    """Write CERT Insider Threat Test Dataset files with scenario 1-3 insiders. [admin]"""
    try:
        first = dt.date.fromisoformat(start)
    except ValueError:
        raise InputError(f"--start {start!r} is not a date (YYYY-MM-DD)") from None
    config = CertConfig(users=users, days=days, seed=seed, insiders=insiders, start=first, fmt=fmt)
    config.check()
    # Bars only at a terminal: a script reading stderr gets one line per error.
    with stages(not json_out and err.is_terminal) as progress:
        summary = generate(out_dir, config, progress)
    if json_out:
        emit_json(asdict(summary))
        return
    table = Table(title=f"CERT {summary.format} data in {summary.out}", show_header=False)
    for kind, count in summary.events.items():
        table.add_row(f"{kind}.csv", f"{count:,}")
    table.add_row("events", f"{summary.total_events:,}")
    table.add_row("staff (leavers)", f"{summary.users:,} ({summary.leavers})")
    for insider in summary.insiders:
        table.add_row(
            f"insider, scenario {insider['scenario']}",
            f"{insider['user']} {insider['start']} - {insider['end']}",
        )
    out.print(table)
