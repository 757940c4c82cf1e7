"""Leak attribution end to end, on a simulated world with the guard, the ledger and the lake."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from trace_world import World

from bpoguard.cli import main
from bpoguard.guard import canary
from bpoguard.ledger.verifier import check_inclusion_files, parse_verifier_key
from bpoguard.workspace import Workspace

pytestmark = pytest.mark.slow


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _leak(
    capsys: pytest.CaptureFixture[str], world: World, dump: Path, *extra: str
) -> dict[str, Any]:
    code, out, err = _run(
        capsys, "trace", "leak", str(dump), "--home", str(world.home), "--json", *extra
    )
    assert code == 0, err
    document: dict[str, Any] = json.loads(out)
    return document


def _make(
    capsys: pytest.CaptureFixture[str], world: World, out: Path, kind: str, records: int,
    fmt: str = "csv", seed: int = 1,
) -> dict[str, Any]:  # fmt: skip
    code, text, err = _run(
        capsys, "trace", "make-dump", "--home", str(world.home), "--kind", kind,
        "--records", str(records), "--out", str(out), "--format", fmt, "--seed", str(seed), "--json",
    )  # fmt: skip
    assert code == 0, err
    made: dict[str, Any] = json.loads(text)
    return made


@pytest.mark.parametrize("fmt", ["csv", "text", "xlsx", "json", "jsonl"])
def test_the_harvester_is_ranked_first_from_a_five_record_dump(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    harvester = world.scenario("harvester")["persons"][0]
    dump = tmp_path / f"dump.{fmt}"
    made = _make(capsys, world, dump, "one", 5, fmt)
    assert made["culprits"] == [harvester]
    d = _leak(capsys, world, dump)
    assert d["matching"]["customers"] == 5
    assert d["ranking"][0]["person"] == harvester
    assert d["ranking"][0]["records_explained"] == 5
    assert d["suspects"][0]["person"] == harvester
    assert d["suspects"][0]["adjusted_p_value"] < 0.05


def test_every_access_shown_is_proved_from_the_signed_ledger(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "dump.csv"
    made = _make(capsys, world, dump, "one", 5, seed=2)
    d = _leak(capsys, world, dump)
    top = d["suspects"][0]
    accesses = [a for c in top["customers"] for a in c["accesses"]]
    indexes = [a["ledger_index"] for a in accesses]
    assert all(set(a) >= {"at", "action", "allowed", "fields", "interaction_id"} for a in accesses)
    assert {c["customer_id"] for c in top["customers"]} == set(made["customers"][top["person"]])
    assert indexes
    ledger = d["ledger"]
    assert ledger["signed"] and not ledger["lake_rows_disagreeing_with_ledger"]
    key = parse_verifier_key(ledger["verifier_key"])
    for index in indexes:
        proof = ledger["proofs"][str(index)]
        check_inclusion_files(proof["entry"].encode(), proof["proof"], ledger["checkpoint"], key)
        entry = json.loads(proof["entry"])
        assert entry["staff"] == top["person"]


def test_a_mixed_dump_names_the_culprit_and_leaves_the_rest_unexplained(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "mixed.csv"
    made = _make(capsys, world, dump, "mixed", 20, seed=3)
    d = _leak(capsys, world, dump)
    culprit = made["culprits"][0]
    assert d["ranking"][0]["person"] == culprit
    explained = {c["customer_id"] for c in d["suspects"][0]["customers"]}
    assert set(made["customers"][culprit]) <= explained
    # Half came from elsewhere: some are ours, never seen by the culprit; the rest are not ours.
    assert d["matching"]["nothing_we_hold"] >= 1
    assert d["matching"]["customers"] == 10 + len(made["elsewhere_ours"])


def test_two_colluding_agents_are_both_chosen(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "pair.txt"
    made = _make(capsys, world, dump, "pair", 16, "text", seed=4)
    d = _leak(capsys, world, dump)
    top3 = [r["person"] for r in d["ranking"][:3]]
    assert set(made["culprits"]) <= set(top3)


def test_a_canary_in_the_dump_names_the_agent_it_was_shown_to(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        planted = next(c for c in canary.list_canaries(conn) if c.client_id == "org-albion")
    row = world.customers("org-albion")[planted.customer_id]
    card = row["card_number"]
    dump = tmp_path / "chat.txt"
    dump.write_text(
        f"new batch\n{row['name'].lower()} {card[:4]} {card[4:8]} {card[8:12]} {card[12:]}\n"
    )
    d = _leak(capsys, world, dump)
    assert [h["customer_id"] for h in d["canary_hits"]] == [planted.customer_id]
    assert planted.shown_to in d["canary_hits"][0]["named"]
    assert planted.shown_to in d["verdict"]


def test_partial_values_are_weak_evidence_for_a_strong_match(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customers = world.customers("org-albion")
    first, second = customers[1], customers[2]
    dump = tmp_path / "partial.csv"
    dump.write_text(
        "name,acc,card\n"
        f"{first['name']},{first['account_number']},**** **** **** {first['card_number'][-4:]}\n"
        f"{second['name']},,**** **** **** {second['card_number'][-4:]}\n"
        f"x,{first['account_number']},**** **** **** 0000\n"
    )
    d = _leak(capsys, world, dump)
    by_number = {r["number"]: r for r in d["records"]}
    assert by_number[1]["customer_id"] == 1
    assert by_number[1]["partial_evidence"] == [{"field": "card_number", "verdict": "agrees"}]
    assert by_number[3]["partial_evidence"] == [{"field": "card_number", "verdict": "disagrees"}]
    assert d["matching"]["partial_only"] == 1  # last four digits alone never match
    assert 2 not in by_number


def test_a_dump_with_nothing_we_hold_says_so(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "other.csv"
    dump.write_text("name,card\njo,4111 1111 1111 1111\nann,4012 8888 8888 1881\n")
    d = _leak(capsys, world, dump)
    assert d["matching"]["customers"] == 0
    assert d["ranking"] == []
    assert "not our customers" in d["verdict"]
    code, out, _ = _run(capsys, "trace", "leak", str(dump), "--home", str(world.home))
    assert code == 0 and "None of the dump's 2 records" in out


def test_first_seen_before_any_access_leaves_nobody_to_suspect(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "dump.csv"
    _make(capsys, world, dump, "one", 5, seed=5)
    d = _leak(capsys, world, dump, "--first-seen", "2020-01-01")
    assert d["matching"]["customers"] == 5
    assert d["ranking"] == [] and d["suspects"] == []


def test_the_report_holds_no_customer_values(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "dump.csv"
    html = tmp_path / "report.html"
    made = _make(capsys, world, dump, "one", 5, seed=6)
    code, out, err = _run(
        capsys, "trace", "leak", str(dump), "--home", str(world.home), "--json", "--html", str(html)
    )
    assert code == 0, err
    page = html.read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    customers = world.customers("org-albion")
    for cid in made["customers"][made["culprits"][0]]:
        row = customers[cid]
        for field in ("card_number", "account_number", "passport_number", "phone", "email", "name"):
            value = row.get(field, "")
            for text in (out, page, err):
                assert value.lower() not in text.lower()
        assert row["card_number"][-4:] not in re.sub(r"\d{5,}", "", out)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\x00\x01\x02" * 100, "binary file"),
        (b"PK\x03\x04" + b"\0" * 64, "ZIP"),
    ],
)
def test_bad_dumps_are_one_line_and_exit_1(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    dump = tmp_path / "bad.dat"
    dump.write_bytes(content)
    code, out, err = _run(capsys, "trace", "leak", str(dump), "--home", str(world.home))
    assert code == 1
    assert out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_options_are_one_line(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "d.csv"
    dump.write_text("a,b\n1,2\n")
    code, _, err = _run(
        capsys, "trace", "leak", str(dump), "--home", str(world.home), "--first-seen", "March"
    )
    assert code == 1 and "YYYY-MM-DD" in err
    code, _, err = _run(capsys, "trace", "make-dump", "--home", str(world.home), "--kind", "trio",
                        "--out", str(tmp_path / "x.csv"))  # fmt: skip
    assert code == 1 and "--kind" in err
    assert not (tmp_path / "x.csv").exists()
    code, _, err = _run(capsys, "trace", "leak", str(dump), "--home", str(world.home),
                        "--html", str(tmp_path / "nowhere" / "r.html"))  # fmt: skip
    assert code == 1 and "no folder" in err


def test_garbage_columns_give_a_clean_no_match(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "garbage.csv"
    dump.write_text("\n".join(f"{k},qwerty{k},{'9' * 40},;;;,1234" for k in range(200)) + "\n")
    d = _leak(capsys, world, dump)
    assert d["matching"]["records"] == 200
    assert d["matching"]["customers"] == 0


def test_a_workspace_with_an_empty_vault_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bpoguard import workspace
    from bpoguard.simulate.run import SimConfig, simulate

    home = tmp_path / "ws"
    workspace.init(home)
    with Workspace.open(home) as ws:  # without the guard: no customer values in the vault
        simulate(ws, SimConfig(agents=24, customers=1_000, days=1, scenarios="harvester"))
    dump = tmp_path / "d.csv"
    dump.write_text("card\n4111 1111 1111 1111\n")
    code, out, _ = _run(capsys, "trace", "leak", str(dump), "--home", str(home))
    assert code == 0
    assert "The vault holds no customer values" in out and "--guard" in out
