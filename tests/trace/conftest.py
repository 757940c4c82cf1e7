"""One small simulated world with the guard, shared by the trace tests (built once a session)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from trace_world import World

from bpoguard import workspace
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.workspace import Workspace

# A harvester at a modest rate, so that they touch a realistic share of the
# bank's customers in a short run; the ring for the complaints.
CONFIG = SimConfig(
    agents=48,
    customers=3_000,
    days=6,
    seed=5,
    scenarios="harvester,ring",
    settings=("harvester.rate=15", "ring.mark_rate=0.5"),
    guard=True,
)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The trace tests' world: customers in the vault, decisions in the ledger and the lake."""
    home = tmp_path_factory.mktemp("trace") / "ws"
    workspace.init(home)
    with Workspace.open(home) as ws:
        simulate(ws, CONFIG)
    truth = json.loads((home / "sim" / "truth.json").read_text(encoding="utf-8"))
    return World(home, truth)


@pytest.fixture
def lake(world: World, tmp_path: Path) -> Path:
    """A copy of the world's lake that a test may change."""
    copy = tmp_path / "lake"
    shutil.copytree(world.home / "lake", copy)
    return copy
