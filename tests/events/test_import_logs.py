"""Importing Microsoft 365 audit, Entra sign-in, HR and asset logs (sample files in data/)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpoguard import workspace
from bpoguard.cli import main
from bpoguard.events import lake
from bpoguard.events.importers import (
    BadLine,
    _records,
    import_assets,
    import_entra,
    import_hr,
    import_m365,
)
from bpoguard.workspace import Workspace

DATA = Path(__file__).parent / "data"
MAILBOX = "claims-desk@northbank.example"


@pytest.fixture
def ws(home: Path) -> Iterator[Workspace]:
    workspace.init(home)
    with Workspace.open(home) as opened:
        yield opened


def events(ws: Workspace) -> list[dict[str, object]]:
    rows = lake.dataset(ws.settings.lake_dir).to_table().to_pylist()
    return sorted(rows, key=lambda r: (r["time"], r["event_id"]))


def test_m365_audit_maps_the_mailbox_takeover(ws: Workspace) -> None:
    report = import_m365(ws, [DATA / "m365_audit.csv"])

    rows = events(ws)
    assert [r["action"] for r in rows] == [
        "mailbox.signin",
        "mailbox.signin",
        "mailbox.access",
        "account.password_change",
        "mailbox.change",
        "account.password_reset",
        "email.send",
        "mailbox.signin",
    ]
    outside = rows[1]
    assert outside["actor"] == "agent.rahul@bpo-mumbai.example"
    assert outside["account"] == MAILBOX and outside["target"] == MAILBOX
    assert outside["src_ip"] == "203.0.113.77"  # the port M365 appends is dropped
    assert rows[2]["bytes"] == 48211 + 120733 + 9021
    change = rows[3]
    assert change["target"] == MAILBOX and change["outcome"] == "success"
    forwarding = rows[4]
    assert forwarding["dest"] == "smtp:claims.copy@rivalfirm.example"
    assert forwarding["fields"] == [
        "DeliverToMailboxAndForward",
        "ForwardingSmtpAddress",
        "Identity",
    ]
    assert rows[6]["bytes"] == 35120
    assert "Account review" not in str(rows[6]["raw"])  # subjects can quote customers
    failed = rows[7]
    assert failed["outcome"] == "failure" and failed["src_ip"] == "2001:db8::5"
    assert json.loads(str(rows[0]["raw"]))["LogonType"] == 2
    assert report.notes == ["operations not mapped, not imported: FileAccessed (1)"]


def test_m365_reimport_adds_nothing_and_ids_come_from_the_record(ws: Workspace) -> None:
    import_m365(ws, [DATA / "m365_audit.csv"])
    again = import_m365(ws, [DATA / "m365_audit.csv"])

    assert again.files[0].status == "already imported"
    ids = [r["event_id"] for r in events(ws)]
    assert len(ids) == 8 and "m365-0b6f3c7e-2d41-4a8e-b7a1-5e9d8c3f0a11" in ids


def test_m365_bad_audit_data_is_named_by_line(ws: Workspace, tmp_path: Path) -> None:
    lines = (DATA / "m365_audit.csv").read_text(encoding="utf-8").splitlines()
    lines[3] = 'x,2026-03-03T00:00:00Z,ExchangeItem,MailboxLogin,a@b.example,"{not json",,'
    path = tmp_path / "audit.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(BadLine, match=r"^audit\.csv line 4: AuditData is not valid JSON$"):
        import_m365(ws, [path])
    assert lake.count(ws.settings.lake_dir) == 0

    report = import_m365(ws, [path], skip_bad=True)
    assert report.files[0].skipped == 1 and report.files[0].rows == 7


@pytest.mark.parametrize("name", ["entra_signins.json", "entra_signins.jsonl"])
def test_entra_json_sign_ins_succeed_or_fail_by_error_code(ws: Workspace, name: str) -> None:
    import_entra(ws, [DATA / name])

    rows = events(ws)
    assert [r["outcome"] for r in rows] == ["success", "failure", "success"]
    assert {r["action"] for r in rows} == {"auth.signin"}
    assert all(r["actor"] == MAILBOX for r in rows)  # UPNs compared without case
    assert rows[1]["reasons"] == [
        "error 50126: Error validating credentials due to invalid username or password."
    ]
    assert rows[1]["src_ip"] == "203.0.113.77" and rows[0]["device_id"] == "BPO-MUM-WS-0412"
    assert rows[0]["target"] == "Office 365 Exchange Online"
    assert str(rows[1]["time"]) == "2026-03-03 21:45:19.123456+00:00"
    assert rows[0]["event_id"] == "entra-66ea54eb-6301-4ee5-be62-ff5a759b0100"


def test_entra_portal_csv_uses_the_download_headers(ws: Workspace) -> None:
    import_entra(ws, [DATA / "entra_signins.csv"])

    rows = events(ws)
    assert [(r["outcome"], r["src_ip"]) for r in rows] == [
        ("success", "10.20.4.31"),
        ("failure", "198.51.100.200"),
    ]
    assert rows[1]["reasons"] == ["error 50074: Strong Authentication is required."]
    assert rows[0]["device_id"] == "5b6c7d8e-aaaa-bbbb-cccc-000000000031"


def test_entra_json_record_errors_name_the_record(ws: Workspace, tmp_path: Path) -> None:
    records = json.loads((DATA / "entra_signins.json").read_text(encoding="utf-8"))["value"]
    records[1]["createdDateTime"] = "yesterday"
    path = tmp_path / "signins.json"
    path.write_text(json.dumps(records), encoding="utf-8")

    with pytest.raises(BadLine, match=r"^signins\.json record 2: createdDateTime is not an ISO"):
        import_entra(ws, [path])


def test_a_large_json_array_streams_across_read_blocks(ws: Workspace, tmp_path: Path) -> None:
    base = json.loads((DATA / "entra_signins.json").read_text(encoding="utf-8"))["value"][0]
    path = tmp_path / "many.json"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("[\n")
        for n in range(4000):  # about 3 MB: several of the reader's 1 MB blocks
            record = dict(base, id=f"sign-in-{n:05d}", padding="x" * 300)
            handle.write(("," if n else "") + json.dumps(record) + "\n")
        handle.write("]\n")

    report = import_entra(ws, [path])

    assert report.files[0].rows == 4000
    assert len({r["event_id"] for r in events(ws)}) == 4000


def test_hr_register_gives_join_notice_and_leave_with_the_planned_date(ws: Workspace) -> None:
    import_hr(ws, [DATA / "hr.csv"])

    rows = [(r["action"], r["actor"], str(r["time"].date()), r["reasons"]) for r in events(ws)]
    assert rows == [
        ("hr.join", "S0412", "2025-06-02", []),
        ("hr.notice", "S0388", "2026-02-20", []),
        ("hr.leave", "S0290", "2026-02-27", []),
        ("hr.leave", "S0388", "2026-03-06", ["planned at notice"]),
    ]


def test_asset_register_issue_return_lost(ws: Workspace) -> None:
    import_assets(ws, [DATA / "assets.csv"])

    rows = [(r["action"], r["device_id"], r["actor"]) for r in events(ws)]
    assert rows == [
        ("asset.issue", "LT-0311", "S0388"),
        ("asset.issue", "LT-0420", "S0412"),
        ("asset.return", "LT-0201", "S0290"),
        ("asset.lost", "LT-0311", "S0388"),
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        ("person,event,date\nS1,fired,2026-01-01\n", "line 2: event is not one of joiner, notice, leaver"),
        ("person,event,date\nS1,joiner,01/02/2026\n", "line 2: date is not a date (YYYY-MM-DD)"),
        ("person,event,date,leaving_date\nS1,notice,2026-02-01,2026-01-01\n", "line 2: leaving_date is before the notice"),
        ("person,when\nS1,2026-01-01\n", "header lacks event, date"),
    ],
)  # fmt: skip
def test_hr_bad_rows_are_refused_in_one_line(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    workspace.init(home)
    path = tmp_path / "hr.csv"
    path.write_text(content, encoding="utf-8")

    assert main(["import", "hr", str(path), "--home", str(home)]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_imports_every_kind_with_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace.init(home)
    for kind, name in (
        ("m365", "m365_audit.csv"),
        ("entra", "entra_signins.json"),
        ("hr", "hr.csv"),
        ("assets", "assets.csv"),
    ):
        assert main(["import", kind, str(DATA / name), "--home", str(home), "--json"]) == 0
        document = json.loads(capsys.readouterr().out)
        assert document["imported"] == 1 and document["rows"] > 0
    with Workspace.open(home) as ws:
        assert lake.count(ws.settings.lake_dir) == 8 + 3 + 4 + 4


def test_a_csv_row_with_the_wrong_number_of_fields_is_a_bad_line(
    ws: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "assets.csv"
    path.write_text("asset,person,event,date\nLT-1,S1,issued\nLT-2,S2,lost,2026-01-02\n")

    with pytest.raises(BadLine, match=r"^assets\.csv line 2: has 3 fields, expected 4$"):
        import_assets(ws, [path])
    report = import_assets(ws, [path], skip_bad=True)
    assert (report.files[0].rows, report.files[0].skipped) == (1, 1)


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(
        st.dictionaries(
            st.text(min_size=1, max_size=8),
            st.one_of(st.integers(), st.text(max_size=30), st.lists(st.integers(), max_size=3)),
            max_size=4,
        ),
        max_size=12,
    ),
    spacing=st.sampled_from(["", " ", "\n", ",\n  "]),
    page=st.booleans(),
)
def test_json_arrays_stream_back_the_same_records_across_any_block_size(
    records: list[dict[str, object]], spacing: str, page: bool
) -> None:
    body = "[" + spacing + ("," + spacing).join(json.dumps(r) for r in records) + spacing + "]"
    text = '{"@odata.context": "x",\n "value": ' + body + "}" if page else body
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "records.json"
        path.write_text(text, encoding="utf-8")
        with mock.patch.object(_records, "_CHUNK", 7):  # tiny blocks: records span several
            found = [r for _, r in _records.json_records(path, lambda *a: None)]
    assert found == records


@pytest.mark.postgres
def test_imports_are_recorded_and_idempotent_on_postgresql(tmp_path: Path, pg_db: str) -> None:
    home = tmp_path / "pg-ws"
    workspace.init(home, db=pg_db)
    with Workspace.open(home) as ws:
        first = import_hr(ws, [DATA / "hr.csv"])
        again = import_hr(ws, [DATA / "hr.csv"])
        assert first.files[0].rows == 4 and again.files[0].status == "already imported"
        assert lake.count(ws.settings.lake_dir) == 4
