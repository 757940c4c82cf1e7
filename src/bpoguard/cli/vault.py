"""`bpoguard customers ...` and `bpoguard keys ...`: the guard's encrypted vault (guard).

The key-encryption key comes from the workspace's keys folder, or from the
environment variable BPOGUARD_KEK (base64; several separated by commas, the
current one first), read here at the edge and passed in.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Connection, select

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
from bpoguard.cli._progress import stages
from bpoguard.errors import InputError
from bpoguard.fields import FieldType
from bpoguard.guard.keys import KeyfileProvider, KeyProvider
from bpoguard.guard.vault import INDEXED, KeyStatus, Rotation, Vault, key_status
from bpoguard.guard.vault import rewrap_all as _rewrap_all
from bpoguard.guard.vault import rotate_kek as _rotate_kek
from bpoguard.store import models as m
from bpoguard.workspace import Workspace

KEK_ENV = "BPOGUARD_KEK"

customers_app = command_group(
    "customers", "A client's customers in the encrypted vault: load a file, find by exact value."
)
keys_app = command_group(
    "keys", "The vault's keys: status, and rotation of the key-encryption key."
)

Client = Annotated[str, typer.Option("--client", help="The client's organisation id (org-...).")]


def provider(ws: Workspace) -> KeyProvider:
    """The KEK provider: BPOGUARD_KEK when set, else the workspace's key files."""
    text = os.environ.get(KEK_ENV)
    if text:
        return KeyfileProvider.from_base64(text, KEK_ENV)
    return KeyfileProvider.from_dir(ws.settings.keys_dir)


@customers_app.command("load")
def load(
    path: Annotated[Path, typer.Argument(help="CSV with a header: ref, country, field names.")],
    client: Client,
    country: Annotated[
        str | None,
        typer.Option(help="Country of rows without a country column (the client's by default)."),
    ] = None,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Load a client's customer file: every value validated, all or nothing. [admin]"""
    # Only this command loads files: `trace leak`, which imports this module for its key
    # provider, need not import the loader (about 0.02 s).
    from bpoguard.guard.loader import load_customers

    # A bar only for a person watching: scripts get stderr for the one-line error alone.
    show = not json_out and err.is_terminal
    with open_workspace(home, db) as ws, stages(enabled=show) as progress:
        vault = Vault(provider(ws))
        with ws.store.engine.begin() as conn:
            report = load_customers(
                conn,
                vault,
                client,
                path,
                country=country,
                progress=lambda done, total: progress("loading", done, total),
            )
    if json_out:
        emit_json(asdict(report))
        return
    out.print(
        f"Loaded {report.rows:,} customers of {report.client_id} "
        f"({report.created:,} new, {report.existing:,} already known), "
        f"{report.values:,} values encrypted; fields: {', '.join(report.fields)}"
    )


@customers_app.command("find")
def find(
    value: Annotated[
        str, typer.Argument(help="The value to match exactly; '-' reads it from stdin.")
    ],
    client: Client,
    field: Annotated[
        str, typer.Option("--field", help=f"One of {', '.join(sorted(f.value for f in INDEXED))}.")
    ],
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Find a client's customers by an exact value (blind index); prints ids and refs only. [analyst]"""
    field_ = _field(field)
    wanted = sys.stdin.readline().rstrip("\r\n") if value == "-" else value
    with open_workspace(home, db) as ws, ws.store.engine.connect() as conn:
        ids = Vault(provider(ws)).lookup(conn, client, field_, wanted)
        refs = _refs(conn, ids)
    matches = [{"customer_id": i, "ref": refs.get(i)} for i in ids]
    if json_out:
        emit_json({"client_id": client, "field": field_.value, "matches": matches})
        return
    if not matches:
        out.print("No customer matches")
    for match in matches:
        out.print(f"{match['customer_id']}  {match['ref']}")


@keys_app.command("status")
def status(home: Home = DEFAULT_HOME, db: Db = None, json_out: Json = False) -> None:
    """Show which key-encryption key wraps the clients' keys, and what the vault holds. [admin, auditor]"""
    with open_workspace(home, db) as ws, ws.store.engine.connect() as conn:
        document = _status_json(key_status(conn, provider(ws)))
    if json_out:
        emit_json(document)
        return
    out.print(f"current KEK      {document['kek_id']}")
    out.print(f"clients          {document['clients']:,}")
    out.print(f"values           {document['values']:,}")
    out.print(f"index entries    {document['index_entries']:,}")
    for kek, count in sorted(document["wrapped_by"].items()):
        out.print(f"wrapped by {kek}  {count:,} client keys")
    if document["pending"]:
        out.print(
            f"{document['pending']} client keys not under the current KEK: bpoguard keys rotate"
        )
    for path in document["retirable"]:
        out.print(f"no longer needed: {path}")


@keys_app.command("rotate")
def rotate(home: Home = DEFAULT_HOME, db: Db = None, json_out: Json = False) -> None:
    """New key-encryption key; every client key re-wrapped under it, no downtime. [admin]"""
    with open_workspace(home, db) as ws:
        if os.environ.get(KEK_ENV):
            # KEKs given in the environment: the operator brings the new one first.
            rotation = _rewrap_all(ws.store.engine, provider(ws))
        else:
            rotation = _rotate_kek(ws.store.engine, ws.settings.keys_dir)
    document = _rotation_json(rotation)
    if json_out:
        emit_json(document)
        return
    if rotation.created is not None:
        out.print(f"New key-encryption key {rotation.created.key_id} in {rotation.created.path}")
    out.print(
        f"Re-wrapped {rotation.rewrapped:,} client keys; all {rotation.status.client_keys:,} "
        f"are under {rotation.status.kek_id}"
    )
    for kek in rotation.status.retirable:
        err.print(
            f"{kek.path} ({kek.key_id}) is no longer needed to read the vault. Keep it while "
            f"backups taken before now exist, then retire it: move it to offline escrow "
            f"(mv {kek.path} /your/escrow/)"
        )


def _field(name: str) -> FieldType:
    try:
        field_ = FieldType(name.strip().lower())
    except ValueError:
        raise InputError(f"--field {name!r} is not a field type") from None
    if field_ not in INDEXED:
        known = ", ".join(sorted(f.value for f in INDEXED))
        raise InputError(f"--field {field_.value} is not indexed; indexed: {known}")
    return field_


def _refs(conn: Connection, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = conn.execute(select(m.Customer.id, m.Customer.ref).where(m.Customer.id.in_(ids)))
    return {row.id: row.ref for row in rows}


def _status_json(status: KeyStatus) -> dict[str, Any]:
    return {
        "kek_id": status.kek_id,
        "clients": status.clients,
        "client_keys": status.client_keys,
        "values": status.values,
        "index_entries": status.index_entries,
        "wrapped_by": status.wrapped_by,
        "pending": status.pending,
        "kek_files": [
            {"version": f.version, "path": str(f.path), "key_id": f.key_id}
            for f in status.kek_files
        ],
        "retirable": [str(f.path) for f in status.retirable],
    }


def _rotation_json(rotation: Rotation) -> dict[str, Any]:
    created = rotation.created
    return {
        "created": None
        if created is None
        else {"version": created.version, "path": str(created.path), "key_id": created.key_id},
        "rewrapped": rotation.rewrapped,
        "status": _status_json(rotation.status),
    }


__all__ = ["customers_app", "keys_app"]
