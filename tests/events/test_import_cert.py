"""Importing CERT insider-threat data: mapping, people, idempotency, bad lines, all-or-nothing."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from bpoguard import workspace
from bpoguard.cli import main
from bpoguard.events import imports, lake, people
from bpoguard.events.certgen import CertConfig, generate
from bpoguard.events.importers import BadLine, _common, import_cert
from bpoguard.workspace import Workspace


@pytest.fixture(scope="module")
def r42(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cert") / "r4.2"
    generate(out, CertConfig(users=40, days=62, seed=5, insiders=3))
    return out


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory, r42: Path) -> Iterator[Workspace]:
    """One workspace with the r4.2 folder imported, shared by the tests that only read it."""
    home = tmp_path_factory.mktemp("ws") / "ws"
    workspace.init(home)
    with Workspace.open(home) as opened:
        import_cert(opened, r42)
        yield opened


@pytest.fixture(scope="module")
def r62(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cert") / "r6.2"
    generate(out, CertConfig(users=30, days=35, seed=6, insiders=3, fmt="r6.2"))
    return out


@pytest.fixture
def ws(home: Path) -> Iterator[Workspace]:
    workspace.init(home)
    opened = Workspace.open(home)
    yield opened
    opened.close()


def lines(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return sum(1 for _ in handle) - 1


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def events(ws: Workspace, *actions: str) -> list[dict[str, object]]:
    wanted = pc.field("action").isin(list(actions)) if actions else None
    return lake.dataset(ws.settings.lake_dir).to_table(filter=wanted).to_pylist()


def copy_with(src: Path, dst: Path, edit: dict[int, str]) -> Path:
    """A copy of a CERT folder's file with some lines (1-based) replaced."""
    text = src.read_text(encoding="utf-8").splitlines()
    for number, line in edit.items():
        text[number - 1] = line
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(text) + "\n", encoding="utf-8")
    return dst


@pytest.mark.slow
def test_every_row_becomes_one_event_with_the_cert_mapping(imported: Workspace, r42: Path) -> None:
    with imported.store.session() as session:
        by_kind = {r.kind: r.rows for r in imports.listing(session)}
    for kind in ("logon", "device", "file", "email", "http"):
        assert by_kind[f"cert.{kind}"] == lines(r42 / f"{kind}.csv")
    ids = lake.dataset(imported.settings.lake_dir).to_table(columns=["event_id"]).column(0)
    assert pc.count_distinct(ids).as_py() == len(ids)
    rows = events(imported, "auth.logon", "email.send", "device.connect", "file.copy")
    first_logon = read(r42 / "logon.csv")[0]
    event = next(r for r in rows if r["event_id"] == "cert-logon-" + first_logon["id"].strip("{}"))
    assert event["action"] == first_logon["activity"].replace("Log", "auth.log").lower()
    assert event["actor"] == first_logon["user"] and event["device_id"] == first_logon["pc"]
    assert event["time"].strftime("%m/%d/%Y %H:%M:%S") == first_logon["date"]
    assert event["raw"] == ",".join(first_logon.values())
    mails = [r for r in rows if r["action"] == "email.send"]
    assert all(r["bytes"] and r["bytes"] > 0 and r["account"].endswith("@dtaa.com") for r in mails)
    assert any(r["attachments"] for r in mails) and "," in next(
        r["dest"] for r in mails if r["dest"].count("@") > 1
    )
    assert all(r["removable"] for r in rows if r["action"].startswith(("device.", "file.")))
    visits = (
        lake.dataset(imported.settings.lake_dir)
        .head(200, filter=pc.field("action") == "web.visit")
        .to_pylist()
    )
    assert len(visits) == 200
    assert all(r["dest"].startswith("http://") and r["target"] in r["dest"] for r in visits)


def test_people_dimension_holds_each_snapshot_with_traits_and_supervisor_ids(
    imported: Workspace, r42: Path
) -> None:
    table = people.load(imported.settings.lake_dir)
    january = [r for r in table.to_pylist() if r["snapshot"].month == 1]
    assert len(january) == lines(r42 / "LDAP" / "2010-01.csv")
    ids = {r["person"] for r in january}
    top = [r for r in january if r["supervisor"] is None]
    assert len(top) == 1
    assert all(r["supervisor"] in ids for r in january if r is not top[0])
    assert all(r["O"] is not None and 10 <= r["N"] <= 50 for r in january)


def test_people_who_vanish_from_a_snapshot_get_an_hr_leave_event(
    imported: Workspace, r42: Path
) -> None:
    def members(name: str) -> set[str]:
        return {r["user_id"] for r in read(r42 / "LDAP" / name)}

    expected = {
        (person, f"2010-{m + 1:02d}-01")
        for m in (1, 2)
        for person in members(f"2010-{m:02d}.csv") - members(f"2010-{m + 1:02d}.csv")
    }
    leaves = {(r["actor"], str(r["time"].date())) for r in events(imported, "hr.leave")}
    assert expected and leaves == expected
    truth = {r["user"] for r in read(r42 / "answers" / "insiders.csv")}
    assert truth <= {person for person, _ in leaves}


def test_importing_the_same_folder_again_adds_nothing(imported: Workspace, r42: Path) -> None:
    ws = imported
    before = lake.count(ws.settings.lake_dir)
    snapshots = people.load(ws.settings.lake_dir).num_rows

    again = import_cert(ws, r42)

    assert lake.count(ws.settings.lake_dir) == before
    assert people.load(ws.settings.lake_dir).num_rows == snapshots
    assert again.rows == 0
    assert {f.status for f in again.files} == {"already imported"}
    with ws.store.session() as session:
        recorded = imports.listing(session)
    assert {r.name for r in recorded} >= {"logon.csv", "http.csv", "LDAP/2010-02.csv"}
    assert all(len(r.sha256) == 64 for r in recorded)


def test_event_ids_are_the_same_in_any_workspace(tmp_path: Path, r42: Path) -> None:
    ids = []
    for name in ("a", "b"):
        workspace.init(tmp_path / name)
        with Workspace.open(tmp_path / name) as ws:
            import_cert(ws, r42 / "device.csv")
            ids.append(sorted(r["event_id"] for r in events(ws)))
    assert ids[0] == ids[1] and ids[0]


@pytest.mark.slow
def test_r62_activities_and_removable_media_map_to_their_actions(ws: Workspace, r62: Path) -> None:
    import_cert(ws, r62)

    rows = events(ws)
    actions = {r["action"] for r in rows}
    assert {"file.open", "file.write", "file.copy", "email.view", "web.download"} <= actions
    source = read(r62 / "file.csv")
    removable = sum(
        r["to_removable_media"] == "True" or r["from_removable_media"] == "True" for r in source
    )
    assert sum(bool(r["removable"]) for r in rows if r["action"].startswith("file.")) == removable
    views = [r for r in rows if r["action"] == "email.view"]
    assert views and all(r["attachments"] is not None for r in views)
    connects = [r for r in rows if r["action"] == "device.connect"]
    assert all(r["dest"] and r["dest"].startswith("R:\\") for r in connects)
    assert all(p["projects"] for p in people.load(ws.settings.lake_dir).to_pylist())


def test_a_bad_date_rejects_the_file_naming_the_line_and_not_the_value(
    ws: Workspace, r42: Path, tmp_path: Path
) -> None:
    logon = copy_with(
        r42 / "logon.csv",
        tmp_path / "bad" / "logon.csv",
        {4: "{AAAA-BBBBBBBB-CCCCCCCC},2010-01-04 08:00,SECRET7,PC-0001,Logon"},
    )

    with pytest.raises(BadLine, match=r"^logon\.csv line 4: date is not MM/DD/YYYY HH:MM:SS$"):
        import_cert(ws, logon)

    assert lake.count(ws.settings.lake_dir) == 0
    assert not list(ws.settings.lake_dir.glob(".staging-*"))
    with ws.store.session() as session:
        assert imports.listing(session) == []


def test_skip_bad_counts_bad_lines_and_imports_the_rest(
    ws: Workspace, r42: Path, tmp_path: Path
) -> None:
    logon = copy_with(
        r42 / "logon.csv",
        tmp_path / "bad" / "logon.csv",
        {
            3: "{AAAA-BBBBBBBB-CCCCCCCC},13/45/2010 08:00:00,AAA0001,PC-0001,Logon",
            5: "{AAAA-BBBBBBBB-DDDDDDDD},01/04/2010 08:00:00,AAA0001,PC-0001,Sleep",
        },
    )

    report = import_cert(ws, logon, skip_bad=True)

    (entry,) = report.files
    assert entry.skipped == 2 and entry.rows == lines(logon) - 2
    assert entry.bad_lines == [
        "logon.csv line 3: date is not MM/DD/YYYY HH:MM:SS",
        "logon.csv line 5: activity is not one of Logon, Logoff",
    ]
    assert lake.count(ws.settings.lake_dir) == entry.rows


def test_a_line_with_the_wrong_number_of_fields_is_named(
    ws: Workspace, r42: Path, tmp_path: Path
) -> None:
    device = copy_with(
        r42 / "device.csv",
        tmp_path / "bad" / "device.csv",
        {6: "{AAAA-BBBBBBBB-CCCCCCCC},01/04/2010 08:00:00,AAA0001,PC-0001,Connect,extra"},
    )

    with pytest.raises(BadLine, match=r"^device\.csv line 6: has 6 fields, expected 5$"):
        import_cert(ws, device)


def test_a_failure_late_in_a_big_file_leaves_the_lake_as_it_was(
    ws: Workspace, r42: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small blocks so that several batches are staged before the bad last line.
    monkeypatch.setattr(_common, "CHUNK", 16_384)
    total = lines(r42 / "logon.csv")
    logon = copy_with(
        r42 / "logon.csv",
        tmp_path / "bad" / "logon.csv",
        {total + 1: "{AAAA-BBBBBBBB-CCCCCCCC},01/04/2010 25:00:00,AAA0001,PC-0001,Logon"},
    )
    import_cert(ws, r42 / "device.csv")
    before = lake.count(ws.settings.lake_dir)

    with pytest.raises(BadLine, match=rf"line {total + 1}: date"):
        import_cert(ws, logon)

    assert lake.count(ws.settings.lake_dir) == before
    assert not list(ws.settings.lake_dir.glob(".staging-*"))


def test_a_file_that_is_not_cert_is_refused_with_the_expected_header(
    ws: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "logon.csv"
    path.write_text("when,who,what\n1,2,3\n", encoding="utf-8")

    with pytest.raises(Exception, match=r"logon\.csv: header is not CERT logon \(expected id,date"):
        import_cert(ws, path)


@pytest.mark.slow
def test_cli_imports_prints_json_and_refuses_bad_input_in_one_line(
    home: Path, r42: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace.init(home)
    folder = tmp_path / "cert"
    shutil.copytree(r42, folder)

    assert main(["import", "cert", str(folder), "--home", str(home), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["rows"] > 0 and document["imported"] >= 6

    copy_with(r42 / "email.csv", folder / "email.csv", {2: "x,y"})
    assert main(["import", "cert", str(folder), "--home", str(home)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("bpoguard: email.csv line 2: has 2 fields, expected 11")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_lake_dataset_ignores_the_people_dimension(ws: Workspace, r42: Path) -> None:
    import_cert(ws, r42 / "LDAP" / "2010-01.csv")
    import_cert(ws, r42 / "logon.csv")

    table = lake.dataset(ws.settings.lake_dir).to_table()
    assert table.num_rows == lines(r42 / "logon.csv")
    assert pc.all(pc.equal(table.column("source"), "cert")).as_py()


def test_no_raw_leaves_raw_empty_and_keeps_everything_else(ws: Workspace, r42: Path) -> None:
    import_cert(ws, r42 / "device.csv", keep_raw=False)

    rows = events(ws)
    assert len(rows) == lines(r42 / "device.csv")
    assert all(r["raw"] is None and r["device_id"] and r["actor"] for r in rows)


def test_skipped_lines_are_numbered_exactly_around_lines_that_do_not_parse(
    ws: Workspace, r42: Path, tmp_path: Path
) -> None:
    logon = copy_with(
        r42 / "logon.csv",
        tmp_path / "bad" / "logon.csv",
        {
            3: "{AAAA-BBBBBBBB-CCCCCCCC},01/04/2010 08:00:00,AAA0001",
            4: "{AAAA-BBBBBBBB-DDDDDDDD},01/04/2010 08:00:00,AAA0001,PC-0001,Logon,x,y",
            7: "{AAAA-BBBBBBBB-EEEEEEEE},01/04/2010 8 o'clock,AAA0001,PC-0001,Logon",
        },
    )

    report = import_cert(ws, logon, skip_bad=True)

    assert report.files[0].bad_lines == [
        "logon.csv line 3: has 3 fields, expected 5",
        "logon.csv line 4: has 7 fields, expected 5",
        "logon.csv line 7: date is not MM/DD/YYYY HH:MM:SS",
    ]
    assert report.files[0].skipped == 3


def lake_rows(ws: Workspace) -> pa.Table:
    """Every event of the workspace's lake, in event-id order (file layout aside)."""
    return lake.dataset(ws.settings.lake_dir).to_table().drop_columns(["day"]).sort_by("event_id")


def import_into(home: Path, data: Path, **options: object) -> pa.Table:
    workspace.init(home)
    with Workspace.open(home) as ws:
        import_cert(ws, data, **options)  # type: ignore[arg-type]
        return lake_rows(ws)


@pytest.mark.slow
@pytest.mark.parametrize("release", ["r4.2", "r6.2"])
def test_ranges_in_worker_processes_give_exactly_the_rows_of_one_pass(
    tmp_path: Path,
    r42: Path,
    r62: Path,
    release: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = r42 if release == "r4.2" else r62
    whole = import_into(tmp_path / "one", data, workers=1)
    monkeypatch.setattr(_common, "CHUNK", 30_000)  # every activity file in several ranges
    assert len(_common.line_ranges(data / "logon.csv", _common.CHUNK)) > 2

    split = import_into(tmp_path / "split", data, workers=2)
    monkeypatch.setattr(_common, "PIECE", 7_000)  # and each range in pieces (in this process)
    pieces = import_into(tmp_path / "pieces", data, workers=1)

    assert split.num_rows == whole.num_rows > 0
    assert split.equals(whole)
    assert pieces.equals(whole)


def test_raw_is_each_source_line_exactly_even_with_crlf_line_ends(
    ws: Workspace, r42: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = (r42 / "email.csv").read_text(encoding="utf-8").splitlines()
    email = tmp_path / "crlf" / "email.csv"
    email.parent.mkdir()
    email.write_bytes(("\r\n".join(source) + "\r\n").encode())
    monkeypatch.setattr(_common, "CHUNK", 40_000)

    import_cert(ws, email, workers=2)

    expected = {"cert-email-" + line.split(",")[0].strip("{}"): line for line in source[1:]}
    got = {r["event_id"]: r["raw"] for r in events(ws)}
    assert got == expected


@pytest.mark.parametrize("workers", [1, 2])
def test_bad_lines_in_later_ranges_are_numbered_in_the_whole_file(
    ws: Workspace, r42: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(_common, "CHUNK", 20_000)
    monkeypatch.setattr(_common, "PIECE", 6_000)  # several pieces a range, in this process
    original = (r42 / "logon.csv").read_text(encoding="utf-8").splitlines()
    total = len(original)
    assert len(_common.line_ranges(r42 / "logon.csv", _common.CHUNK)) > 5
    text = list(original)
    text[700 - 1] = ""  # an empty line: skipped by the parser, counted as a line
    text[1500 - 1] = "{AAAA-BBBBBBBB-CCCCCCCC},01/04/2010 08:00:00,AAA0001"
    text[total - 3 - 1] = "{AAAA-BBBBBBBB-DDDDDDDD},01/04/2010 08:00:00,AAA0001,PC-0001,Nap"
    logon = tmp_path / "bad" / "logon.csv"
    logon.parent.mkdir()
    logon.write_text("\n".join(text) + "\n", encoding="utf-8")

    with pytest.raises(BadLine, match=r"^logon\.csv line 1500: has 3 fields, expected 5$"):
        import_cert(ws, logon, workers=workers)
    report = import_cert(ws, logon, skip_bad=True, workers=workers)

    (entry,) = report.files
    assert entry.bad_lines == [
        "logon.csv line 1500: has 3 fields, expected 5",
        f"logon.csv line {total - 3}: activity is not one of Logon, Logoff",
    ]
    assert entry.skipped == 2 and entry.rows == total - 1 - 3
    assert lake.count(ws.settings.lake_dir) == entry.rows


def test_a_file_imported_by_workers_is_already_imported_the_second_time(
    ws: Workspace, r42: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_common, "CHUNK", 50_000)
    first = import_cert(ws, r42 / "logon.csv", workers=2)
    before = lake.count(ws.settings.lake_dir)

    again = import_cert(ws, r42 / "logon.csv", workers=2)

    assert first.files[0].rows == before == lines(r42 / "logon.csv")
    assert again.files[0].status == "already imported" and again.rows == 0
    assert lake.count(ws.settings.lake_dir) == before
    assert not list(ws.settings.lake_dir.glob(".staging-*"))


def test_bad_line_messages_never_quote_the_line(
    ws: Workspace, r42: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_common, "CHUNK", 20_000)
    secret = "SECRETVALUE42"
    email = copy_with(
        r42 / "email.csv",
        tmp_path / "bad" / "email.csv",
        {
            60: f"{{AAAA-BBBBBBBB-CCCCCCCC}},01/04/2010 08:00:00,AAA0001,PC-1,{secret},,,x,{secret},0,c"
        },
    )

    with pytest.raises(BadLine) as caught:
        import_cert(ws, email, workers=2)

    assert str(caught.value) == "email.csv line 60: size is not a whole number"
    assert secret not in str(caught.value)


def test_a_quote_is_just_a_character_of_its_field(ws: Workspace, r42: Path, tmp_path: Path) -> None:
    line = (
        '{AAAA-BBBBBBBB-CCCCCCCC},01/04/2010 08:00:00,AAA0001,PC-0001,"http://a.example/x",say "hi"'
    )
    http = copy_with(r42 / "http.csv", tmp_path / "q" / "http.csv", {2: line})

    import_cert(ws, http, workers=1)

    (event,) = [r for r in events(ws) if r["event_id"] == "cert-http-AAAA-BBBBBBBB-CCCCCCCC"]
    assert event["raw"] == line and event["dest"] == '"http://a.example/x"'
