"""Loading customer files: every value validated, bad rows named by line, all or nothing."""

from __future__ import annotations

import base64
import csv
import secrets
import traceback
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from bpoguard import workspace
from bpoguard.errors import InputError
from bpoguard.fields import FieldType as F
from bpoguard.guard._tables import vault_index, vault_values
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.loader import MAX_ERRORS, LoadRejected, LoadReport, load_customers
from bpoguard.guard.vault import Vault
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.store import Store
from bpoguard.store import models as m

HEADER = ["ref", "name", "phone", "email", "card_number", "account_number"]
BAD_CARD = "4929000000007"  # one digit off: fails the Luhn check


def _row(i: int) -> list[str]:
    return [
        f"A-{i:05d}",
        f"Customer {chr(65 + i % 26)}",
        f"07700 9{i:05d}",
        f"c{i}@example.com",
        "4929 0000 0000 6",
        f"{10000000 + i}",
    ]


def _write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def store(blank_store: Store) -> Store:
    store = blank_store
    with store.engine.begin() as conn:
        conn.execute(
            insert(m.Organisation),
            [
                {"id": "org-a", "name": "A Bank", "kind": m.OrgKind.CLIENT, "country": "GB", "networks": []},
                {"id": "org-p", "name": "P BPO", "kind": m.OrgKind.PROVIDER, "country": "IN", "networks": []},
            ],
        )  # fmt: skip
    return store


@pytest.fixture
def vault() -> Vault:
    return Vault(KeyfileProvider.from_base64(base64.b64encode(secrets.token_bytes(32)).decode()))


def _load(store: Store, vault: Vault, path: Path, **kwargs: object) -> LoadReport:
    with store.engine.begin() as conn:
        return load_customers(conn, vault, "org-a", path, **kwargs)  # type: ignore[arg-type]


def _counts(store: Store) -> tuple[int, int, int]:
    with store.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.scalar(select(func.count()).select_from(t)) or 0
            for t in (m.Customer.__table__, vault_values, vault_index)
        )


def test_a_file_loads_encrypted_and_findable(store: Store, vault: Vault, tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", [_row(i) for i in range(1, 31)])

    report = _load(store, vault, path)

    assert (report.rows, report.created, report.existing, report.values) == (30, 30, 0, 150)
    assert report.fields == ["name", "phone", "email", "card_number", "account_number"]
    assert _counts(store) == (30, 150, 120)  # name is not indexed
    with store.engine.connect() as conn:
        [cid] = vault.lookup(conn, "org-a", F.PHONE, "+44 7700 900007")
        ref = conn.scalar(select(m.Customer.ref).where(m.Customer.id == cid))
        assert ref == "A-00007"
        assert vault.get(conn, cid, [F.CARD_NUMBER, F.NAME]) == {
            F.CARD_NUMBER: "4929000000006",  # stored normalised
            F.NAME: "customer h",
        }


def test_a_bad_row_at_line_500_writes_nothing_and_names_line_and_field(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    rows = [_row(i) for i in range(1, 1200)]
    rows[498][4] = BAD_CARD  # line 500: the header is line 1
    path = _write(tmp_path / "c.csv", rows)

    with pytest.raises(LoadRejected) as info:
        _load(store, vault, path)

    message = str(info.value)
    assert "line 500: card number fails the Luhn check" in message
    assert "1 rows rejected, nothing loaded" in message
    assert BAD_CARD not in message and "49290000" not in message
    assert [(e.line, e.problem) for e in info.value.errors] == [
        (500, "card number fails the Luhn check")
    ]
    assert _counts(store) == (0, 0, 0)


def test_rejections_stop_after_the_limit_and_show_the_first_few(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    rows = [_row(i) for i in range(1, 100)]
    for row in rows:
        row[3] = "not-an-email"
    path = _write(tmp_path / "c.csv", rows)

    with pytest.raises(LoadRejected) as info:
        _load(store, vault, path)

    assert len(info.value.errors) == MAX_ERRORS
    assert f"{MAX_ERRORS}+ rows rejected" in str(info.value)
    assert str(info.value).count("line ") == 5 and "and 15 more" in str(info.value)
    assert "not-an-email" not in str(info.value)


@pytest.mark.parametrize(
    "column, bad, problem",
    [
        (2, "12345", "phone number is not a number in E.164 form"),
        (5, "12", "account number must have 8 digits"),
        (0, "", "ref is empty"),
    ],
)
def test_each_rule_is_reported_by_field_without_the_value(
    store: Store, vault: Vault, tmp_path: Path, column: int, bad: str, problem: str
) -> None:
    rows = [_row(i) for i in range(1, 5)]
    rows[2][column] = bad
    path = _write(tmp_path / "c.csv", rows)

    with pytest.raises(LoadRejected, match=f"line 4: {problem}"):
        _load(store, vault, path)
    assert _counts(store) == (0, 0, 0)


def test_repeated_refs_and_short_rows_are_rejected(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    rows = [_row(1), _row(2), _row(1), _row(3)[:3]]
    path = _write(tmp_path / "c.csv", rows)

    with pytest.raises(LoadRejected) as info:
        _load(store, vault, path)

    assert [str(e) for e in info.value.errors] == [
        "line 4: ref repeats line 2",
        "line 5: has 3 columns, the header has 6",
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty; a customer file starts with a header"),
        (b"\n\n", "empty; a customer file starts with a header"),
        (b"ref,phone\n", "has a header but no customer rows"),
        (
            b"ref,phone,mothers_maiden_name\nA-1,07700900123,x\n",
            "unknown column(s) mothers_maiden_name",
        ),
        (b"phone,email\n07700900123,a@b.co\n", "no ref column"),
        (b"ref,country\nA-1,GB\n", "no field columns"),
        (b"ref,phone,phone\nA-1,1,2\n", "header repeats column(s) phone"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "line 1: not UTF-8 text"),
        (b"ref,name\nA-1,x\x00\x01\x02\n", "line 2: binary data"),
        (b"ref,name\nA-1,Ren\xe9e Dupont\n", "line 2: not UTF-8 text"),
        (b'ref,name\nA-1,"unclosed\x00', "binary data"),
    ],
)
def test_unusable_files_are_refused_with_a_clear_message(
    store: Store, vault: Vault, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(content)

    with pytest.raises(InputError) as info:
        _load(store, vault, path)

    assert message in str(info.value)
    assert "Ren" not in str(info.value)
    assert _counts(store) == (0, 0, 0)


def test_a_missing_file_and_an_unknown_client_are_user_errors(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    path = _write(tmp_path / "c.csv", [_row(1)])
    with pytest.raises(InputError, match="not found"):
        _load(store, vault, tmp_path / "absent.csv")
    with store.engine.begin() as conn:
        with pytest.raises(InputError, match="unknown client org-x"):
            load_customers(conn, vault, "org-x", path, country="GB")
        with pytest.raises(InputError, match="--country 'XX'"):
            load_customers(conn, vault, "org-a", path, country="XX")
        with pytest.raises(InputError, match="org-p is not a client"):
            load_customers(conn, vault, "org-p", path)


def test_a_utf8_file_with_a_byte_order_mark_loads(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes("\ufeffref,name,country\nA-1,Renée Dupont,GB\n\nA-2,Zoë Ng,gb\n".encode())

    report = _load(store, vault, path)

    assert report.rows == 2
    with store.engine.connect() as conn:
        assert vault.get(conn, 1, [F.NAME]) == {F.NAME: "renée dupont"}


def test_the_country_column_and_option_choose_the_national_formats(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "c.csv",
        [["A-1", "IN", "09876543210"], ["A-2", "", "09876543211"]],
        header=["ref", "country", "phone"],
    )

    _load(store, vault, path, country="IN")

    with store.engine.connect() as conn:
        countries = dict(conn.execute(select(m.Customer.ref, m.Customer.country)).all())
        assert countries == {"A-1": "IN", "A-2": "IN"}
        assert vault.get(conn, 2, [F.PHONE]) == {F.PHONE: "+919876543211"}


def test_loading_the_same_file_twice_updates_in_place(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    path = _write(tmp_path / "c.csv", [_row(i) for i in range(1, 11)])
    _load(store, vault, path)
    first = _counts(store)

    again = _load(store, vault, path)

    assert (again.created, again.existing) == (0, 10)
    assert _counts(store) == first


def test_a_reload_replaces_changed_values_and_clears_empty_cells(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    _load(store, vault, _write(tmp_path / "c.csv", [_row(1), _row(2)]))
    changed = _row(1)
    changed[2] = "07700 955555"
    changed[3] = ""
    _load(store, vault, _write(tmp_path / "d.csv", [changed]))

    with store.engine.connect() as conn:
        assert vault.lookup(conn, "org-a", F.PHONE, "07700900001") == []
        assert vault.lookup(conn, "org-a", F.PHONE, "07700955555") == [1]
        assert vault.lookup(conn, "org-a", F.EMAIL, "c1@example.com") == []
        assert F.EMAIL not in vault.get(conn, 1, [F.EMAIL, F.NAME])
        assert vault.lookup(conn, "org-a", F.EMAIL, "c2@example.com") == [2]


def test_a_partial_file_leaves_other_fields_alone(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    _load(store, vault, _write(tmp_path / "c.csv", [_row(1)]))
    _load(
        store, vault, _write(tmp_path / "d.csv", [["A-00001", "x@example.com"]], ["ref", "email"])
    )

    with store.engine.connect() as conn:
        assert vault.get(conn, 1, [F.EMAIL, F.PHONE]) == {
            F.EMAIL: "x@example.com",
            F.PHONE: "+447700900001",
        }


def test_progress_reaches_the_file_size(store: Store, vault: Vault, tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", [_row(i) for i in range(1, 2500)])
    seen: list[tuple[int, int]] = []

    _load(store, vault, path, progress=lambda done, total: seen.append((done, total)))

    assert len(seen) == 3  # one call per batch of 1,000 rows
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)


def test_customer_ids_in_the_file_must_be_this_clients(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(m.Customer),
            [{"id": 7, "client_id": "org-a", "ref": "A-7", "country": "GB", "is_canary": False}],
        )
    header = ["customer_id", "ref", "phone"]
    good = _write(tmp_path / "c.csv", [["7", "A-7", "07700900123"]], header)
    bad = _write(tmp_path / "d.csv", [["7", "A-8", "07700900123"], ["x", "A-9", "1"]], header)

    with pytest.raises(LoadRejected) as info:
        _load(store, vault, bad)
    assert [str(e) for e in info.value.errors] == [
        "line 2: customer_id 7 is not this client's customer with this ref",
        "line 3: customer_id is not a whole number",
    ]
    report = _load(store, vault, good)
    assert (report.created, report.existing, report.values) == (0, 1, 1)


# --- the simulator's output ------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("sim") / "ws"
    workspace.init(home)
    with workspace.Workspace.open(home) as ws:
        simulate(ws, SimConfig(agents=24, customers=1000, days=1, scenarios="none"))
    return home


def test_the_simulators_customer_files_load_and_match(simulated: Path) -> None:
    with workspace.Workspace.open(simulated) as ws:
        vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
        files = sorted(ws.settings.sim_dir.glob("customers-*.csv"))
        with ws.store.engine.begin() as conn:
            reports = [
                load_customers(conn, vault, f"org-{p.stem.removeprefix('customers-')}", p)
                for p in files
            ]
        with ws.store.engine.connect() as conn:
            with files[0].open(encoding="utf-8") as handle:
                sample = list(csv.DictReader(handle))[17]
            client = f"org-{files[0].stem.removeprefix('customers-')}"
            found = vault.lookup(conn, client, F.PHONE, sample["phone"])
            stored = vault.get(conn, int(sample["customer_id"]), [F.CARD_NUMBER])

    assert len(files) == 4
    assert sum(r.rows for r in reports) == 1000
    assert all(r.created == 0 and r.existing == r.rows for r in reports)
    assert int(sample["customer_id"]) in found
    assert stored[F.CARD_NUMBER] == sample["card_number"].replace(" ", "")


def test_the_whole_traceback_of_a_rejection_holds_no_value(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    rows = [_row(i) for i in range(1, 4)]
    rows[1][4] = BAD_CARD
    rows[2][3] = "secret.person@@example.com"
    path = _write(tmp_path / "c.csv", rows)

    with pytest.raises(LoadRejected) as info:
        _load(store, vault, path)

    text = "".join(traceback.format_exception(info.value))
    assert "line 3: card number" in text and "line 4: e-mail address" in text
    assert BAD_CARD not in text and "secret.person" not in text
