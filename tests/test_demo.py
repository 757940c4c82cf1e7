from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bpoguard import demo
from bpoguard.errors import WorkspaceError
from bpoguard.simulate.run import SimConfig

BIN = Path(sys.executable).parent / "bpoguard"
TINY = SimConfig(agents=36, customers=2_000, days=5, seed=3, guard=True)


def test_demo_from_a_fresh_directory_simulates_every_seed_story(tmp_path: Path) -> None:
    done = subprocess.run([BIN, "demo"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for scenario in ("harvester", "mailbox", "leaver", "ring"):
        assert scenario in done.stdout
    home = tmp_path / ".bpoguard-demo"
    truth = json.loads((home / "sim" / "truth.json").read_text())
    assert {s["scenario"] for s in truth["scenarios"]} == {"harvester", "mailbox", "leaver", "ring"}
    assert any(home.glob("lake/day=*/*.parquet"))
    assert "the ledger verifies" in done.stdout
    assert "Guard: every request above was decided" in done.stdout
    assert "<- the harvester" in done.stdout
    assert "Detect: " in done.stdout
    assert "<- in the ring" in done.stdout


def test_demo_evidence_verifies_with_the_lone_verifier_and_fails_when_edited(
    tmp_path: Path,
) -> None:
    result = demo.run(tmp_path / "d", TINY)
    assert result.ledger is not None
    folder = result.ledger.folder
    assert result.ledger.entry["staff"] == result.simulated.scenarios[0]["persons"][0]
    assert result.ledger.entry["decision"] == "deny"
    harvester = next(o for o in result.guard if o.scenario == "harvester")
    assert harvester.denied > 0 and harvester.top_reason is not None
    assert result.detect is not None and result.detect.alerts > 0
    top_two = {str(item["person"]) for item in result.detect.top[:2]}
    assert {result.detect.culprits[p] for p in top_two} == {"harvester", "leaver"}
    assert all(item["reasons"] for item in result.detect.top)
    assert result.leak is not None and result.leak.suspects
    assert result.leak.suspects[0]["person"] == result.leak.culprit
    assert result.leak.report.read_text().lower().startswith("<!doctype html>")
    assert result.complaints is not None
    named = {r["value"] for r in result.complaints.lines if r["dimension"] == "staff"}
    assert set(result.complaints.ring) <= named
    args = ["--entry", "entry.json", "--proof", "proof.json", "--checkpoint", "checkpoint.txt",
            "--key", (folder / "key.txt").read_text().strip()]  # fmt: skip
    ok = subprocess.run([sys.executable, "-I", "verifier.py", *args], cwd=folder,
                        capture_output=True, text=True, check=False)  # fmt: skip
    assert ok.returncode == 0 and ok.stdout.startswith("OK: entry"), ok.stderr
    entry = json.loads((folder / "entry.json").read_text())
    entry["fields"] = ["name"]  # a keeper trying to make the harvest look harmless
    (folder / "entry.json").write_text(json.dumps(entry))
    bad = subprocess.run([sys.executable, "-I", "verifier.py", *args], cwd=folder,
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert bad.returncode == 1 and "NOT VERIFIED" in bad.stderr


def test_demo_replaces_its_own_workspace_but_not_someone_elses(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    first = demo.run(home, TINY)
    second = demo.run(home, TINY)
    assert first.simulated.events == second.simulated.events
    other = tmp_path / "precious"
    other.mkdir()
    (other / "data.txt").write_text("keep me")
    with pytest.raises(WorkspaceError, match="not made by the demo"):
        demo.run(other, TINY)
    assert (other / "data.txt").read_text() == "keep me"
