"""`bpoguard token ...` and `bpoguard device enrol`: credentials for the web API (web)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from bpoguard.cli._common import (
    DEFAULT_HOME,
    Db,
    Home,
    Json,
    command_group,
    emit_json,
    err,
    open_workspace,
    out,
)
from bpoguard.web import credentials

token_app = command_group(
    "token", "API tokens for staff and for the telephony/CRM system; stored only as hashes."
)
device_app = command_group(
    "device", "Device credentials: a registered device proves itself on every API request."
)


@token_app.command("create")
def create(
    staff: Annotated[
        str | None, typer.Option("--staff", help="The staff member the token speaks for.")
    ] = None,
    system: Annotated[
        str | None,
        typer.Option("--system", help="Name of an integration (e.g. crm) that opens interactions."),
    ] = None,
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in", help="Lifetime: 30m, 12h, 7d (12h for staff, 90d for systems)."
        ),
    ] = None,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Mint a token and print its secret once; only its hash is kept. [admin]"""
    lifetime = credentials.parse_lifetime(expires_in) if expires_in else None
    now = dt.datetime.now(dt.UTC)
    with open_workspace(home, db) as ws, ws.store.engine.begin() as conn:
        info, secret = credentials.create_token(
            conn, now, staff_id=staff, system=system, lifetime=lifetime
        )
    if json_out:
        emit_json({**info.as_json(now), "token": secret})
        return
    out.print(secret)
    err.print(
        f"Token {info.id} for {info.kind.value} {info.name}, expires {info.expires_at:%Y-%m-%d %H:%M} "
        "UTC. It is shown only now: bpoguard keeps its hash, not the token."
    )


@token_app.command("list")
def list_(
    staff: Annotated[str | None, typer.Option("--staff", help="Only this person's.")] = None,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """List tokens (id, whom they speak for, expiry, state); never a secret. [admin, auditor]"""
    now = dt.datetime.now(dt.UTC)
    with open_workspace(home, db) as ws, ws.store.engine.connect() as conn:
        tokens = credentials.list_tokens(conn, staff)
    if json_out:
        emit_json({"tokens": [t.as_json(now) for t in tokens]})
        return
    if not tokens:
        out.print("No tokens")
    for t in tokens:
        out.print(
            f"{t.id}  {t.kind.value:6}  {t.name:20}  expires {t.expires_at:%Y-%m-%d %H:%M}  "
            f"{t.state(now)}"
        )


@token_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (from token list).")],
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Revoke a token at once: every later request with it gets 401. [admin]"""
    now = dt.datetime.now(dt.UTC)
    with open_workspace(home, db) as ws, ws.store.engine.begin() as conn:
        info = credentials.revoke_token(conn, token_id, now)
    if json_out:
        emit_json(info.as_json(now))
        return
    out.print(f"Token {info.id} ({info.kind.value} {info.name}) revoked")


@device_app.command("enrol")
def enrol(
    device: Annotated[str, typer.Option("--device", help="The device's asset tag.")],
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Issue a device credential (shown once); enrolling again revokes the old one. [admin]"""
    now = dt.datetime.now(dt.UTC)
    with open_workspace(home, db) as ws, ws.store.engine.begin() as conn:
        enrolment, secret = credentials.enrol_device(conn, device, now)
    if json_out:
        emit_json(
            {
                "id": enrolment.id,
                "device_id": enrolment.device_id,
                "holder_id": enrolment.holder_id,
                "created_at": enrolment.created_at.isoformat(),
                "replaced": enrolment.replaced,
                "credential": secret,
            }
        )
        return
    out.print(secret)
    err.print(
        f"Device {enrolment.device_id} (issued to {enrolment.holder_id}) enrolled as "
        f"{enrolment.id}; present the credential in the X-Device-Credential header. "
        "It is shown only now."
    )
