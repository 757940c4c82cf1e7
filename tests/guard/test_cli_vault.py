"""`bpoguard customers ...` and `bpoguard keys ...`: one JSON document, one-line errors, no values."""

from __future__ import annotations

import base64
import csv
import io
import secrets
from pathlib import Path

import pytest
from _cli import assert_user_error, run, run_json
from sqlalchemy import insert

from bpoguard import workspace
from bpoguard.cli import main
from bpoguard.store import models as m

PHONE = "07700 900123"
BAD_CARD = "4929000000007"


@pytest.fixture(autouse=True)
def _cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The real root app, in a clean environment."""
    for name in ("BPOGUARD_HOME", "BPOGUARD_DB", "BPOGUARD_DEBUG", "BPOGUARD_KEK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def ws(home: Path) -> Path:
    workspace.init(home)
    with workspace.Workspace.open(home) as opened, opened.store.engine.begin() as conn:
        conn.execute(
            insert(m.Organisation),
            [{"id": "org-a", "name": "A Bank", "kind": m.OrgKind.CLIENT, "country": "GB", "networks": []}],
        )  # fmt: skip
    return home


@pytest.fixture
def customer_file(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref", "name", "phone", "card_number"])
        writer.writerow(["A-1", "Amber Owen", PHONE, "4929 0000 0000 6"])
        writer.writerow(["A-2", "Phillip Stokes", "07700 900999", ""])
    return path


def test_load_prints_one_json_report(
    ws: Path, customer_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_json(
        capsys, "customers", "load", str(customer_file), "--client", "org-a", "--home", str(ws)
    )

    assert report["rows"] == 2 and report["created"] == 2 and report["values"] == 5
    assert report["fields"] == ["name", "phone", "card_number"]


def test_load_without_json_says_what_it_did(
    ws: Path, customer_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "customers", "load", str(customer_file), "--client", "org-a", "--home", str(ws)
    )

    assert code == 0
    assert "Loaded 2 customers of org-a (2 new, 0 already known), 5 values encrypted" in out


def test_find_prints_ids_and_refs_never_values(
    ws: Path, customer_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(
        capsys, "customers", "load", str(customer_file), "--client", "org-a", "--home", str(ws)
    )

    found = run_json(
        capsys, "customers", "find", "+44 7700 900123", "--client", "org-a", "--field", "phone",
        "--home", str(ws),
    )  # fmt: skip

    assert found == {
        "client_id": "org-a",
        "field": "phone",
        "matches": [{"customer_id": 1, "ref": "A-1"}],
    }
    code, out, _ = run(
        capsys, "customers", "find", "07700900999", "--client", "org-a", "--field", "phone",
        "--home", str(ws),
    )  # fmt: skip
    assert code == 0 and out == "2  A-2\n"


def test_find_reads_the_value_from_stdin_to_keep_it_out_of_shell_history(
    ws: Path,
    customer_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_json(
        capsys, "customers", "load", str(customer_file), "--client", "org-a", "--home", str(ws)
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("4929000000006\n"))

    found = run_json(
        capsys, "customers", "find", "-", "--client", "org-a", "--field", "card_number",
        "--home", str(ws),
    )  # fmt: skip

    assert found["matches"] == [{"customer_id": 1, "ref": "A-1"}]


def test_a_rejected_file_is_one_line_without_the_value(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"ref,card_number\nA-1,4929000000006\nA-2,{BAD_CARD}\n", encoding="utf-8")

    code, out, err = run(
        capsys, "customers", "load", str(path), "--client", "org-a", "--home", str(ws), "--json"
    )

    assert_user_error(code, out, err)
    assert "line 3: card number fails the Luhn check" in err
    assert BAD_CARD not in err
    status = run_json(capsys, "keys", "status", "--home", str(ws))
    assert status["values"] == 0  # nothing loaded, not even line 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["customers", "find", "x", "--client", "org-a", "--field", "name"], "name is not indexed"),
        (["customers", "find", "x", "--client", "org-a", "--field", "shoe"], "not a field type"),
        (["customers", "load", "absent.csv", "--client", "org-a"], "not found"),
        (["customers", "load", "absent.csv", "--client", "org-zz"], "unknown client org-zz"),
    ],
)
def test_user_errors_are_one_line(
    ws: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *args, "--home", str(ws))

    assert_user_error(code, out, err)
    assert message in err


def test_rotate_then_status_says_the_old_kek_may_be_retired(
    ws: Path, customer_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(
        capsys, "customers", "load", str(customer_file), "--client", "org-a", "--home", str(ws)
    )

    rotation = run_json(capsys, "keys", "rotate", "--home", str(ws))
    status = run_json(capsys, "keys", "status", "--home", str(ws))

    created = rotation["created"]
    assert isinstance(created, dict) and created["path"] == str(ws / "keys" / "kek-2.key")
    assert rotation["rewrapped"] == 2
    assert status["kek_id"] == created["key_id"]
    assert status["wrapped_by"] == {created["key_id"]: 2}
    assert status["retirable"] == [str(ws / "keys" / "kek.key")]
    assert status["values"] == 5 and status["index_entries"] == 3
    found = run_json(
        capsys, "customers", "find", PHONE, "--client", "org-a", "--field", "phone",
        "--home", str(ws),
    )  # fmt: skip
    assert found["matches"] == [{"customer_id": 1, "ref": "A-1"}]


def test_rotate_in_words_tells_how_to_retire_the_old_kek(
    ws: Path, customer_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(
        capsys, "customers", "load", str(customer_file), "--client", "org-a", "--home", str(ws)
    )

    code, out, err = run(capsys, "keys", "rotate", "--home", str(ws))

    assert code == 0
    assert "Re-wrapped 2 client keys" in out
    assert "kek.key" in err and "no longer needed" in err and "mv " in err


def test_the_kek_may_come_from_the_environment(
    ws: Path,
    customer_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kek = (ws / "keys" / "kek.key").read_text().strip()
    (ws / "keys" / "kek.key").rename(ws.parent / "escrowed.key")
    monkeypatch.setenv("BPOGUARD_KEK", kek)
    run_json(
        capsys, "customers", "load", str(customer_file), "--client", "org-a", "--home", str(ws)
    )

    new = base64.b64encode(secrets.token_bytes(32)).decode()
    monkeypatch.setenv("BPOGUARD_KEK", f"{new},{kek}")
    rotation = run_json(capsys, "keys", "rotate", "--home", str(ws))
    monkeypatch.setenv("BPOGUARD_KEK", new)
    found = run_json(
        capsys, "customers", "find", PHONE, "--client", "org-a", "--field", "phone",
        "--home", str(ws),
    )  # fmt: skip

    assert rotation["created"] is None and rotation["rewrapped"] == 2
    assert found["matches"] == [{"customer_id": 1, "ref": "A-1"}]


def test_a_wrong_kek_in_the_environment_is_one_line_without_the_key(
    ws: Path,
    customer_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_json(
        capsys, "customers", "load", str(customer_file), "--client", "org-a", "--home", str(ws)
    )
    wrong = base64.b64encode(secrets.token_bytes(32)).decode()
    monkeypatch.setenv("BPOGUARD_KEK", wrong)

    code, out, err = run(
        capsys, "customers", "find", PHONE, "--client", "org-a", "--field", "phone",
        "--home", str(ws),
    )  # fmt: skip

    assert_user_error(code, out, err)
    assert "is not available" in err and wrong not in err


def test_the_simulators_files_load_from_the_command_line(
    ws: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    home = tmp_path / "sim-ws"
    assert main(["init", "--home", str(home)]) == 0
    assert main(["simulate", "--home", str(home), "--agents", "24", "--customers", "1000",
                 "--days", "1", "--scenarios", "none", "--json"]) == 0  # fmt: skip
    capsys.readouterr()

    rows = 0
    for path in sorted((home / "sim").glob("customers-*.csv")):
        client = "org-" + path.stem.removeprefix("customers-")
        report = run_json(
            capsys, "customers", "load", str(path), "--client", client, "--home", str(home)
        )
        rows += int(str(report["rows"]))
    status = run_json(capsys, "keys", "status", "--home", str(home))

    assert rows == 1000
    assert status["clients"] == 4 and status["client_keys"] == 8
