"""`bpoguard serve`: the REST API and the agent desktop over a workspace (web)."""

from __future__ import annotations

from typing import Annotated

import typer

from bpoguard.cli._common import DEFAULT_HOME, Db, Home
from bpoguard.errors import InputError


def serve_command(
    home: Home = DEFAULT_HOME,
    db: Db = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    workers: Annotated[
        int,
        typer.Option("--workers", help="Worker processes (each decides one request at a time)."),
    ] = 1,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="CIDR of a reverse proxy whose X-Forwarded-For is believed (repeat).",
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every request line.")
    ] = True,
) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /openapi.json) and the agent desktop. [admin]"""
    if not 0 < port < 65536:
        raise InputError(f"port {port} is not between 1 and 65535")
    if not 1 <= workers <= 64:
        raise InputError("--workers must be between 1 and 64")
    from bpoguard.web.server import serve  # FastAPI loads only for this command

    serve(home, db, host, port, workers, trusted_proxy or (), access_log)
