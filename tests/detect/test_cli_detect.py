"""The detect commands over a small guarded simulated world, as an analyst runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bpoguard import workspace
from bpoguard.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)  # exactly one document, or this fails


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A guarded world with a harvester and a leaver, detected once."""
    home = tmp_path_factory.mktemp("detect") / "ws"
    workspace.init(home)
    code = main(
        ["simulate", "--home", str(home), "--agents", "24", "--customers", "1000", "--days", "5",
         "--scenarios", "harvester,leaver", "--guard", "--seed", "3", "--json"]
    )  # fmt: skip
    assert code == 0
    assert main(["detect", "--home", str(home), "--json"]) == 0
    return home


@pytest.mark.slow
def test_risk_top_names_the_culprits_first_with_reasons(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    ranked = run_json(capsys, "risk", "top", "--home", str(world), "--n", "5")
    assert isinstance(ranked, list) and len(ranked) == 5
    truth = json.loads((world / "sim" / "truth.json").read_text())
    culprits = {p for s in truth["scenarios"] for p in s["persons"]}
    assert {r["person"] for r in ranked[:2]} == culprits
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    assert all(r["reasons"] for r in ranked[:2])


@pytest.mark.slow
def test_instant_alerts_exist_from_the_simulation_and_evaluate_measures_them(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    report = run_json(
        capsys, "evaluate", "--home", str(world), "--truth", str(world / "sim" / "truth.json")
    )
    assert isinstance(report, dict)
    assert report["recall_at_5pct"] == 1.0
    assert report["roc_auc"] == 1.0
    harvester = next(r for r in report["insiders"] if r["scenario"] == "harvester")
    assert harvester["rank"] <= 2  # the two culprits are the top two
    assert harvester["within_one_shift"] and harvester["hours_to_first_alert"] < 0.01


@pytest.mark.slow
def test_alerts_list_show_triage_and_bad_input(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    listed = run_json(capsys, "alerts", "list", "--home", str(world), "--severity", "critical")
    assert isinstance(listed, list) and listed
    assert {a["severity"] for a in listed} == {"critical"}
    first = listed[0]
    shown = run_json(capsys, "alerts", "show", str(first["id"]), "--home", str(world))
    assert isinstance(shown, dict) and shown["evidence"]
    assert any(e["ledger_index"] is not None for e in shown["evidence"])
    code, _, err = run(capsys, "alerts", "triage", str(first["id"]), "--home", str(world),
                       "--status", "dismissed")  # fmt: skip
    assert code == 1 and err.startswith("bpoguard: ") and err.count("\n") == 1
    done = run_json(capsys, "alerts", "triage", str(first["id"]), "--home", str(world),
                    "--status", "escalated", "--reason", "police liaison informed")  # fmt: skip
    assert isinstance(done, dict) and done["status"] == "escalated"
    assert main(["detect", "--home", str(world), "--json"]) == 0
    capsys.readouterr()
    again = run_json(capsys, "alerts", "show", str(first["id"]), "--home", str(world))
    assert isinstance(again, dict) and again["status"] == "escalated"
    for args, message in (
        (["alerts", "show", "999999"], "no alert 999999"),
        (["alerts", "list", "--status", "open"], "bad filter"),
        (["evaluate", "--truth", str(world / "nope.json")], "not found"),
        (["detect", "--since", "May"], "not a date"),
        (["detect", "--engine", "oracle"], "unknown engine"),
    ):
        code, _out, err = run(capsys, *args, "--home", str(world))
        assert code == 1 and message in err and err.count("\n") == 1, (args, err)
