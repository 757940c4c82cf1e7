"""`bpoguard import ...`: bring the logs a BPO already keeps into the event lake."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bpoguard.cli._common import DEFAULT_HOME, Db, Home, Json, emit_json, err, open_workspace, out
from bpoguard.cli._progress import stages
from bpoguard.errors import InputError
from bpoguard.events.importers import (
    ImportReport,
    import_assets,
    import_cert,
    import_entra,
    import_events,
    import_hr,
    import_m365,
    load_mapping,
)

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
    raw: Annotated[
        bool,
        typer.Option(
            "--raw/--no-raw", help="Keep each source line in raw (--no-raw: half the lake, faster)."
        ),
    ] = True,
    json_out: Json = False,
) -> None:
    """Import CERT Insider Threat Test Dataset files (r4.2, r6.2). [admin, analyst]"""
    with open_workspace(home, db) as ws, stages(_bars(json_out)) as progress:
        report = import_cert(ws, folder, skip_bad=skip_bad, progress=progress, keep_raw=raw)
    show(report, json_out)


Files = Annotated[list[Path], typer.Argument(help="Files to import, each whole or not at all.")]


def _existing(files: list[Path]) -> list[Path]:
    for path in files:
        if not path.is_file():
            raise InputError(f"{path} is not a file")
    return files


@import_app.command("m365")
def m365_command(
    files: Files,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    skip_bad: SkipBad = False,
    json_out: Json = False,
) -> None:
    """Import Microsoft 365 unified audit log CSV exports (AuditData column). [admin, analyst]"""
    with open_workspace(home, db) as ws, stages(_bars(json_out)) as progress:
        report = import_m365(ws, _existing(files), skip_bad=skip_bad, progress=progress)
    show(report, json_out)


@import_app.command("entra")
def entra_command(
    files: Files,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    skip_bad: SkipBad = False,
    json_out: Json = False,
) -> None:
    """Import Microsoft Entra ID sign-in logs (JSON, JSON Lines or CSV). [admin, analyst]"""
    with open_workspace(home, db) as ws, stages(_bars(json_out)) as progress:
        report = import_entra(ws, _existing(files), skip_bad=skip_bad, progress=progress)
    show(report, json_out)


@import_app.command("hr")
def hr_command(
    files: Files,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    skip_bad: SkipBad = False,
    json_out: Json = False,
) -> None:
    """Import HR registers: person,event (joiner|notice|leaver),date[,leaving_date]. [admin]"""
    with open_workspace(home, db) as ws, stages(_bars(json_out)) as progress:
        report = import_hr(ws, _existing(files), skip_bad=skip_bad, progress=progress)
    show(report, json_out)


@import_app.command("assets")
def assets_command(
    files: Files,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    skip_bad: SkipBad = False,
    json_out: Json = False,
) -> None:
    """Import asset registers: asset,person,event (issued|returned|lost),date. [admin]"""
    with open_workspace(home, db) as ws, stages(_bars(json_out)) as progress:
        report = import_assets(ws, _existing(files), skip_bad=skip_bad, progress=progress)
    show(report, json_out)


@import_app.command("events")
def events_command(
    files: Files,
    mapping: Annotated[
        Path, typer.Option("--mapping", help="TOML file mapping the log's fields (docs/events.md).")
    ],
    home: Home = DEFAULT_HOME,
    db: Db = None,
    skip_bad: SkipBad = False,
    json_out: Json = False,
) -> None:
    """Import any CSV or JSON Lines log with a TOML mapping file. [admin, analyst]"""
    described = load_mapping(mapping)
    with open_workspace(home, db) as ws, stages(_bars(json_out)) as progress:
        report = import_events(
            ws, _existing(files), described, skip_bad=skip_bad, progress=progress
        )
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
