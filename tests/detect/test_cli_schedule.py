"""`bpoguard detect --every`: detection on a schedule, as a service account runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bpoguard import workspace
from bpoguard.cli import main

CONSOLE_SCRIPT = Path(sys.executable).parent / "bpoguard"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated world with its events in the lake, not yet detected."""
    home = tmp_path_factory.mktemp("schedule") / "ws"
    workspace.init(home)
    code = main(
        ["simulate", "--home", str(home), "--agents", "12", "--customers", "1000", "--days", "2",
         "--scenarios", "harvester", "--seed", "5", "--json"]
    )  # fmt: skip
    assert code == 0
    return home


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "soon"], "not a duration"),
        (["--every", "0s"], "not a duration"),
        (["--runs", "2"], "--runs needs --every"),
        (["--every", "1s", "--runs", "0"], "--runs needs --every"),
    ],
)
def test_bad_schedules_are_one_line_errors(
    world: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    capsys.readouterr()
    code = main(["detect", "--home", str(world), *args])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.startswith("bpoguard: ") and captured.err.count("\n") == 1
    assert message in captured.err


def test_a_wrong_home_stops_the_schedule_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["detect", "--home", str(tmp_path / "nowhere"), "--every", "1h", "--runs", "5"])
    assert code == 1
    assert capsys.readouterr().err.startswith("bpoguard: ")


@pytest.mark.slow
def test_scheduled_runs_print_one_json_line_each_and_only_the_first_recomputes(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(["detect", "--home", str(world), "--every", "1s", "--runs", "2", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    runs = [json.loads(line) for line in captured.out.splitlines()]
    assert len(runs) == 2
    assert runs[0]["days_recomputed"] >= 2 and not runs[0]["up_to_date"]
    assert runs[1]["up_to_date"] and runs[1]["days_recomputed"] == 0
    assert runs[0]["person_days"] > 0 and runs[1]["person_days"] == runs[0]["person_days"]
    assert runs[1]["alerts_new"] == 0 and runs[1]["alerts_total"] == runs[0]["alerts_total"]


@pytest.mark.slow
def test_a_later_failed_run_is_reported_and_the_schedule_goes_on(
    world: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("")  # no rules of one's own: valid
    proc = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "detect", "--home", str(world), "--rules", str(rules),
         "--every", "15s", "--runs", "2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # run 1 is done; run 2 starts 15 s after it began
    rules.write_text("[[rule]\nthis is not TOML")
    second_out, err = proc.communicate(timeout=120)
    assert "person_days" in first
    assert proc.returncode == 1  # the last run's status
    assert err.count("failed:") == 1 and "Traceback" not in err
    assert second_out == ""
