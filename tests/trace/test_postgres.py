"""The trace on a workspace whose store is PostgreSQL (the lake stays Parquet on disk)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bpoguard import workspace
from bpoguard.cli import main
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.workspace import Workspace

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_leak_and_complaints_on_postgresql(
    pg_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "ws"
    workspace.init(home, db=pg_db)
    config = SimConfig(agents=24, customers=1_500, days=4, seed=9, scenarios="harvester,ring",
                       settings=("harvester.rate=10",), guard=True)  # fmt: skip
    with Workspace.open(home, pg_db) as ws:
        simulate(ws, config)
    truth = json.loads((home / "sim" / "truth.json").read_text())
    harvester = next(s for s in truth["scenarios"] if s["scenario"] == "harvester")["persons"][0]
    dump = tmp_path / "dump.csv"
    base = ["--home", str(home), "--db", pg_db]
    assert (
        main(["trace", "make-dump", *base, "--kind", "one", "--records", "5", "--out", str(dump)])
        == 0
    )
    capsys.readouterr()
    assert main(["trace", "leak", str(dump), *base, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ranking"][0]["person"] == harvester
    assert document["ledger"]["proofs"]
    complaints = str(home / "sim" / "complaints.csv")
    assert main(["trace", "complaints", complaints, *base, "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)["ranking"]
    assert ranked and ranked[0]["victims_accessed"] > 0
