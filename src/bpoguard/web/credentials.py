"""API tokens for staff and systems, and device credentials: minted once, kept as hashes.

A token reads ``bpg_<id>_<secret>`` and a device credential ``bpd_<id>_<secret>``:
the id finds the row, the SHA-256 digest of the whole string is compared in
constant time. The secrets carry 256 bits from :mod:`secrets`, so a fast hash
is enough (no password-stretching needed: nothing here is guessable). The
plain secret exists only in the value returned by :func:`create_token` or
:func:`enrol_device`; the CLI shows it once.

    CredentialError (InputError)    bad options when minting or revoking
    AuthError (BpoguardError)       a presented token or credential is not good
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from bpoguard.errors import BpoguardError, InputError
from bpoguard.store import models as m
from bpoguard.web._tables import web_device_credentials, web_tokens

TOKEN_PREFIX = "bpg"  # noqa: S105 - the visible prefix of every token
DEVICE_PREFIX = "bpd"
DEFAULT_STAFF_LIFETIME = dt.timedelta(hours=12)  # one shift and a margin
DEFAULT_SYSTEM_LIFETIME = dt.timedelta(days=90)
MAX_LIFETIME = dt.timedelta(days=366)
_SHAPE = re.compile(r"(bpg|bpd)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_DURATION = re.compile(r"(\d{1,6})([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_SYSTEM_NAME = re.compile(r"[a-z][a-z0-9-]{0,63}")


class TokenKind(enum.StrEnum):
    """Who a token speaks for."""

    STAFF = "staff"  # a person: their role, site and shift are checked by the guard
    SYSTEM = "system"  # the telephony or CRM integration: opens and closes interactions


class CredentialError(InputError):
    """A token or device cannot be minted or revoked as asked."""


class AuthError(BpoguardError):
    """A presented token or device credential is unknown, expired, revoked or malformed.

    The message names the token's public id at most, never its secret;
    `staff_id` is whom a known (revoked or expired) token spoke for.
    """

    def __init__(self, message: str, staff_id: str | None = None) -> None:
        super().__init__(message)
        self.staff_id = staff_id


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: everything but the secret."""

    id: str
    kind: TokenKind
    name: str
    staff_id: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None

    def state(self, now: dt.datetime) -> str:
        """'active', 'expired' or 'revoked' at a moment."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "active"

    def as_json(self, now: dt.datetime) -> dict[str, object]:
        """The listing's JSON form (no secret: it is not stored)."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "name": self.name,
            "staff_id": self.staff_id,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "state": self.state(now),
        }


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for, as established by its token."""

    token_id: str
    kind: TokenKind
    name: str
    staff_id: str | None


def parse_lifetime(text: str) -> dt.timedelta:
    """'12h', '30m', '7d', '90s' as a duration; at most a year."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise CredentialError(f"lifetime {text!r} not understood; write e.g. 30m, 12h or 7d")
    lifetime = dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if lifetime <= dt.timedelta(0) or lifetime > MAX_LIFETIME:
        raise CredentialError("lifetime must be more than nothing and at most 366 days")
    return lifetime


def create_token(
    conn: Connection,
    now: dt.datetime,
    *,
    staff_id: str | None = None,
    system: str | None = None,
    lifetime: dt.timedelta | None = None,
) -> tuple[TokenInfo, str]:
    """Mint a token for a staff member or a system; returns its listing and the secret."""
    if (staff_id is None) == (system is None):
        raise CredentialError("give exactly one of --staff or --system")
    if staff_id is not None:
        kind, name = TokenKind.STAFF, staff_id
        _check_staff(conn, staff_id, now)
    else:
        assert system is not None
        kind, name = TokenKind.SYSTEM, system
        if not _SYSTEM_NAME.fullmatch(system):
            raise CredentialError("a system name is lower-case letters, digits and '-'")
    default = DEFAULT_STAFF_LIFETIME if kind is TokenKind.STAFF else DEFAULT_SYSTEM_LIFETIME
    token_id, secret = _mint(TOKEN_PREFIX)
    info = TokenInfo(token_id, kind, name, staff_id, now, now + (lifetime or default), None)
    conn.execute(
        insert(web_tokens).values(
            id=info.id, kind=kind.value, staff_id=staff_id, name=name, digest=_digest(secret),
            created_at=info.created_at, expires_at=info.expires_at, revoked_at=None,
        )
    )  # fmt: skip
    return info, secret


def list_tokens(conn: Connection, staff_id: str | None = None) -> list[TokenInfo]:
    """Every token (or one person's), newest first; never a secret."""
    query = select(web_tokens).order_by(web_tokens.c.created_at.desc(), web_tokens.c.id)
    if staff_id is not None:
        query = query.where(web_tokens.c.staff_id == staff_id)
    return [_info(row) for row in conn.execute(query)]


def revoke_token(conn: Connection, token_id: str, now: dt.datetime) -> TokenInfo:
    """Revoke a token by its public id; it is refused from this moment on."""
    row = conn.execute(select(web_tokens).where(web_tokens.c.id == token_id)).first()
    if row is None:
        raise CredentialError(f"no token with id {token_id!r} (see bpoguard token list)")
    if row.revoked_at is None:
        conn.execute(update(web_tokens).where(web_tokens.c.id == token_id).values(revoked_at=now))
    return _info(conn.execute(select(web_tokens).where(web_tokens.c.id == token_id)).one())


def authenticate(conn: Connection, presented: str, now: dt.datetime) -> Principal:
    """The principal a presented token speaks for; AuthError unless it is good now."""
    token_id = _id_of(presented, TOKEN_PREFIX, "token")
    row = conn.execute(_TOKEN, {"id": token_id}).first()
    # Compare even when the row is missing, so that timing says nothing about ids.
    stored = row.digest if row is not None else _DECOY
    if not hmac.compare_digest(stored, _digest(presented)) or row is None:
        raise AuthError(f"unknown token {token_id}")
    if row.revoked_at is not None:
        raise AuthError(f"token {token_id} was revoked", row.staff_id)
    if now >= _aware(row.expires_at):
        raise AuthError(f"token {token_id} has expired", row.staff_id)
    return Principal(token_id, TokenKind(row.kind), row.name, row.staff_id)


def authenticate_with_device(
    conn: Connection, presented: str, device: str | None, now: dt.datetime
) -> tuple[Principal, str | None]:
    """:func:`authenticate` and :func:`device_of` (when a credential is presented) at once.

    One statement reads both rows (each statement is a round trip through
    SQLAlchemy and the driver, a measurable share of a request); the checks,
    their order and their errors are those of the two functions: the token
    first, then the device credential.
    """
    token_id = _id_of(presented, TOKEN_PREFIX, "token")
    shaped = _SHAPE.fullmatch(device.strip()) if device is not None else None
    cred_id = shaped.group(2) if shaped is not None and shaped.group(1) == DEVICE_PREFIX else None
    row = conn.execute(_BOTH, {"id": token_id, "cred": cred_id or ""}).first()
    # Compare even when the row is missing, so that timing says nothing about ids.
    stored = row.t_digest if row is not None else _DECOY
    if not hmac.compare_digest(stored, _digest(presented)) or row is None:
        raise AuthError(f"unknown token {token_id}")
    if row.t_revoked is not None:
        raise AuthError(f"token {token_id} was revoked", row.t_staff)
    if now >= _aware(row.t_expires):
        raise AuthError(f"token {token_id} has expired", row.t_staff)
    principal = Principal(token_id, TokenKind(row.t_kind), row.t_name, row.t_staff)
    if device is None:
        return principal, None
    if cred_id is None:
        raise AuthError("malformed device credential", principal.staff_id)
    stored = row.d_digest if row.d_digest is not None else _DECOY
    if not hmac.compare_digest(stored, _digest(device)) or row.d_digest is None:
        raise AuthError(f"unknown device credential {cred_id}", principal.staff_id)
    if row.d_revoked is not None:
        raise AuthError(
            f"device credential {cred_id} was revoked (the device was enrolled again)",
            principal.staff_id,
        )
    device_id: str = row.d_device
    return principal, device_id


@dataclass(frozen=True)
class Enrolment:
    """A device credential just issued."""

    id: str
    device_id: str
    holder_id: str
    created_at: dt.datetime
    replaced: int  # earlier credentials of the device revoked by this enrolment


def enrol_device(conn: Connection, device_id: str, now: dt.datetime) -> tuple[Enrolment, str]:
    """Issue a credential to a registered device issued to someone and not lost."""
    device = conn.execute(
        select(m.Device.id, m.Device.holder_id, m.Device.status).where(m.Device.id == device_id)
    ).first()
    if device is None:
        raise CredentialError(f"no device {device_id!r} in the asset register")
    if device.status is m.DeviceStatus.LOST:
        raise CredentialError(f"device {device_id} is reported lost; it cannot be enrolled")
    if device.status is not m.DeviceStatus.ISSUED or device.holder_id is None:
        raise CredentialError(
            f"device {device_id} is {device.status.value.replace('_', ' ')}, not issued to "
            "anyone; issue it in the asset register first"
        )
    replaced = conn.execute(
        update(web_device_credentials)
        .where(
            web_device_credentials.c.device_id == device_id,
            web_device_credentials.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    ).rowcount
    cred_id, secret = _mint(DEVICE_PREFIX)
    conn.execute(
        insert(web_device_credentials).values(
            id=cred_id, device_id=device_id, digest=_digest(secret), created_at=now,
            revoked_at=None,
        )
    )  # fmt: skip
    return Enrolment(cred_id, device_id, device.holder_id, now, replaced), secret


def device_of(conn: Connection, presented: str) -> str:
    """The device a presented credential was issued to; AuthError unless it is live."""
    cred_id = _id_of(presented, DEVICE_PREFIX, "device credential")
    row = conn.execute(_DEVICE, {"id": cred_id}).first()
    stored = row.digest if row is not None else _DECOY
    if not hmac.compare_digest(stored, _digest(presented)) or row is None:
        raise AuthError(f"unknown device credential {cred_id}")
    if row.revoked_at is not None:
        raise AuthError(f"device credential {cred_id} was revoked (the device was enrolled again)")
    device_id: str = row.device_id
    return device_id


def _check_staff(conn: Connection, staff_id: str, now: dt.datetime) -> None:
    row = conn.execute(select(m.Staff.id, m.Staff.left).where(m.Staff.id == staff_id)).first()
    if row is None:
        raise CredentialError(f"no staff member {staff_id!r}")
    if row.left is not None and row.left < now.date():
        raise CredentialError(f"{staff_id} left on {row.left}; leavers get no token")


def _mint(prefix: str) -> tuple[str, str]:
    public = secrets.token_hex(8)
    return public, f"{prefix}_{public}_{secrets.token_urlsafe(32)}"


def _id_of(presented: str, prefix: str, what: str) -> str:
    match = _SHAPE.fullmatch(presented.strip())
    if match is None or match.group(1) != prefix:
        raise AuthError(f"malformed {what}")
    return match.group(2)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.strip().encode()).digest()


def _aware(at: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _info(row: Row[Any]) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        kind=TokenKind(row.kind),
        name=row.name,
        staff_id=row.staff_id,
        created_at=_aware(row.created_at),
        expires_at=_aware(row.expires_at),
        revoked_at=_aware(row.revoked_at) if row.revoked_at else None,
    )


_DECOY = hashlib.sha256(b"no such credential").digest()
_TOKEN = select(
    web_tokens.c.digest, web_tokens.c.kind, web_tokens.c.name, web_tokens.c.staff_id,
    web_tokens.c.expires_at, web_tokens.c.revoked_at,
).where(web_tokens.c.id == bindparam("id"))  # fmt: skip
_DEVICE = select(
    web_device_credentials.c.digest, web_device_credentials.c.device_id,
    web_device_credentials.c.revoked_at,
).where(web_device_credentials.c.id == bindparam("id"))  # fmt: skip


# Both rows in one statement: the token's row, and the credential's beside it when
# there is one (no row at all when the token is unknown). A join rather than scalar
# subqueries or plain SQL: SQLAlchemy then keeps the statement compiled and its result
# columns mapped, where the others were rebuilt on every execution (3-4 times slower).
_BOTH = (
    select(
        web_tokens.c.digest.label("t_digest"),
        web_tokens.c.kind.label("t_kind"),
        web_tokens.c.name.label("t_name"),
        web_tokens.c.staff_id.label("t_staff"),
        web_tokens.c.expires_at.label("t_expires"),
        web_tokens.c.revoked_at.label("t_revoked"),
        web_device_credentials.c.digest.label("d_digest"),
        web_device_credentials.c.device_id.label("d_device"),
        web_device_credentials.c.revoked_at.label("d_revoked"),
    )
    .select_from(
        web_tokens.outerjoin(
            web_device_credentials, web_device_credentials.c.id == bindparam("cred")
        )
    )
    .where(web_tokens.c.id == bindparam("id"))
)

__all__ = [
    "AuthError",
    "CredentialError",
    "Enrolment",
    "Principal",
    "TokenInfo",
    "TokenKind",
    "authenticate",
    "authenticate_with_device",
    "create_token",
    "device_of",
    "enrol_device",
    "list_tokens",
    "parse_lifetime",
    "revoke_token",
]
