"""`bpoguard canary ...`: plant, list, show, report; one JSON document, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli import run, run_json
from sqlalchemy import select

from bpoguard.fields import FieldType
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.store import models as m
from bpoguard.workspace import Workspace

PHONES = ("07700 900501", "07700 900502", "07700 900503")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BPOGUARD_HOME", "BPOGUARD_DB", "BPOGUARD_DEBUG", "BPOGUARD_KEK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def _agents(home: Path, count: int = 2) -> list[str]:
    with Workspace.open(home) as ws, ws.store.session() as s:
        ids = s.scalars(
            select(m.Staff.id).where(m.Staff.role == m.StaffRole.AGENT).order_by(m.Staff.id)
        ).all()
    return list(ids[:count])


def test_plant_with_agents_phones_and_domain_then_list_and_show(
    office_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(office_home)
    first, second = _agents(office_home)
    phones = tmp_path / "phones.txt"
    phones.write_text("\n".join(PHONES) + "\n\n", encoding="utf-8")
    planted = run_json(capsys, "canary", "plant", "--home", home, "--client", "org-albion",
                       "--count", "3", "--shown-to", first, "--shown-to", second,
                       "--phones", str(phones), "--email-domain", "trap.albion.example")  # fmt: skip
    rows = planted["planted"]
    assert isinstance(rows, list) and len(rows) == 3
    assert [r["shown_to"] for r in rows] == [first, second, first]
    ids = [int(r["customer_id"]) for r in rows]
    with Workspace.open(office_home) as ws, ws.store.engine.connect() as conn:
        vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
        for customer_id, phone in zip(ids, PHONES, strict=True):
            assert vault.lookup(conn, "org-albion", FieldType.PHONE, phone) == [customer_id]
            email = vault.get(conn, customer_id, [FieldType.EMAIL])[FieldType.EMAIL]
            assert email.endswith("@trap.albion.example")
    listed = run_json(capsys, "canary", "list", "--home", home, "--client", "org-albion")
    assert set(ids) <= {c["customer_id"] for c in listed["canaries"]}  # type: ignore[union-attr]
    shown = run_json(capsys, "canary", "show", str(ids[1]), "--home", home)
    assert shown["shown_to"] == second
    assert shown["exposures"] == [
        {"staff_id": second, "kind": "assigned", "at": shown["planted_at"], "allowed": None,
         "ledger_index": None}
    ]  # fmt: skip
    code, out, _ = run(capsys, "canary", "show", str(ids[1]), "--home", home)
    assert code == 0 and f"placed with {second}" in out


def test_plant_without_phones_says_how_to_make_them_reportable(
    office_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "canary", "plant", "--home", str(office_home),
                       "--client", "org-hudson", "--count", "1")  # fmt: skip
    assert code == 0
    assert "Planted 1 canary customers for org-hudson" in out
    assert "give --phones" in out


def test_report_ties_a_called_number_to_the_canary_and_its_agent(
    office_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(office_home)
    (agent,) = _agents(office_home, 1)
    phones = tmp_path / "one.txt"
    phones.write_text("07700 900599\n", encoding="utf-8")
    planted = run_json(capsys, "canary", "plant", "--home", home, "--client", "org-albion",
                       "--count", "1", "--shown-to", agent, "--phones", str(phones))  # fmt: skip
    (row,) = planted["planted"]  # type: ignore[misc]
    found = run_json(capsys, "canary", "report", "--home", home, "--phone", "+44 7700 900599",
                     "--on", "2026-03-20", "--note", "victim called us")  # fmt: skip
    assert found["field"] == "phone"
    assert [c["customer_id"] for c in found["matches"]] == [row["customer_id"]]  # type: ignore[union-attr]
    code, out, _ = run(capsys, "canary", "report", "--home", home, "--phone", "07700 900599")
    assert code == 0 and f"placed with {agent}" in out
    none = run_json(capsys, "canary", "report", "--home", home, "--phone", "07700 900000")
    assert none["matches"] == []
    assert "07700" not in json.dumps(found), "a report echoes no field value"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plant", "--client", "org-nowhere"], "no client org-nowhere"),
        (["plant", "--client", "org-albion", "--count", "0"], "--count must be between"),
        (["plant", "--client", "org-albion", "--phones", "missing.txt"], "cannot read missing.txt"),
        (["plant", "--client", "org-albion", "--shown-to", "X-9"], "no staff member X-9"),
        (["plant", "--client", "org-albion", "--email-domain", "@@"], "--email-domain must be"),
        (["report", "--phone", "1", "--email", "a@b.example"], "exactly one of --phone or --email"),
        (["report"], "exactly one of --phone or --email"),
        (["report", "--phone", "07700 900501", "--on", "20-03-2026"], "--on must be a date"),
        (["show", "1"], "customer 1 is not a canary"),
        (["show", "many"], "customer_id"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    office_home: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "canary", *args, "--home", str(office_home))
    assert code == 1
    assert out == ""
    assert err.startswith("bpoguard: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err


def test_a_phones_file_with_a_bad_number_names_the_canary_not_the_number(
    office_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    phones = tmp_path / "bad.txt"
    phones.write_text("07700 900511\n99999\n", encoding="utf-8")
    before = run_json(capsys, "canary", "list", "--home", str(office_home))
    code, _, err = run(capsys, "canary", "plant", "--home", str(office_home), "--client",
                       "org-albion", "--count", "2", "--phones", str(phones))  # fmt: skip
    assert code == 1 and "canary 2:" in err and "99999" not in err
    assert run_json(capsys, "canary", "list", "--home", str(office_home)) == before
