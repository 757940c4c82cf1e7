"""The root command and the workspace commands (init, info)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bpoguard import __version__, workspace
from bpoguard.cli._common import DEFAULT_HOME, Db, Home, Json, emit_json, err, open_workspace, out
from bpoguard.cli.canary import canary_app
from bpoguard.cli.demo import demo_command
from bpoguard.cli.detect import alerts_app, detect_command, evaluate_command, risk_app
from bpoguard.cli.export import export_app
from bpoguard.cli.importing import import_app
from bpoguard.cli.ledger import ledger_app
from bpoguard.cli.policy import policy_app
from bpoguard.cli.serve import serve_command
from bpoguard.cli.simulate_cert import simulate_app
from bpoguard.cli.token import device_app, token_app
from bpoguard.cli.trace import trace_app
from bpoguard.cli.vault import customers_app, keys_app

app = typer.Typer(
    name="bpoguard",
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


app.add_typer(simulate_app, name="simulate")
app.command("demo")(demo_command)
app.add_typer(ledger_app, name="ledger")
app.add_typer(customers_app, name="customers")
app.add_typer(keys_app, name="keys")
app.add_typer(canary_app, name="canary")
app.add_typer(export_app, name="export")
app.command("detect")(detect_command)
app.add_typer(risk_app, name="risk")
app.add_typer(alerts_app, name="alerts")
app.command("evaluate")(evaluate_command)
app.add_typer(import_app, name="import")
app.add_typer(policy_app, name="policy")
app.add_typer(trace_app, name="trace")
app.command("serve")(serve_command)
app.add_typer(token_app, name="token")
app.add_typer(device_app, name="device")


@app.command()
def upgrade(home: Home = DEFAULT_HOME, db: Db = None, json_out: Json = False) -> None:
    """Bring the workspace's database schema to this version; no row is lost. [admin]"""
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
    table = Table(title=f"bpoguard workspace {document['home']}", show_header=False)
    table.add_row("database", str(document["database"]))
    table.add_row("schema revision", str(document["schema_revision"]))
    table.add_row("ledger origin", str(document["ledger_origin"]))
    for name, count in counts.items():
        table.add_row(name, f"{count:,}")
    out.print(table)


def _counts(ws: workspace.Workspace) -> dict[str, int]:
    from bpoguard.store import inventory

    with ws.store.session() as session:
        return inventory.counts(session)
