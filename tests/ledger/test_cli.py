"""`bpoguard ledger ...` through the real CLI entry point, and the standalone verifier."""

from __future__ import annotations

import ast
import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from bpoguard import workspace
from bpoguard.cli import main
from bpoguard.ledger import Ledger
from bpoguard.ledger import verifier as verifier_module

VERIFIER = Path(verifier_module.__file__)


@pytest.fixture
def ws(home: Path) -> Path:
    """A workspace whose ledger holds 25 entries and a checkpoint at 20."""
    workspace.init(home)
    with workspace.Workspace.open(home) as opened:
        ledger = Ledger.for_workspace(opened)
        ledger.append_many({"decision": "deny", "record": f"C{i}"} for i in range(20))
        ledger.checkpoint()
        ledger.append_many({"decision": "allow", "record": f"C{i}"} for i in range(20, 25))
    return home


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_key_prints_origin_and_verifier_key(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ledger", "key", "--home", str(ws), "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["verifier_key"].startswith(doc["origin"] + "+" + doc["key_id"] + "+")


def test_status_counts_entries_and_shows_latest_checkpoint(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "ledger", "status", "--home", str(ws), "--json")
    doc = json.loads(out)
    assert (code, doc["size"], doc["latest_checkpoint"]["size"]) == (0, 25, 20)


def test_checkpoint_prints_the_signed_note(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ledger", "checkpoint", "--home", str(ws))
    assert code == 0
    assert out.split("\n")[1] == "25"
    assert "\n\n\u2014 " in out


def test_verify_passes_then_names_the_edited_entry(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "ledger", "verify", "--home", str(ws), "--json")
    assert (code, json.loads(out)["ok"]) == (0, True)
    with closing(sqlite3.connect(ws / "bpoguard.db")) as db, db:
        db.execute("UPDATE ledger_entries SET entry = ? WHERE idx = 7", (b'{"decision":"allow"}',))
    code, out, err = run(capsys, "ledger", "verify", "--home", str(ws))
    assert code == 1
    assert err == "bpoguard: ledger does not verify: entry 7: leaf hash differs from stored\n"
    code, out, _ = run(capsys, "ledger", "verify", "--home", str(ws), "--json")
    assert (code, json.loads(out)["entry"]) == (1, 7)


def test_verify_against_a_held_checkpoint_file(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, note, _ = run(capsys, "ledger", "checkpoint", "--home", str(ws))
    held = tmp_path / "held.txt"
    held.write_text(note, encoding="utf-8")
    code, _, _ = run(capsys, "ledger", "verify", "--home", str(ws), "--checkpoint", str(held))
    assert code == 0
    with closing(sqlite3.connect(ws / "bpoguard.db")) as db, db:
        db.execute("DELETE FROM ledger_checkpoints WHERE size = 25")
        db.execute("DELETE FROM ledger_entries WHERE idx >= 22")
        db.execute("DELETE FROM ledger_nodes WHERE pos >= 41")  # nodes_before(22)
        db.execute("UPDATE ledger_head SET size = 22")
    assert run(capsys, "ledger", "verify", "--home", str(ws))[0] == 0  # alone: undetectable
    code, _, err = run(capsys, "ledger", "verify", "--home", str(ws), "--checkpoint", str(held))
    assert code == 1
    assert "checkpoint at size 25 is beyond the log's 22 entries" in err


def test_prove_writes_what_a_police_analyst_needs_and_the_lone_verifier_accepts_it(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "evidence"
    code, out, _ = run(capsys, "ledger", "prove", "--entry", "13", "--out", str(folder),
                       "--home", str(ws))  # fmt: skip
    doc = json.loads(out)
    assert code == 0
    assert doc["entry"] == {"decision": "deny", "record": "C13"}
    assert doc["proof"]["tree_size"] == 20
    # The analyst's machine: the verifier copied alone, run with no bpoguard on the path.
    lone = tmp_path / "analyst" / "verify_ledger.py"
    lone.parent.mkdir()
    shutil.copyfile(VERIFIER, lone)
    key = (folder / "key.txt").read_text().strip()
    args = [sys.executable, "-I", str(lone), "--entry", str(folder / "entry.json"),
            "--proof", str(folder / "proof.json"), "--checkpoint",
            str(folder / "checkpoint.txt"), "--key", key]  # fmt: skip
    ok = subprocess.run(args, capture_output=True, text=True, cwd=lone.parent, check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: entry 13 is in the log")
    (folder / "entry.json").write_text('{"decision": "allow", "record": "C13"}\n')
    bad = subprocess.run(args, capture_output=True, text=True, cwd=lone.parent, check=False)
    assert bad.returncode == 1
    assert bad.stderr.startswith("NOT VERIFIED: inclusion proof for entry 13")


def test_consistency_proof_verifies_with_the_verifier_module(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "ledger", "checkpoint", "--home", str(ws))
    folder = tmp_path / "c"
    code, out, _ = run(capsys, "ledger", "consistency", "--from", "20", "--to", "25",
                       "--out", str(folder), "--home", str(ws))  # fmt: skip
    assert code == 0
    assert json.loads(out)["proof"]["from_size"] == 20
    key = (folder / "key.txt").read_text().strip()
    result = subprocess.run(
        [sys.executable, "-m", "bpoguard.ledger.verifier", "--proof", str(folder / "proof.json"),
         "--old-checkpoint", str(folder / "old-checkpoint.txt"),
         "--checkpoint", str(folder / "checkpoint.txt"), "--key", key],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "extends its checkpoint at size 20" in result.stdout


def test_prove_for_an_entry_after_the_latest_checkpoint_says_what_to_do(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "ledger", "prove", "--entry", "22", "--home", str(ws))
    assert code == 1
    assert err == (
        "bpoguard: entry 22 is not in the checkpoint at size 20; "
        "cut a newer one with bpoguard ledger checkpoint\n"
    )
    code, _, err = run(capsys, "ledger", "consistency", "--from", "3", "--home", str(ws))
    assert (code, err) == (
        1,
        "bpoguard: no checkpoint at tree size 3; see bpoguard ledger status\n",
    )


def test_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(VERIFIER.read_text())
    modules = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import)
            else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        )
    }  # fmt: skip
    assert modules - {"__future__", "cryptography"} <= set(sys.stdlib_module_names)
    assert "bpoguard" not in modules
