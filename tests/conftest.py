"""Shared fixtures. The network is blocked: tests may talk to loopback only."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            allowed = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            allowed = False
        if not allowed:
            raise OSError(f"tests may not reach {host}: the network is blocked in conftest.py")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def _block_network() -> Iterator[None]:
    socket.socket.connect = _loopback_only  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Where a test's workspace goes (not yet created)."""
    return tmp_path / "ws"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of a scratch PostgreSQL server (.ci/run starts one); skip when there is none."""
    url = os.environ.get("BPOGUARD_TEST_PG_URL")
    if not url:
        pytest.skip("no PostgreSQL: set BPOGUARD_TEST_PG_URL (scripts/pg-scratch starts one)")
    return url


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database for one test; dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text

    from bpoguard.store import parse_url

    admin = create_engine(parse_url(pg_url), isolation_level="AUTOCOMMIT")
    name = f"bpoguard_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield parse_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
