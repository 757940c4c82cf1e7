"""Running the app under uvicorn, in one process or several workers.

Workers are separate processes that import the app by name, so the settings
travel to them in environment variables that `bpoguard serve` sets; only
:func:`app_from_environment` reads them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from bpoguard import collector
from bpoguard.guard.keys import KeyfileProvider, KeyProvider
from bpoguard.web._client import parse_networks
from bpoguard.web._protocol import HTTP_PROTOCOL
from bpoguard.web._settings import WebSettings
from bpoguard.web.app import create_app

KEK_ENV = "BPOGUARD_KEK"
_HOME = "BPOGUARD_WEB_HOME"
_DB = "BPOGUARD_WEB_DB"
_TRUSTED = "BPOGUARD_WEB_TRUSTED_PROXIES"


def settings_for(
    home: Path, db: str | None, trusted: Sequence[str], kek: str | None = None
) -> WebSettings:
    """Settings for a workspace; `kek` is BPOGUARD_KEK's value when the KEK is not on disk."""
    keys: KeyProvider | None = KeyfileProvider.from_base64(kek, KEK_ENV) if kek else None
    return WebSettings(
        home=home.absolute(), db=db, keys=keys, trusted_proxies=parse_networks(trusted)
    )


def app_from_environment() -> FastAPI:
    """The app a uvicorn worker builds from what `bpoguard serve` put in its environment."""
    trusted = [t for t in os.environ.get(_TRUSTED, "").split(",") if t]
    settings = settings_for(
        Path(os.environ[_HOME]), os.environ.get(_DB) or None, trusted, os.environ.get(KEK_ENV)
    )
    app = create_app(settings)
    collector.tune()  # after the app is built: its heap is frozen out of collections
    return app


def serve(
    home: Path,
    db: str | None,
    host: str,
    port: int,
    workers: int,
    trusted: Sequence[str],
    access_log: bool = True,
) -> None:
    """Serve the workspace until interrupted."""
    settings = settings_for(home, db, trusted, os.environ.get(KEK_ENV))  # fail early, here
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # proxy_headers off: uvicorn would otherwise rewrite the peer from X-Forwarded-For
    # for its own trusted list (127.0.0.1 by default); the app decides whom to believe.
    common = {
        "host": host,
        "port": port,
        "access_log": access_log,
        "log_level": "info",
        "proxy_headers": False,
        "server_header": False,
        "http": HTTP_PROTOCOL,  # TCP_NODELAY on every connection (see _protocol)
    }
    if workers <= 1:
        app = create_app(settings)
        collector.tune()
        uvicorn.run(app, **common)  # type: ignore[arg-type]
        return
    os.environ[_HOME] = str(settings.home)
    os.environ[_TRUSTED] = ",".join(str(n) for n in settings.trusted_proxies)
    if db:
        os.environ[_DB] = db
    uvicorn.run(
        "bpoguard.web.server:app_from_environment",
        factory=True,
        workers=workers,
        # A worker opens the workspace and loads the directory before it answers
        # uvicorn's start-up ping; on a busy machine that took over the default 5 s,
        # and uvicorn killed and restarted workers in a loop.
        timeout_worker_healthcheck=60,
        **common,  # type: ignore[arg-type]
    )
