"""The root command and the workspace commands (init, info)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Annotated

import typer
import typer.main
from typer import _click
from typer.core import TyperCommand, TyperGroup

from bpoguard import __version__
from bpoguard.cli._common import DEFAULT_HOME, Db, Home, Json, emit_json, err, open_workspace, out

if TYPE_CHECKING:
    from bpoguard.workspace import Workspace

# The workspace (and with it SQLAlchemy, 0.35 s) is imported by the commands that open
# one, not with the CLI: `bpoguard --help` and `--version` need neither.

# Every other command lives in its own module, imported only when it is called:
# `bpoguard trace leak` need not load Spark's, Ibis's or the simulator's imports. Name ->
# (module, a Typer group or a command function, the first paragraph of its help), in
# the order `bpoguard --help` lists them, capability by capability. The help is here so
# that listing the commands imports none of them (2.2 s of pandas, Ibis, Faker, ... for
# `bpoguard --help`); a test holds each one equal to the command's own.
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": (
        "bpoguard.cli.demo",
        "demo_command",
        "Run the demo: a fresh workspace and a simulated BPO with the seed stories' crimes. [admin]",
    ),
    "simulate": (
        "bpoguard.cli.simulate_cert",
        "simulate_app",
        "Simulate a BPO world into the workspace, with a ground-truth file. [admin]",
    ),
    "customers": (
        "bpoguard.cli.vault",
        "customers_app",
        "A client's customers in the encrypted vault: load a file, find by exact value.",
    ),
    "keys": (
        "bpoguard.cli.vault",
        "keys_app",
        "The vault's keys: status, and rotation of the key-encryption key.",
    ),
    "policy": (
        "bpoguard.cli.policy",
        "policy_app",
        "Each contract's Cedar policy set: show it, validate a text, set it, reset it.",
    ),
    "canary": (
        "bpoguard.cli.canary",
        "canary_app",
        "Canary customers: realistic records no real call reaches; touching one names the agent.",
    ),
    "export": (
        "bpoguard.cli.export",
        "export_app",
        "Export approvals: a supervisor lets one person export named customers' fields, once.",
    ),
    "serve": (
        "bpoguard.cli.serve",
        "serve_command",
        "Serve the REST API (/api/v1, OpenAPI at /openapi.json) and the agent desktop. [admin]",
    ),
    "token": (
        "bpoguard.cli.token",
        "token_app",
        "API tokens for staff and for the telephony/CRM system; stored only as hashes.",
    ),
    "device": (
        "bpoguard.cli.token",
        "device_app",
        "Device credentials: a registered device proves itself on every API request.",
    ),
    "ledger": (
        "bpoguard.cli.ledger",
        "ledger_app",
        "The tamper-evident ledger: checkpoints, proofs, verification.",
    ),
    "import": (
        "bpoguard.cli.importing",
        "import_app",
        "Import security logs (CERT insider-threat data, ...) into the event lake.",
    ),
    "detect": (
        "bpoguard.cli.detect",
        "detect_command",
        "Turn new events into features, alerts and risk scores (only new days recomputed). [analyst]",
    ),
    "risk": ("bpoguard.cli.detect", "risk_app", "Insider-risk scores per person, explained."),
    "alerts": (
        "bpoguard.cli.detect",
        "alerts_app",
        "Alerts raised by detection: list, show, triage.",
    ),
    "evaluate": (
        "bpoguard.cli.detect",
        "evaluate_command",
        "Measure detection against a ground truth: ranks, recall at 1%/5%, AUC, delay. "
        "[analyst, auditor]",
    ),
    "trace": (
        "bpoguard.cli.trace",
        "trace_app",
        "Find who leaked a dump of customer records, and the common point behind fraud reports.",
    ),
}


def _load(name: str) -> _click.Command:
    module, attribute, _ = _COMMANDS[name]
    found = getattr(importlib.import_module(module), attribute)
    if isinstance(found, typer.Typer):
        return typer.main.get_group(found)
    single = typer.Typer(add_completion=False, rich_markup_mode=None)
    single.command(name)(found)
    return typer.main.get_command(single)  # one command and no callback: the command itself


class _LazyGroup(TyperGroup):
    """The root group: the workspace commands here, the rest loaded from _COMMANDS on use."""

    _listing = False  # while the help lists the commands: summaries stand in for them

    def list_commands(self, ctx: _click.Context) -> list[str]:
        """The commands defined here, then the lazily loaded ones."""
        here = super().list_commands(ctx)
        return here + [name for name in _COMMANDS if name not in here]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        """The command called cmd_name, importing its module the first time."""
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            if self._listing:  # only its name and help are read: no need to import it
                return TyperCommand(cmd_name, help=_COMMANDS[cmd_name][2])
            self.add_command(_load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        """The list of commands in the help, each with the start of its help."""
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="bpoguard",
    cls=_LazyGroup,
    help="Keep outsourced customer data out of criminals' hands, and prove what happened.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"bpoguard {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """bpoguard: guard, record, detect, trace, respond, share."""
    if ctx.invoked_subcommand is None:
        out.print(ctx.get_help())


@app.command()
def init(
    home: Home = DEFAULT_HOME,
    db: Db = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing workspace (kept, renamed).")
    ] = False,
    json_out: Json = False,
) -> None:
    """Create a workspace: config, database schema, keys and event lake. [admin]"""
    from bpoguard import workspace

    result = workspace.init(home, db=db, force=force)
    if json_out:
        emit_json(
            {
                "home": str(result.home),
                "database": result.db,
                "replaced": str(result.replaced) if result.replaced else None,
            }
        )
        return
    if result.replaced:
        err.print(f"The previous workspace was kept at {result.replaced}")
    out.print(f"Workspace ready at {result.home}")
    out.print(f"Database: {result.db}")


@app.command()
def upgrade(home: Home = DEFAULT_HOME, db: Db = None, json_out: Json = False) -> None:
    """Bring the workspace's database schema to this version; no row is lost. [admin]"""
    from bpoguard import workspace

    before, after = workspace.upgrade(home, db)
    if json_out:
        emit_json({"from_revision": before, "to_revision": after})
        return
    if before == after:
        out.print(f"Schema already at {after}")
    else:
        out.print(f"Schema upgraded from {before} to {after}")


@app.command()
def info(home: Home = DEFAULT_HOME, db: Db = None, json_out: Json = False) -> None:
    """Show the workspace: database, schema revision, what it holds. [all roles]"""
    with open_workspace(home, db) as ws:
        counts = _counts(ws)
        document = {
            "home": str(ws.home),
            "database": ws.store.description,
            "schema_revision": ws.store.revision(),
            "ledger_origin": ws.settings.ledger_origin,
            "counts": counts,
        }
    if json_out:
        emit_json(document)
        return
    from rich.table import Table  # only the table view needs it

    table = Table(title=f"bpoguard workspace {document['home']}", show_header=False)
    table.add_row("database", str(document["database"]))
    table.add_row("schema revision", str(document["schema_revision"]))
    table.add_row("ledger origin", str(document["ledger_origin"]))
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    out.print(table)


def _counts(ws: Workspace) -> dict[str, int]:
    from bpoguard.store import inventory

    with ws.store.session() as session:
        return inventory.counts(session)
