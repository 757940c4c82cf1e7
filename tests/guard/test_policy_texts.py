"""Per-contract policy texts in the database: validated when set, loaded by the guard, via CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import insert

from bpoguard.cli import main
from bpoguard.guard import policy_texts
from bpoguard.guard._tables import guard_policies
from bpoguard.guard.policy import PolicyError, default_policy_text
from bpoguard.guard.service import Guard

if TYPE_CHECKING:
    from conftest import Office

AT = dt.datetime(2026, 3, 9, 12, 0, tzinfo=dt.UTC)
NO_VIEWS = (
    default_policy_text()
    + """
@id("client-freeze")
@reason("{client_id} has frozen every view")
forbid (principal, action == Action::"view", resource);
"""
)
UNSOUND = (
    default_policy_text()
    + """
@id("typo-rule")
@reason("never")
forbid (principal, action, resource)
when { principal.rol == "agent" };
"""
)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BPOGUARD_HOME", "BPOGUARD_DB", "BPOGUARD_DEBUG", "BPOGUARD_KEK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def _fresh_guard(office: Office) -> Guard:
    """A guard that reads the contracts' texts from the store, as a new process would."""
    return Guard(office.store, office.vault, office.guard._sink)


def _view(office: Office, guard: Guard) -> tuple[bool, tuple[str, ...]]:
    desk = office.desk()
    call = office.call(desk, desk.customers[0])
    decision = guard.view(office.ask(desk, interaction_id=call)).decision
    return decision.allowed, decision.reasons


def _unset(office: Office) -> None:
    contract = office.desk().contract
    with office.store.engine.begin() as conn:
        policy_texts.reset_policy(conn, contract)


def test_a_stored_text_decides_that_contract_and_reset_returns_to_the_default(
    office: Office,
) -> None:
    contract = office.desk().contract
    try:
        with office.store.engine.begin() as conn:
            stored = policy_texts.set_policy(conn, contract, NO_VIEWS, "test", AT)
        assert stored.own and stored.sha256 == policy_texts.digest(NO_VIEWS)
        allowed, reasons = _view(office, _fresh_guard(office))
        assert not allowed
        assert "denied: org-albion has frozen every view" in reasons
        with office.store.engine.begin() as conn:
            assert policy_texts.reset_policy(conn, contract)
        guard = _fresh_guard(office)
        assert _view(office, guard)[0]
    finally:
        _unset(office)


def test_a_running_guard_picks_up_a_new_text_when_it_reloads(office: Office) -> None:
    contract = office.desk().contract
    guard = _fresh_guard(office)
    try:
        assert _view(office, guard)[0]
        with office.store.engine.begin() as conn:
            policy_texts.set_policy(conn, contract, NO_VIEWS, "test", AT)
        guard.refresh()
        assert not _view(office, guard)[0]
    finally:
        _unset(office)


def test_an_unsound_text_is_refused_with_the_policy_and_line_and_nothing_is_stored(
    office: Office,
) -> None:
    contract = office.desk().contract
    line = default_policy_text().count("\n") + 2
    with office.store.engine.begin() as conn, pytest.raises(PolicyError) as raised:
        policy_texts.set_policy(conn, contract, UNSOUND, "test", AT)
    assert f"policy 'typo-rule' (line {line})" in str(raised.value)
    with office.store.engine.connect() as conn:
        assert not policy_texts.policy_of(conn, contract).own


def test_a_stored_text_that_no_longer_loads_denies_its_contract(office: Office) -> None:
    contract = office.desk().contract
    try:
        with office.store.engine.begin() as conn:  # as if written by an older version
            conn.execute(insert(guard_policies).values(contract_id=contract, text=UNSOUND,
                         sha256=policy_texts.digest(UNSOUND), updated_at=AT, updated_by="old"))  # fmt: skip
        allowed, reasons = _view(office, _fresh_guard(office))
        assert not allowed
        assert reasons == (f"denied: the policy set of contract {contract} does not load; fix it",)
    finally:
        _unset(office)


def test_an_unknown_contract_is_bad_input(office: Office) -> None:
    with office.store.engine.begin() as conn, pytest.raises(Exception, match="no contract nope"):
        policy_texts.set_policy(conn, "nope", NO_VIEWS, "test", AT)


# --- the CLI -------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_policy_show_set_validate_reset_on_the_command_line(
    office: Office, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, contract = str(office.ws.home), office.desk().contract
    text = tmp_path / "freeze.cedar"
    text.write_text(NO_VIEWS, encoding="utf-8")
    try:
        code, out, err = run(capsys, "policy", "show", "--contract", contract, "--home", home,
                             "--json")  # fmt: skip
        shown = json.loads(out)
        assert code == 0 and shown["source"] == "default", err
        assert shown["sha256"] == policy_texts.digest(default_policy_text())
        code, out, _ = run(capsys, "policy", "validate", str(text), "--json")
        assert code == 0 and json.loads(out)["policies"][-1] == "client-freeze"
        code, out, err = run(capsys, "policy", "set", str(text), "--contract", contract,
                             "--home", home, "--json")  # fmt: skip
        assert code == 0 and json.loads(out)["source"] == "contract", err
        code, out, _ = run(capsys, "policy", "show", "--contract", contract, "--home", home)
        assert code == 0 and out.startswith(f"// contract {contract}: own, set by cli")
        assert out.endswith(NO_VIEWS)
        assert not _view(office, _fresh_guard(office))[0]
        code, out, _ = run(capsys, "policy", "reset", "--contract", contract, "--home", home,
                           "--json")  # fmt: skip
        assert code == 0 and json.loads(out) == {"contract_id": contract, "reset": True}
        assert _view(office, _fresh_guard(office))[0]
    finally:
        _unset(office)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "unsound.cedar"], "policy 'typo-rule' (line "),
        (["set", "unsound.cedar", "--contract", "{contract}"], "policy 'typo-rule' (line "),
        (["set", "missing.cedar", "--contract", "{contract}"], "cannot read missing.cedar"),
        (["validate", "latin1.cedar"], "latin1.cedar is not UTF-8 text"),
        (["show", "--contract", "nope"], "no contract nope"),
        (["reset", "--contract", "nope"], "no contract nope"),
    ],
)
def test_bad_policy_input_is_one_line_and_exit_1(
    office: Office, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    Path("unsound.cedar").write_text(UNSOUND, encoding="utf-8")
    Path("latin1.cedar").write_bytes("// café\n".encode("latin-1"))
    contract = office.desk().contract
    home = ["--home", str(office.ws.home)] if args[0] != "validate" else []
    argv = [a.replace("{contract}", contract) for a in args]
    code, out, err = run(capsys, "policy", *argv, *home)
    assert code == 1 and out == ""
    assert err.startswith("bpoguard: ") and err.count("\n") == 1, err
    assert message in err
    with office.store.engine.connect() as conn:
        assert not policy_texts.policy_of(conn, contract).own


def test_policy_schema_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "schema")
    assert code == 0 and "type RequestFacts" in out and "records_new: Long" in out
