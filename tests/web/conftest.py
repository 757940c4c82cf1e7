"""Fixtures: a small simulated BPO with customers in the vault, and the web app over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bpoguard import workspace
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.web import credentials
from bpoguard.web._client import parse_networks
from bpoguard.web._settings import WebSettings
from bpoguard.web.app import create_app
from bpoguard.workspace import Workspace
from web._world import PROXY, Api, Clock, Web, desks


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated BPO with its customers encrypted in the vault (built once)."""
    home = tmp_path_factory.mktemp("web") / "ws"
    workspace.init(home)
    with Workspace.open(home) as ws:
        config = SimConfig(agents=36, customers=1_000, days=1, scenarios="none", guard=True)
        simulate(ws, config)
    return home


@pytest.fixture(scope="module")
def web(world: Path) -> Iterator[Web]:
    """The app over the shared world, trusting one reverse proxy."""
    free = desks(world)
    clock = Clock(free[0].at)
    settings = WebSettings(home=world, trusted_proxies=parse_networks([f"{PROXY}/32"]), clock=clock)
    app = create_app(settings)
    with Workspace.open(world) as ws, ws.store.engine.begin() as conn:
        _, system = credentials.create_token(conn, clock.at, system="crm")
    try:
        yield Web(world, app, Api(app, free[0].ip), clock, system, free)
    finally:
        app.state.runtime.close()
