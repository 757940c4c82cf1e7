"""Who is calling, from where, on which device: established from the request alone.

The staff member comes from the token, the device from the device credential
and the address from the socket (or a trusted proxy); what the client writes
in a body or a header about itself is never believed.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from bpoguard.access import Verb
from bpoguard.web import credentials
from bpoguard.web._client import ForwardingError, client_address
from bpoguard.web._errors import ApiError
from bpoguard.web._runtime import Runtime
from bpoguard.web.credentials import AuthError, Principal, TokenKind

log = logging.getLogger("bpoguard.web")

DEVICE_HEADER = "x-device-credential"
TOKEN_COOKIE = "bpoguard_token"  # noqa: S105 - a cookie name, not a secret
DEVICE_COOKIE = "bpoguard_device"
ANONYMOUS = "(unauthenticated)"  # the staff id a refusal is recorded under when no token named one


@dataclass(frozen=True)
class Caller:
    """An authenticated request's principal, address and device."""

    principal: Principal
    source_ip: str
    device_id: str | None

    @property
    def staff_id(self) -> str:
        """The staff member (a staff token's), for the guard's request."""
        assert self.principal.staff_id is not None
        return self.principal.staff_id


def source_of(runtime: Runtime, conn: HTTPConnection) -> str:
    """The client's address; 400 for a malformed X-Forwarded-For from a trusted proxy."""
    peer = conn.client.host if conn.client else None
    try:
        address, ignored = _client_address(
            peer, tuple(conn.headers.getlist("x-forwarded-for")), runtime.settings.trusted_proxies
        )
    except ForwardingError as err:
        log.warning("refused request from %s: %s", peer, err)
        raise ApiError(400, "bad_forwarding", str(err)) from None
    if ignored:
        log.warning("ignored X-Forwarded-For from %s: not a trusted proxy", peer)
    return address


# Parsing addresses with ipaddress was a tenth of a request's own cost; the answer
# depends only on these arguments (an error is not remembered: it is raised again).
_client_address = functools.lru_cache(maxsize=4096)(client_address)


def caller(
    runtime: Runtime,
    conn: HTTPConnection,
    *,
    kind: TokenKind,
    verb: Verb | None = None,
    customer_id: int | None = None,
    cookies: bool = False,
) -> Caller:
    """Authenticate a request as `kind`; a refusal of a decision is recorded in the ledger.

    `cookies`: the agent desktop sends its token and device credential as
    cookies; the API takes them from headers only.
    """
    source_ip = source_of(runtime, conn)
    token = _bearer(conn) or (conn.cookies.get(TOKEN_COOKIE) if cookies else None)
    presented_device = conn.headers.get(DEVICE_HEADER) or (
        conn.cookies.get(DEVICE_COOKIE) if cookies else None
    )
    principal: Principal | None = None
    try:
        with runtime.reading() as db:
            if not token:
                raise AuthError("no token: send Authorization: Bearer <token>")
            principal, device_id = credentials.authenticate_with_device(
                db, token, presented_device or None, runtime.now()
            )
    except AuthError as err:
        staff = err.staff_id or (principal.staff_id if principal else None)
        _refused(runtime, str(err), staff, verb, customer_id, source_ip)
        raise ApiError(
            401, "unauthenticated", str(err), headers={"WWW-Authenticate": "Bearer"}
        ) from None
    if principal.kind is not kind:
        who = "a staff member's" if kind is TokenKind.STAFF else "the telephony/CRM system's"
        log.warning("refused %s token %s: needs %s token", principal.kind, principal.token_id, who)
        raise ApiError(403, "wrong_token_kind", f"this route takes {who} token")
    return Caller(principal, source_ip, device_id)


def _refused(
    runtime: Runtime,
    why: str,
    staff_id: str | None,
    verb: Verb | None,
    customer_id: int | None,
    source_ip: str,
) -> None:
    log.warning("refused request from %s: %s", source_ip, why)
    if verb is None or customer_id is None:
        return  # no decision was asked for: nothing to put in the ledger
    with runtime.sink.transaction(runtime.store.engine) as db:
        runtime.refuse(
            db,
            staff_id=staff_id or ANONYMOUS,
            verb=verb,
            customer_id=customer_id,
            source_ip=source_ip,
            device_id=None,
            reason=f"denied: {why}",
        )


def _bearer(conn: HTTPConnection) -> str | None:
    value = conn.headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
