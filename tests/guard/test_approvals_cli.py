"""`bpoguard export approve|list|show|revoke`: one JSON document, one-line errors, ledger entries."""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli import assert_user_error, run, run_json
from sqlalchemy import select

from bpoguard.fields import FieldType
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.ledger import Ledger
from bpoguard.store import models as m
from bpoguard.workspace import Workspace


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BPOGUARD_HOME", "BPOGUARD_DB", "BPOGUARD_DEBUG", "BPOGUARD_KEK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def _people(home: Path) -> tuple[str, list[str], list[int]]:
    """A current supervisor, two agents, and customers of org-albion."""
    with Workspace.open(home) as ws, ws.store.session() as s:
        contract = s.scalars(select(m.Contract).where(m.Contract.client_id == "org-albion")).one()
        sites = list(contract.allowed_sites)
        supervisor = s.scalars(
            select(m.Staff.id)
            .where(m.Staff.role == m.StaffRole.SUPERVISOR, m.Staff.left.is_(None),
                   m.Staff.site_id.in_(sites))
            .order_by(m.Staff.id)
        ).first()  # fmt: skip
        agents = s.scalars(
            select(m.Staff.id)
            .where(m.Staff.role == m.StaffRole.AGENT, m.Staff.left.is_(None))
            .order_by(m.Staff.id.desc())
        ).all()
        customers = s.scalars(
            select(m.Customer.id)
            .where(m.Customer.client_id == "org-albion", m.Customer.is_canary.is_(False))
            .order_by(m.Customer.id.desc())
        ).all()
    assert supervisor is not None
    return supervisor, list(agents[:2]), list(customers[:6])


def _ids(listed: dict[str, object]) -> list[object]:
    approvals = listed["approvals"]
    assert isinstance(approvals, list)
    return [a["id"] for a in approvals]


def _ledger_entry(home: Path, index: int) -> dict[str, object]:
    with Workspace.open(home) as ws:
        return Ledger.for_workspace(ws).entry(index)


def test_approve_list_show_revoke_and_the_ledger_verifies(
    office_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(office_home)
    supervisor, (agent, _), customers = _people(office_home)
    listing = tmp_path / "ids.txt"
    listing.write_text(f"# arrears list\n{customers[2]}\n\n{customers[3]}  # promised\n")
    given = run_json(capsys, "export", "approve", "--home", home, "--by", supervisor,
                     "--for", agent, "--client", "org-albion", "--field", "name",
                     "--field", "phone", "--customer", str(customers[0]), "--customer",
                     str(customers[1]), "--customers-file", str(listing),
                     "--reason", "arrears campaign", "--valid-for", "2d")  # fmt: skip
    assert given["state"] == "pending"
    assert given["customer_ids"] == customers[:4]
    assert given["fields"] == ["name", "phone"]
    index = given["ledger_index"]
    assert isinstance(index, int)
    entry = _ledger_entry(office_home, index)
    assert (entry["event"], entry["by"], entry["staff"], entry["customers"]) == (
        "approve",
        supervisor,
        agent,
        customers[:4],
    )
    approval = str(given["id"])

    listed = run_json(capsys, "export", "list", "--home", home, "--state", "pending",
                      "--for", agent)  # fmt: skip
    assert _ids(listed) == [given["id"]]
    shown = run_json(capsys, "export", "show", approval, "--home", home)
    assert shown == given

    code, out, _ = run(capsys, "export", "show", approval, "--home", home)
    assert code == 0 and f"Export approval {approval}: pending" in out

    revoked = run_json(capsys, "export", "revoke", approval, "--home", home, "--by", supervisor,
                       "--reason", "campaign cancelled")  # fmt: skip
    assert revoked["state"] == "revoked"
    record = revoked["revoked"]
    assert isinstance(record, dict) and record["by"] == supervisor
    assert _ledger_entry(office_home, record["ledger_index"])["event"] == "revoke"
    listed = run_json(capsys, "export", "list", "--home", home, "--state", "revoked")
    assert given["id"] in _ids(listed)

    code, out, err = run(capsys, "ledger", "verify", "--home", home)
    assert code == 0, err
    assert out.startswith("OK:")


def test_approval_output_names_ids_never_customer_values(
    office_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(office_home)
    supervisor, (agent, _), customers = _people(office_home)
    code, out, err = run(capsys, "export", "approve", "--home", home, "--by", supervisor,
                         "--for", agent, "--client", "org-albion", "--field", "card_number",
                         "--customer", str(customers[4]), "--reason", "chargeback file")  # fmt: skip
    assert code == 0, err
    with Workspace.open(office_home) as ws, ws.store.engine.connect() as conn:
        vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
        card = vault.get(conn, customers[4], (FieldType.CARD_NUMBER,)).get(FieldType.CARD_NUMBER)
    assert card and card not in out and card not in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--valid-for", "8d"], "at most 7 days"),
        (["--valid-for", "soon"], "give minutes, hours or days"),
        (["--by", "agent"], "is not a supervisor"),
        (["--for", "NOBODY"], "unknown staff member"),
        (["--no-customers"], "name the customers"),
        (["--reason", ""], "needs a reason"),
        (["--field", "shoe_size"], "Invalid value for '--field'"),
    ],
)
def test_bad_approvals_are_one_line_errors_and_record_nothing(
    office_home: Path, capsys: pytest.CaptureFixture[str], change: list[str], message: str
) -> None:
    supervisor, (agent, other), customers = _people(office_home)
    options = {"--by": supervisor, "--for": agent, "--reason": "a list", "--field": "name",
               "--customer": str(customers[5])}  # fmt: skip
    if change == ["--no-customers"]:
        del options["--customer"]
    else:
        options[change[0]] = other if change[1] == "agent" else change[1]
    args = [arg for pair in options.items() for arg in pair]
    with Workspace.open(office_home) as ws:
        before = Ledger.for_workspace(ws).size()
    code, out, err = run(capsys, "export", "approve", "--home", str(office_home),
                         "--client", "org-albion", *args)  # fmt: skip
    assert_user_error(code, out, err)
    assert message in err
    with Workspace.open(office_home) as ws:
        assert Ledger.for_workspace(ws).size() == before


def test_a_customer_file_line_that_is_not_an_id_is_named_not_echoed(
    office_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    supervisor, (agent, _), customers = _people(office_home)
    listing = tmp_path / "ids.txt"
    listing.write_text(f"{customers[0]}\n4929 1234 5678 9012\n")
    code, out, err = run(capsys, "export", "approve", "--home", str(office_home), "--by",
                         supervisor, "--for", agent, "--client", "org-albion", "--field", "name",
                         "--customers-file", str(listing), "--reason", "x")  # fmt: skip
    assert_user_error(code, out, err)
    assert "line 2: not a customer id" in err and "4929" not in err


def test_show_and_revoke_of_an_unknown_approval_are_user_errors(
    office_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    supervisor, _, _ = _people(office_home)
    code, out, err = run(capsys, "export", "show", "987654", "--home", str(office_home))
    assert_user_error(code, out, err)
    assert "no export approval 987654" in err
    code, out, err = run(capsys, "export", "revoke", "987654", "--home", str(office_home),
                         "--by", supervisor, "--reason", "gone")  # fmt: skip
    assert_user_error(code, out, err)
    assert "no export approval 987654" in err
