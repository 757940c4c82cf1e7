"""`bpoguard import ...`: bring the logs a BPO already keeps into the event lake."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bpoguard.cli._common import DEFAULT_HOME, Db, Home, Json, emit_json, err, open_workspace, out
from bpoguard.cli._progress import stages
from bpoguard.events.importers import ImportReport, import_cert

import_app = typer.Typer(
    help="Import security logs (CERT insider-threat data, ...) into the event lake.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SkipBad = Annotated[
    bool,
    typer.Option(
        "--skip-bad",
        help="Skip bad lines and count them, instead of rejecting the file at the first one.",
    ),
]


@import_app.command("cert")
def cert_command(
    folder: Annotated[
        Path, typer.Argument(help="A CERT r4.2 / r6.2 dataset folder, or one of its CSV files.")
    ],
    home: Home = DEFAULT_HOME,
    db: Db = None,
    skip_bad: SkipBad = False,
    json_out: Json = False,
) -> None:
    """Import CERT Insider Threat Test Dataset files (r4.2, r6.2). [admin, analyst]"""
    with open_workspace(home, db) as ws, stages(_bars(json_out)) as progress:
        report = import_cert(ws, folder, skip_bad=skip_bad, progress=progress)
    show(report, json_out)


def _bars(json_out: bool) -> bool:
    # Bars only for a person at a terminal: a script reading stderr gets one line per error.
    return not json_out and err.is_terminal


def show(report: ImportReport, json_out: bool) -> None:
    """Print an import's report: one JSON document, or a table and its notes."""
    if json_out:
        emit_json(report.as_dict())
        return
    table = Table(title="Import", show_header=True)
    for column in ("file", "kind", "status", "rows", "skipped lines"):
        table.add_column(column)
    for f in report.files:
        table.add_row(f.name, f.kind, f.status, f"{f.rows:,}", f"{f.skipped:,}")
    out.print(table)
    for f in report.files:
        for line in f.bad_lines:
            err.print(f"skipped: {line}")
    for note in report.notes:
        err.print(note)
