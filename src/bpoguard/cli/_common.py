"""What every command shares: the workspace options, JSON output, consoles."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bpoguard.workspace import Workspace

# Tables and summaries go to stdout; progress bars and notes to stderr, so that
# `--json` output on stdout is always exactly one JSON document.
out = Console(highlight=False, markup=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)

Home = Annotated[
    Path,
    typer.Option(
        "--home",
        envvar="BPOGUARD_HOME",
        help="Workspace folder (config, database, keys, event lake).",
        show_default=True,
    ),
]
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="BPOGUARD_DB",
        help="Database URL (postgresql://...) instead of the workspace's SQLite file.",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]

DEFAULT_HOME = Path(".bpoguard")


def command_group(name: str, help_text: str) -> typer.Typer:
    """A `bpoguard NAME ...` group: prints its help when called bare; plain-text help."""
    return typer.Typer(
        name=name,
        help=help_text,
        add_completion=False,
        no_args_is_help=True,
        rich_markup_mode=None,
    )


def open_workspace(home: Path, db: str | None) -> Workspace:
    """Open the workspace a command was pointed at (errors are the user's to fix)."""
    return Workspace.open(home, db)


def emit_json(document: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
