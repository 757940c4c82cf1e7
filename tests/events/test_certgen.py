"""The CERT-format generator: the dataset's files and columns, its insiders, its seed."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpoguard.cli import main
from bpoguard.errors import InputError
from bpoguard.events.certgen import (
    COLUMNS,
    COMPETITOR_DOMAINS,
    JOB_SITES,
    KEYLOGGER_SITES,
    LDAP_COLUMNS,
    CertConfig,
    generate,
)

SMALL = CertConfig(users=60, days=45, seed=3, insiders=3)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def when(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%m/%d/%Y %H:%M:%S")


@pytest.fixture(scope="module")
def r42(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cert") / "r4.2"
    generate(out, SMALL)
    return out


@pytest.fixture(scope="module")
def r62(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cert") / "r6.2"
    generate(out, CertConfig(users=60, days=45, seed=3, insiders=3, fmt="r6.2"))
    return out


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def insiders(folder: Path) -> dict[int, dict[str, str]]:
    return {int(r["scenario"]): r for r in rows(folder / "answers" / "insiders.csv")}


def test_files_have_the_release_headers_and_dates(r42: Path, r62: Path) -> None:
    for folder, release in ((r42, "r4.2"), (r62, "r6.2")):
        for kind, names in COLUMNS[release].items():
            lines = (folder / f"{kind}.csv").read_text(encoding="utf-8").splitlines()
            assert lines[0] == ",".join(names)
            assert len(lines) > 1
            first = lines[1].split(",")
            assert len(first) == len(names), (release, kind)
            when(first[1])  # MM/DD/YYYY HH:MM:SS
        ldap = sorted((folder / "LDAP").glob("*.csv"))
        assert [p.name for p in ldap] == ["2010-01.csv", "2010-02.csv"]
        header = ldap[0].read_text(encoding="utf-8").splitlines()[0]
        assert header == ",".join(LDAP_COLUMNS[release])


def test_rows_are_in_time_order_with_unique_ids(r42: Path) -> None:
    for kind in ("logon", "device", "email"):
        table = rows(r42 / f"{kind}.csv")
        times = [when(r["date"]) for r in table]
        assert times == sorted(times)
        assert len({r["id"] for r in table}) == len(table)


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(
    r42: Path, tmp_path: Path
) -> None:
    generate(tmp_path / "again", SMALL)
    generate(tmp_path / "other", CertConfig(users=60, days=45, seed=4, insiders=3))

    assert digests(tmp_path / "again") == digests(r42)
    assert digests(tmp_path / "other")["logon.csv"] != digests(r42)["logon.csv"]


def test_most_logons_are_in_office_hours_on_weekdays(r42: Path) -> None:
    logons = [when(r["date"]) for r in rows(r42 / "logon.csv") if r["activity"] == "Logon"]
    office = [t for t in logons if t.weekday() < 5 and 6 <= t.hour < 19]
    assert len(office) / len(logons) > 0.9


def test_each_person_mostly_uses_their_own_pc(r42: Path) -> None:
    by_user: dict[str, dict[str, int]] = {}
    for r in rows(r42 / "logon.csv"):
        by_user.setdefault(r["user"], {}).setdefault(r["pc"], 0)
        by_user[r["user"]][r["pc"]] += 1
    shares = [max(pcs.values()) / sum(pcs.values()) for pcs in by_user.values()]
    assert sorted(shares)[len(shares) // 2] > 0.85


def test_scenario_1_insider_had_no_drive_or_late_logons_before_the_first_act(r42: Path) -> None:
    truth = insiders(r42)[1]
    user, start = truth["user"], when(truth["start"])
    before = [r for r in rows(r42 / "device.csv") if r["user"] == user and when(r["date"]) < start]
    late = [
        r
        for r in rows(r42 / "logon.csv")
        if r["user"] == user and when(r["date"]) < start and when(r["date"]).hour >= 19
    ]
    assert before == [] and late == []
    acts = (r42 / "answers" / "r4.2-1" / truth["details"]).read_text().splitlines()
    assert any(line.startswith("http,") and "wikileaks.org" in line for line in acts)
    assert any(line.startswith("device,") for line in acts)
    assert any(line.startswith("logon,") and when(line.split(",")[2]).hour >= 20 for line in acts)


def test_normal_staff_also_use_drives_and_work_late(r42: Path) -> None:
    bad = {r["user"] for r in rows(r42 / "answers" / "insiders.csv")}
    drive_users = {r["user"] for r in rows(r42 / "device.csv")} - bad
    late = {
        r["user"]
        for r in rows(r42 / "logon.csv")
        if r["activity"] == "Logon" and when(r["date"]).hour >= 19
    } - bad
    assert len(drive_users) >= 5 and len(late) >= 3


def test_scenario_2_insider_job_hunts_writes_to_a_competitor_and_surges_on_a_drive(
    r42: Path,
) -> None:
    truth = insiders(r42)[2]
    user, start = truth["user"], when(truth["start"])
    acts = (r42 / "answers" / "r4.2-2" / truth["details"]).read_text().splitlines()
    assert any(any(site in line for site in JOB_SITES) for line in acts)
    mails = [line for line in acts if line.startswith("email,")]
    assert mails and all(any(d in line for d in COMPETITOR_DOMAINS) for line in mails)
    files = [r for r in rows(r42 / "file.csv") if r["user"] == user]
    days_before = max(1, (start.date() - dt.date(2010, 1, 4)).days)
    rate_before = sum(when(r["date"]) < start for r in files) / days_before
    rate_after = sum(when(r["date"]) >= start for r in files) / max(
        1, (when(truth["end"]).date() - start.date()).days + 1
    )
    assert rate_after > 5 * rate_before


def test_scenario_3_admin_plants_a_keylogger_and_mails_everyone_as_the_supervisor(
    r42: Path,
) -> None:
    truth = insiders(r42)[3]
    user = truth["user"]
    ldap = {r["user_id"]: r for r in rows(r42 / "LDAP" / "2010-01.csv")}
    assert ldap[user]["role"] == "ITAdmin"
    boss = next(r for r in ldap.values() if r["employee_name"] == ldap[user]["supervisor"])
    acts = (r42 / "answers" / "r4.2-3" / truth["details"]).read_text().splitlines()
    assert any(
        line.startswith("http,") and any(s in line for s in KEYLOGGER_SITES) for line in acts
    )
    mails = [line.split(",") for line in acts if line.startswith("email,")]
    assert len(mails) == 1
    header = COLUMNS["r4.2"]["email"]
    mail = dict(zip(header, mails[0][1:], strict=True))
    assert mail["from"] == boss["email"] and mail["user"] == user
    assert len(mail["to"].split(";")) >= 30


def test_leavers_vanish_from_later_snapshots_and_stop_acting(r42: Path) -> None:
    january = {r["user_id"] for r in rows(r42 / "LDAP" / "2010-01.csv")}
    february = {r["user_id"] for r in rows(r42 / "LDAP" / "2010-02.csv")}
    gone = january - february
    assert gone  # some people left in January
    last_seen = {}
    for r in rows(r42 / "logon.csv"):
        last_seen[r["user"]] = when(r["date"])
    assert all(last_seen[u] < dt.datetime(2010, 2, 1) for u in gone if u in last_seen)
    for truth in insiders(r42).values():
        assert truth["user"] not in {r["user_id"] for r in rows(r42 / "LDAP" / "2010-02.csv")} or (
            when(truth["end"]) >= dt.datetime(2010, 2, 1)
        )


def test_r62_adds_activity_and_removable_media_columns(r62: Path) -> None:
    files = rows(r62 / "file.csv")
    assert {r["activity"] for r in files} >= {"File Open", "File Write", "File Copy"}
    assert {r["to_removable_media"] for r in files} == {"True", "False"}
    assert {r["activity"] for r in rows(r62 / "http.csv")} >= {"WWW Visit", "WWW Download"}
    mails = rows(r62 / "email.csv")
    assert {r["activity"] for r in mails} == {"Send", "View"}
    assert any(r["attachments"].endswith(")") for r in mails)
    assert all(r["projects"] for r in rows(r62 / "LDAP" / "2010-01.csv"))


@pytest.mark.parametrize(
    "config, message",
    [
        (CertConfig(users=5), "--users"),
        (CertConfig(days=3), "--days"),
        (CertConfig(users=40, insiders=9), "--insiders"),
        (CertConfig(fmt="r5.1"), "--format"),
    ],
)
def test_bad_configurations_are_refused(config: CertConfig, message: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=message):
        generate(tmp_path / "x", config)
    assert not (tmp_path / "x").exists()


def test_cli_writes_the_dataset_and_refuses_a_full_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cert"
    args = ["simulate", "cert", "--out", str(out), "--users", "30", "--days", "30"]
    assert main([*args, "--insiders", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert '"total_events"' in captured.out
    assert len(rows(out / "answers" / "insiders.csv")) == 2

    assert main(args) == 1
    assert "is not empty" in capsys.readouterr().err


@given(st.integers(min_value=0, max_value=4_102_444_799))  # 1970 to the end of 2099
def test_dates_are_written_as_cert_does(seconds: int) -> None:
    from bpoguard.events.certgen import _format_dates

    written = _format_dates(np.array([seconds], dtype=np.int64))[0].as_py()
    expected = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
    assert written == expected
