"""Importing any CSV or JSON Lines log with a TOML mapping file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpoguard import workspace
from bpoguard.cli import main
from bpoguard.errors import InputError
from bpoguard.events import lake
from bpoguard.events.importers import BadLine, import_events, load_mapping
from bpoguard.events.importers.generic import parse_mapping
from bpoguard.workspace import Workspace

DATA = Path(__file__).parent / "data"


@pytest.fixture
def ws(home: Path) -> Iterator[Workspace]:
    workspace.init(home)
    with Workspace.open(home) as opened:
        yield opened


def events(ws: Workspace) -> list[dict[str, object]]:
    rows = lake.dataset(ws.settings.lake_dir).to_table().to_pylist()
    return sorted(rows, key=lambda r: (r["time"], r["event_id"]))


def test_csv_log_maps_time_zone_actions_outcomes_and_columns(ws: Workspace) -> None:
    report = import_events(ws, [DATA / "vpn.csv"], load_mapping(DATA / "vpn.toml"))

    rows = events(ws)
    assert [(str(r["time"]), r["action"], r["outcome"]) for r in rows] == [
        ("2026-03-03 03:32:11+00:00", "auth.logon", "success"),  # 09:02 in Kolkata
        ("2026-03-03 13:00:40+00:00", "auth.logoff", "success"),
        ("2026-03-03 20:44:05+00:00", "auth.logon", "failure"),
    ]
    assert rows[1]["bytes"] == 18233411 and rows[0]["bytes"] is None
    assert rows[2]["actor"] == "S0388" and rows[2]["src_ip"] == "203.0.113.77"
    assert rows[2]["device_id"] == "MUM-LT-0311" and rows[2]["source"] == "vpn"
    assert report.notes == ["action values not in the mapping, not imported: keepalive (1)"]


def test_jsonl_log_with_dotted_paths_and_a_constant_action(ws: Workspace) -> None:
    import_events(ws, [DATA / "proxy.jsonl"], load_mapping(DATA / "proxy.toml"))

    rows = events(ws)
    assert [(r["actor"], r["src_ip"], r["action"], r["bytes"]) for r in rows] == [
        ("S0412", "10.20.4.17", "web.visit", 1200),
        ("S0388", "10.20.4.18", "web.visit", 5800000),
    ]
    assert str(rows[0]["time"]) == "2026-03-03 04:45:00+00:00"
    assert rows[1]["dest"] == "https://paste.example.net/new"


def test_event_ids_come_from_content_so_a_reimport_adds_nothing(
    ws: Workspace, tmp_path: Path
) -> None:
    mapping = load_mapping(DATA / "proxy.toml")
    import_events(ws, [DATA / "proxy.jsonl"], mapping)
    first = [r["event_id"] for r in events(ws)]
    again = import_events(ws, [DATA / "proxy.jsonl"], mapping)

    assert again.files[0].status == "already imported"
    assert [r["event_id"] for r in events(ws)] == first
    assert all(str(i).startswith("proxy-") for i in first)


def test_a_time_that_does_not_match_the_format_is_a_bad_line(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "vpn.csv"
    text = (
        (DATA / "vpn.csv").read_text(encoding="utf-8").replace("03/03/2026 18:30:40", "2026-03-03")
    )
    path.write_text(text, encoding="utf-8")

    with pytest.raises(BadLine, match=r"^vpn\.csv line 3: when does not match %d/%m/%Y %H:%M:%S$"):
        import_events(ws, [path], load_mapping(DATA / "vpn.toml"))
    assert lake.count(ws.settings.lake_dir) == 0


@pytest.mark.parametrize(
    "document, message",
    [
        ({"time": {"column": "t"}, "action": {"value": "auth.logon"}}, "source must be"),
        ({"source": "x", "time": {"column": "t"}}, "needs either column or value"),
        ({"source": "x", "time": {"column": "t"}, "action": {"value": "login"}}, "'login' is not an action"),
        ({"source": "x", "time": {"column": "t"}, "action": {"value": "auth.logon"}, "columns": {"who": "u"}}, "who are not lake columns"),
        ({"source": "x", "time": {"column": "t", "timezone": "Mars/Olympus"}, "action": {"value": "auth.logon"}}, "not a known time zone"),
        ({"source": "x", "time": {"column": "t"}, "action": {"value": "auth.logon"}, "outcome": {"default": "maybe"}}, "outcome 'maybe'"),
    ],
)  # fmt: skip
def test_bad_mappings_are_refused_with_what_is_wrong(
    document: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        parse_mapping(document, "m.toml")


def test_cli_imports_with_a_mapping_and_rejects_a_broken_one(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace.init(home)
    args = ["import", "events", str(DATA / "vpn.csv"), "--home", str(home)]
    assert main([*args, "--mapping", str(DATA / "vpn.toml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 3

    broken = tmp_path / "broken.toml"
    broken.write_text("source = \n", encoding="utf-8")
    assert main([*args, "--mapping", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "broken.toml is not valid TOML" in err and err.count("\n") == 1
