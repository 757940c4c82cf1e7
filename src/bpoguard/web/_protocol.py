"""uvicorn's HTTP/1.1 protocol with TCP_NODELAY on every connection.

With ``--workers`` above one, uvicorn binds the listening socket itself as
``socket.socket(family)``, whose protocol number is 0; asyncio sets
TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP, so the accepted
connections keep Nagle's algorithm. A response written as headers then body
then waits for the client's delayed ACK: about 40 ms a request on Linux
(measured here: 44 ms a health check with two workers, 4 ms with one).

Naming a protocol class turns off uvicorn's own choice between its parsers,
so the choice is made here the same way: httptools (the C parser, a
dependency) when it imports, h11 (pure Python) otherwise. h11's parsing was
most of a view's cost over HTTP beyond the guard's own.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


def _no_delay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    """H11Protocol that turns Nagle's algorithm off before serving a connection."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Set TCP_NODELAY on the connection's socket, then serve it as uvicorn does."""
        _no_delay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing: uvicorn's module fails to import
    HTTP_PROTOCOL = "bpoguard.web._protocol:NoDelayH11Protocol"
else:

    class NoDelayHttpToolsProtocol(HttpToolsProtocol):
        """HttpToolsProtocol that turns Nagle's algorithm off before serving a connection."""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            """Set TCP_NODELAY on the connection's socket, then serve it as uvicorn does."""
            _no_delay(transport)
            super().connection_made(transport)  # type: ignore[arg-type]

    HTTP_PROTOCOL = "bpoguard.web._protocol:NoDelayHttpToolsProtocol"
