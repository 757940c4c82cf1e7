"""What the web app needs to know, read once at the edge and passed in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bpoguard.guard.approvals import MAX_EXPORT
from bpoguard.guard.keys import KeyProvider
from bpoguard.web._client import Network

MAX_BODY = 16 * 1024  # no request of this API needs more; larger bodies are refused unread
# An export approval lists up to MAX_EXPORT customer ids: at most 12 bytes each as JSON
# ("1234567890, "), plus the other fields.
MAX_APPROVAL_BODY = MAX_EXPORT * 12 + 8 * 1024


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class WebSettings:
    """The workspace to serve, the proxies to believe, the limits to keep.

    `clock` gives the moment each request is decided at (shift windows, token
    expiry); tests pass a fixed one to stand in a simulated shift.
    """

    home: Path
    db: str | None = None
    keys: KeyProvider | None = None  # the workspace's key files when None
    trusted_proxies: tuple[Network, ...] = ()
    max_body: int = MAX_BODY
    max_approval_body: int = MAX_APPROVAL_BODY  # POST /api/v1/exports/approvals only
    refresh_seconds: float = 30.0  # how stale the guard's staff/device directory may get
    lake_commit_seconds: float = 10.0  # how often decisions' lake rows are published
    group_limit: int = 32  # decisions committed in one transaction at most (group commit)
    clock: Callable[[], dt.datetime] = field(default=_now)
