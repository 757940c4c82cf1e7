"""The demo: a fresh workspace, a small simulated world, and what it shows.

It runs every capability that exists so far and nothing else; each later
capability adds its step here.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bpoguard import workspace
from bpoguard.errors import WorkspaceError
from bpoguard.events import lake
from bpoguard.simulate.run import Progress, SimConfig, SimSummary, simulate
from bpoguard.workspace import Workspace

MARKER = ".bpoguard-demo"  # marks a folder the demo made, and may replace
DEMO_CONFIG = SimConfig(agents=240, customers=20_000, days=14, seed=7)


@dataclass
class DemoResult:
    """What the demo did: the world it simulated and what its records show."""

    home: Path
    simulated: SimSummary
    events_by_source: dict[str, int]


def run(
    home: Path, config: SimConfig = DEMO_CONFIG, progress: Progress | None = None
) -> DemoResult:
    """Build a fresh demo workspace at HOME and simulate the seed stories into it."""
    _clear_previous(home)
    workspace.init(home)
    (home / MARKER).write_text("made by bpoguard demo; replaced by the next demo run\n")
    with Workspace.open(home) as ws:
        summary = simulate(ws, config, progress)
        table = lake.dataset(ws.settings.lake_dir).to_table(columns=["source"])
    counts = table.group_by("source").aggregate([("source", "count")])
    by_source = dict(
        zip(counts["source"].to_pylist(), counts["source_count"].to_pylist(), strict=True)
    )
    return DemoResult(home.absolute(), summary, by_source)


def _clear_previous(home: Path) -> None:
    if not home.exists():
        return
    if not (home / MARKER).is_file():
        raise WorkspaceError(
            f"{home} exists and was not made by the demo; give another --home for the demo"
        )
    shutil.rmtree(home)
