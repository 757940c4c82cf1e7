"""`bpoguard canary ...`: plant canary customers, list them, tie a report back to one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from bpoguard.cli._common import (
    DEFAULT_HOME,
    Db,
    Home,
    Json,
    command_group,
    emit_json,
    open_workspace,
    out,
)
from bpoguard.cli.vault import provider
from bpoguard.errors import InputError
from bpoguard.fields import FieldType
from bpoguard.guard import canary
from bpoguard.guard.vault import Vault

canary_app = command_group(
    "canary",
    "Canary customers: realistic records no real call reaches; touching one names the agent.",
)


@canary_app.command("plant")
def plant(
    client: Annotated[str, typer.Option("--client", help="The client's organisation id.")],
    count: Annotated[int, typer.Option("--count", help="How many canaries to add.")] = 10,
    shown_to: Annotated[
        list[str] | None,
        typer.Option(
            "--shown-to",
            help="Staff id to place canaries with (repeat; canaries are dealt out in turn).",
        ),
    ] = None,
    phones: Annotated[
        Path | None,
        typer.Option(
            "--phones", help="File of phone numbers the client monitors, one a line, one a canary."
        ),
    ] = None,
    email_domain: Annotated[
        str | None,
        typer.Option("--email-domain", help="A domain whose mail the client receives."),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Same seed, same canaries.")] = None,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Add realistic canary customers to a client's records, encrypted like the rest. [admin]"""
    options = canary.PlantOptions(
        count=count,
        planted_by="cli",
        shown_to=tuple(shown_to or ()),
        phones=_phones(phones) if phones else (),
        email_domain=email_domain,
        seed=seed,
    )
    now = dt.datetime.now(dt.UTC)
    with open_workspace(home, db) as ws, ws.store.engine.begin() as conn:
        planted = canary.plant(conn, Vault(provider(ws)), client, options, now)
    if json_out:
        emit_json({"planted": [c.as_json() for c in planted]})
        return
    out.print(f"Planted {len(planted)} canary customers for {client}:")
    for c in planted:
        placed = f", placed with {c.shown_to}" if c.shown_to else ""
        out.print(f"  customer {c.customer_id} ({c.ref}){placed}")
    if not phones:
        out.print(
            "Their phone numbers are synthetic: give --phones with numbers the client "
            "monitors so that a call to one can be reported."
        )


@canary_app.command("list")
def list_(
    client: Annotated[str | None, typer.Option("--client", help="Only this client's.")] = None,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """List canary customers, whom they were placed with, and who touched them. [analyst, auditor]"""
    with open_workspace(home, db) as ws, ws.store.engine.connect() as conn:
        found = canary.list_canaries(conn, client)
    if json_out:
        emit_json({"canaries": [c.as_json() for c in found]})
        return
    if not found:
        out.print("No canary customers planted")
    for c in found:
        touched = ", ".join(c.touched_by) or "nobody"
        out.print(
            f"{c.customer_id}  {c.client_id}  {c.ref}  placed with {c.shown_to or 'nobody'}"
            f"  touched by {touched}"
        )


@canary_app.command("show")
def show(
    customer_id: Annotated[int, typer.Argument(help="The canary's customer id.")],
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Show one canary and every time it reached a person. [analyst, auditor]"""
    with open_workspace(home, db) as ws, ws.store.engine.connect() as conn:
        found = canary.get_canary(conn, customer_id)
    if json_out:
        emit_json(found.as_json())
        return
    _print_story(found)


@canary_app.command("report")
def report(
    phone: Annotated[
        str | None, typer.Option("--phone", help="The number that was called.")
    ] = None,
    email: Annotated[
        str | None, typer.Option("--email", help="The address that was written to.")
    ] = None,
    on: Annotated[
        str | None, typer.Option("--on", help="When it happened (YYYY-MM-DD; today if not given).")
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="A short note (200 characters).")
    ] = None,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Enter a report ("someone called canary number X") and tie it to the agent. [analyst]"""
    if (phone is None) == (email is None):
        raise InputError("give exactly one of --phone or --email")
    field_, value = (FieldType.PHONE, phone) if phone is not None else (FieldType.EMAIL, email)
    assert value is not None
    reported_on = _date(on) if on else dt.date.today()
    now = dt.datetime.now(dt.UTC)
    with open_workspace(home, db) as ws, ws.store.engine.begin() as conn:
        matched = canary.report(conn, Vault(provider(ws)), field_, value, reported_on, now, note)
    if json_out:
        emit_json({"field": field_.value, "matches": [c.as_json() for c in matched]})
        return
    if not matched:
        out.print(f"No canary customer has that {field_.value.replace('_', ' ')}")
        return
    for c in matched:
        _print_story(c)


def _print_story(c: canary.Canary) -> None:
    out.print(f"Canary customer {c.customer_id} ({c.ref}) of {c.client_id}")
    out.print(f"  planted {c.planted_at:%Y-%m-%d %H:%M} UTC by {c.planted_by}")
    out.print(f"  placed with {c.shown_to or 'nobody'}")
    if c.touched_by:
        out.print(f"  TOUCHED BY {', '.join(c.touched_by)}")
    for e in c.exposures:
        decided = "" if e.allowed is None else (" allowed" if e.allowed else " denied")
        entry = f" (ledger entry {e.ledger_index})" if e.ledger_index is not None else ""
        out.print(f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.staff_id}  {e.kind}{decided}{entry}")


def _phones(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError("--on must be a date, YYYY-MM-DD") from None
