"""Tokens and device credentials: minted once, stored as hashes, refused when not good."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bpoguard.cli import main
from bpoguard.store import models as m
from bpoguard.web import credentials
from bpoguard.web.credentials import AuthError, CredentialError, TokenKind
from bpoguard.workspace import Workspace
from web._world import desks

NOW = dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)


def _db(home: Path) -> bytes:
    return (home / "bpoguard.db").read_bytes() + (
        (home / "bpoguard.db-wal").read_bytes() if (home / "bpoguard.db-wal").exists() else b""
    )


def test_token_is_stored_only_as_its_hash_and_authenticates(world: Path) -> None:
    staff = desks(world)[0].staff
    with Workspace.open(world) as ws, ws.store.engine.begin() as conn:
        info, secret = credentials.create_token(conn, NOW, staff_id=staff)
    assert secret.startswith(f"bpg_{info.id}_")
    assert secret.encode() not in _db(world)
    with sqlite3.connect(world / "bpoguard.db") as raw:
        digest = raw.execute("SELECT digest FROM web_tokens WHERE id = ?", (info.id,)).fetchone()
    assert len(digest[0]) == 32
    with Workspace.open(world) as ws, ws.store.engine.connect() as conn:
        principal = credentials.authenticate(conn, secret, NOW + dt.timedelta(hours=1))
    assert (principal.kind, principal.staff_id) == (TokenKind.STAFF, staff)


def test_expired_revoked_unknown_and_altered_tokens_are_refused(world: Path) -> None:
    staff = desks(world)[1].staff
    with Workspace.open(world) as ws, ws.store.engine.begin() as conn:
        info, secret = credentials.create_token(
            conn, NOW, staff_id=staff, lifetime=dt.timedelta(minutes=30)
        )
        with pytest.raises(AuthError, match="has expired"):
            credentials.authenticate(conn, secret, NOW + dt.timedelta(minutes=30))
        altered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
        with pytest.raises(AuthError, match=f"unknown token {info.id}"):
            credentials.authenticate(conn, altered, NOW)
        with pytest.raises(AuthError, match="unknown token"):
            credentials.authenticate(conn, "bpg_0123456789abcdef_" + "x" * 43, NOW)
        with pytest.raises(AuthError, match="malformed token"):
            credentials.authenticate(conn, "hunter2", NOW)
        credentials.revoke_token(conn, info.id, NOW)
        with pytest.raises(AuthError, match="was revoked") as raised:
            credentials.authenticate(conn, secret, NOW)
    assert raised.value.staff_id == staff
    assert secret not in str(raised.value)


def test_tokens_for_unknown_staff_and_leavers_are_not_minted(world: Path) -> None:
    # connect(), never committed: the changes made to the shared world roll back.
    with Workspace.open(world) as ws, ws.store.engine.connect() as conn:
        with pytest.raises(CredentialError, match="no staff member"):
            credentials.create_token(conn, NOW, staff_id="NOBODY-1")
        with pytest.raises(CredentialError, match="exactly one"):
            credentials.create_token(conn, NOW)
        leaver = conn.execute(select(m.Staff.id).order_by(m.Staff.id.desc())).scalars().first()
        conn.execute(update(m.Staff).where(m.Staff.id == leaver).values(left=dt.date(2026, 3, 1)))
        with pytest.raises(CredentialError, match="left on 2026-03-01"):
            credentials.create_token(conn, NOW, staff_id=leaver)
        conn.rollback()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12h", dt.timedelta(hours=12)),
        ("30m", dt.timedelta(minutes=30)),
        ("7d", dt.timedelta(days=7)),
    ],
)
def test_lifetimes_parse(text: str, expected: dt.timedelta) -> None:
    assert credentials.parse_lifetime(text) == expected


@pytest.mark.parametrize("text", ["0h", "12 hours", "400d", "-1h", ""])
def test_bad_lifetimes_are_refused(text: str) -> None:
    with pytest.raises(CredentialError):
        credentials.parse_lifetime(text)


def test_device_credential_names_its_device_and_reenrolment_revokes_the_old(world: Path) -> None:
    desk = desks(world)[2]
    with Workspace.open(world) as ws, ws.store.engine.begin() as conn:
        _, old = credentials.enrol_device(conn, desk.device, NOW)
        assert credentials.device_of(conn, old) == desk.device
        second, new = credentials.enrol_device(conn, desk.device, NOW)
        assert second.replaced == 1 and second.holder_id == desk.staff
        assert credentials.device_of(conn, new) == desk.device
        with pytest.raises(AuthError, match="was revoked"):
            credentials.device_of(conn, old)
        with pytest.raises(AuthError, match="malformed device credential"):
            credentials.device_of(conn, new.replace("bpd_", "bpg_"))
    assert new.encode() not in _db(world)


def test_lost_unissued_and_unknown_devices_are_not_enrolled(world: Path) -> None:
    with Workspace.open(world) as ws, ws.store.engine.connect() as conn:
        with pytest.raises(CredentialError, match="no device"):
            credentials.enrol_device(conn, "NO-SUCH-DEVICE", NOW)
        device = conn.execute(select(m.Device.id).order_by(m.Device.id)).scalars().first()
        assert device is not None
        conn.execute(update(m.Device).where(m.Device.id == device).values(status="lost"))
        with pytest.raises(CredentialError, match="reported lost"):
            credentials.enrol_device(conn, device, NOW)
        conn.execute(
            update(m.Device).where(m.Device.id == device).values(status="in_stock", holder_id=None)
        )
        with pytest.raises(CredentialError, match="in stock, not issued"):
            credentials.enrol_device(conn, device, NOW)
        conn.rollback()


def test_cli_token_create_list_revoke_and_device_enrol(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desk = desks(world)[3]
    home = ["--home", str(world)]
    assert (
        main(["token", "create", "--staff", desk.staff, "--expires-in", "2h", "--json", *home]) == 0
    )
    created = json.loads(capsys.readouterr().out)
    assert created["token"].startswith("bpg_") and created["state"] == "active"
    assert main(["token", "list", "--staff", desk.staff, "--json", *home]) == 0
    listed = capsys.readouterr().out
    assert created["id"] in listed and created["token"] not in listed
    assert main(["token", "revoke", created["id"], "--json", *home]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "revoked"
    assert main(["device", "enrol", "--device", desk.device, "--json", *home]) == 0
    assert json.loads(capsys.readouterr().out)["credential"].startswith("bpd_")
    assert main(["token", "create", "--system", "crm", *home]) == 0
    shown = capsys.readouterr()
    assert shown.out.startswith("bpg_") and "shown only now" in shown.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["token", "create", "--staff", "NOBODY-1"], "no staff member 'NOBODY-1'"),
        (["token", "create", "--staff", "X", "--expires-in", "forever"], "not understood"),
        (["token", "revoke", "0000000000000000"], "no token with id"),
        (["device", "enrol", "--device", "NO-SUCH"], "no device 'NO-SUCH'"),
        (["token", "create", "--system", "Bad Name"], "lower-case"),
    ],
)
def test_cli_credential_errors_are_one_line(
    world: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*args, "--home", str(world)]) == 1
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err and captured.out == ""
