"""Request guard rails below the app: body size cap, and headers on every response."""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SECURITY_HEADERS = [
    (b"cache-control", b"no-store"),  # slices and revealed values must not sit in caches
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    # Nothing is fetched from anywhere but this server; no inline script.
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
]


class GuardRails:
    """Refuses bodies over `max_body` bytes (413) before the app reads them; adds headers.

    The body is read here, up to the cap, and handed on whole: an oversized
    request never reaches a handler, so it cannot cause a partial write.
    `larger` names the few paths whose bodies are lists by design (an export
    approval's customer ids) with their own, larger, cap.
    """

    def __init__(
        self, app: ASGIApp, max_body: int, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send)
        cap = self.larger.get(scope.get("path", ""), self.max_body)
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            await _too_large(send, cap)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                await _too_large(send, cap)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def _with_headers(send: Send) -> Send:
    async def sending(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
            message["headers"] = headers
        await send(message)

    return sending


async def _too_large(send: Send, cap: int) -> None:
    body = json.dumps(
        {
            "error": "body_too_large",
            "message": f"request body over {cap} bytes",
            "reasons": [],
            "ledger_index": None,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
