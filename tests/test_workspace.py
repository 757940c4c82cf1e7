"""`bpoguard init` and `bpoguard info`: the workspace a security lead creates and inspects.

Every test drives the real CLI in-process (`bpoguard.cli.main`) against real
folders, SQLite files and, where a test asks for `pg_db`, a real PostgreSQL.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, inspect, text

from bpoguard import config, workspace
from bpoguard.cli import main
from bpoguard.errors import WorkspaceError
from bpoguard.store import Store, parse_url

UNREACHABLE_PG = "postgresql://bpoguard:hunter2-not-shown@127.0.0.1:1/bpoguard"
COUNTED = {"organisations", "sites", "contracts", "staff", "devices", "customers", "interactions"}

Snapshot = dict[str, tuple[bytes | None, int, int]]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The runner's own BPOGUARD_* settings, or its current folder, must not leak in."""
    for name in ("BPOGUARD_HOME", "BPOGUARD_DB", "BPOGUARD_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def init(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> None:
    code, _, err = run(capsys, "init", "--home", str(home), *args)
    assert code == 0, err


def info_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code, out, err = run(capsys, "info", "--json", *args)
    assert code == 0, err
    document = json.loads(out)  # the whole of stdout is one JSON document
    assert isinstance(document, dict)
    return document


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(root: Path) -> Snapshot:
    """Bytes, mtime and mode of every file and folder under root (root included)."""
    found: Snapshot = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.stat()
        data = path.read_bytes() if path.is_file() else None
        found[str(path.relative_to(root))] = (data, st.st_mtime_ns, st.st_mode)
    return found


def sqlite_revision(db_file: Path) -> str:
    with closing(sqlite3.connect(db_file)) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(revision)


def schema_head() -> str:
    store = Store("sqlite://")
    try:
        return store.head()
    finally:
        store.dispose()


def pg_revision(url: str) -> str | None:
    store = Store(url)
    try:
        return store.revision()
    finally:
        store.dispose()


def leftovers(parent: Path) -> list[str]:
    """Hidden entries beside HOME: where init stages its work (it must leave none)."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# --- a new workspace ---------------------------------------------------------------------


def test_init_creates_config_keys_lake_and_sim_with_private_modes(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "init", "--home", str(home))

    assert code == 0, err
    assert "Workspace ready at" in out
    assert mode(home / "config.toml") == 0o600
    assert mode(home / "keys") == 0o700
    assert mode(home / "keys" / "kek.key") == 0o600
    assert mode(home / "keys" / "ledger-signing.pem") == 0o600
    assert (home / "lake").is_dir()
    assert (home / "sim").is_dir()
    assert (home / "bpoguard.db").is_file()


def test_init_keys_are_a_32_byte_kek_and_an_ed25519_signing_key(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, home)

    kek = base64.b64decode((home / "keys" / "kek.key").read_bytes(), validate=False)
    signing = serialization.load_pem_private_key(
        (home / "keys" / "ledger-signing.pem").read_bytes(), password=None
    )
    assert len(kek) == 32
    assert isinstance(signing, Ed25519PrivateKey)


def test_two_workspaces_never_share_keys_or_ledger_origin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    init(capsys, first)
    init(capsys, second)

    for name in ("kek.key", "ledger-signing.pem"):
        assert (first / "keys" / name).read_bytes() != (second / "keys" / name).read_bytes()
    assert config.load(first).ledger_origin != config.load(second).ledger_origin


def test_init_creates_the_sqlite_database_at_schema_head(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, home)

    assert sqlite_revision(home / "bpoguard.db") == schema_head()
    with closing(sqlite3.connect(home / "bpoguard.db")) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert tables >= COUNTED


def test_init_writes_a_config_that_points_at_the_workspace_sqlite_file(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, home)

    settings = config.load(home)
    assert settings.db_url == f"sqlite:///{(home / 'bpoguard.db').resolve()}"
    assert settings.ledger_origin.startswith("bpoguard.local/ledger/")
    assert dt.datetime.fromisoformat(settings.created).tzinfo is not None


def test_init_json_reports_home_and_database_as_one_document(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "init", "--home", str(home), "--json")

    assert code == 0
    assert json.loads(out) == {
        "home": str(home.absolute()),
        "database": f"sqlite:///{(home / 'bpoguard.db').resolve()}",
        "replaced": None,
    }


def test_init_leaves_no_staging_folder_beside_home(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, home)

    assert leftovers(home.parent) == []
    assert sorted(p.name for p in home.iterdir()) == [
        "bpoguard.db",
        "config.toml",
        "keys",
        "lake",
        "sim",
    ]


def test_init_creates_missing_parent_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "srv" / "bpoguard" / "ws"
    init(capsys, home)

    assert (home / "config.toml").is_file()


# --- info --------------------------------------------------------------------------------


def test_info_json_is_one_document_with_zero_counts_on_a_new_workspace(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, home)

    document = info_json(capsys, "--home", str(home))

    assert document["counts"] == dict.fromkeys(COUNTED, 0)
    assert document["schema_revision"] == schema_head()
    assert document["ledger_origin"] == config.load(home).ledger_origin
    assert document["database"] == f"sqlite:///{(home / 'bpoguard.db').resolve()}"
    assert document["home"] == str(home)


def test_info_without_json_prints_a_table_for_people(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, home)

    code, out, err = run(capsys, "info", "--home", str(home))

    assert code == 0, err
    assert "schema revision" in out
    assert schema_head() in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_info_on_a_folder_that_is_not_a_workspace_says_run_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "info", "--home", str(tmp_path))

    assert code == 1
    assert out == ""
    assert err.startswith("bpoguard: no bpoguard workspace at ")
    assert "bpoguard init" in err


# --- an existing workspace -----------------------------------------------------------------


def test_init_on_an_existing_workspace_is_refused_and_changes_nothing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, home)
    before = snapshot(home)
    beside = sorted(home.parent.iterdir())

    code, out, err = run(capsys, "init", "--home", str(home))

    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("bpoguard: ")
    assert "--force" in err
    assert snapshot(home) == before
    assert sorted(home.parent.iterdir()) == beside


def test_init_on_a_non_empty_folder_that_is_not_a_workspace_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home.mkdir()
    (home / "customers.csv").write_text("id,name\n1,Ann\n")
    before = snapshot(home)

    code, _, err = run(capsys, "init", "--home", str(home))

    assert code == 1
    assert "already exists and is not empty" in err
    assert snapshot(home) == before


def test_init_force_keeps_the_old_workspace_beside_it_renamed(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, home)
    before = snapshot(home)

    code, out, err = run(capsys, "init", "--home", str(home), "--force", "--json")

    assert code == 0, err
    replaced = Path(json.loads(out)["replaced"])
    assert replaced.parent == home.parent
    assert replaced.name.startswith(f"{home.name}.replaced-")
    assert snapshot(replaced) == before  # every file, byte for byte, with its mtime and mode
    assert (home / "config.toml").is_file()
    assert (home / "keys" / "kek.key").read_bytes() != (replaced / "keys" / "kek.key").read_bytes()
    assert leftovers(home.parent) == []


def test_init_force_says_where_the_old_workspace_was_kept(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, home)

    code, out, err = run(capsys, "init", "--home", str(home), "--force")

    assert code == 0
    (replaced,) = home.parent.glob(f"{home.name}.replaced-*")
    assert err == f"The previous workspace was kept at {replaced}\n"
    assert "Workspace ready at" in out


def test_the_replaced_workspace_still_opens_under_its_new_name(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, home)
    origin = config.load(home).ledger_origin
    init(capsys, home, "--force")
    (replaced,) = home.parent.glob(f"{home.name}.replaced-*")

    document = info_json(capsys, "--home", str(replaced))

    assert document["ledger_origin"] == origin
    assert document["database"] == f"sqlite:///{(replaced / 'bpoguard.db').resolve()}"


def test_init_force_without_an_existing_workspace_just_creates_one(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "init", "--home", str(home), "--force", "--json")

    assert code == 0
    assert json.loads(out)["replaced"] is None
    assert list(home.parent.glob(f"{home.name}.replaced-*")) == []


def test_init_force_never_trips_over_an_earlier_replaced_copy(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, home)
    # Earlier kept copies stamped with this second and the next ones, as two
    # `init --force` runs in a row (a script, a retry) leave them.
    now = dt.datetime.now(dt.UTC)
    for seconds in range(3):
        stamp = (now + dt.timedelta(seconds=seconds)).strftime("%Y%m%dT%H%M%SZ")
        earlier = home.with_name(f"{home.name}.replaced-{stamp}")
        earlier.mkdir()
        (earlier / "config.toml").write_text("# an earlier workspace\n")

    code, _, err = run(capsys, "init", "--home", str(home), "--force")

    assert code == 0, err
    kept = list(home.parent.glob(f"{home.name}.replaced-*"))
    assert len(kept) == 4
    assert all((copy / "config.toml").is_file() for copy in kept)


# --- all or nothing ------------------------------------------------------------------------


def test_failed_init_leaves_nothing_at_home_nor_a_staging_folder(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "init", "--home", str(home), "--db", UNREACHABLE_PG)

    assert code == 1
    assert out == ""
    assert "cannot reach database" in err
    assert not home.exists()
    assert sorted(p.name for p in home.parent.iterdir()) == ["cwd"]


def test_failed_init_force_leaves_the_old_workspace_where_it_was(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, home)
    before = snapshot(home)

    code, _, err = run(capsys, "init", "--home", str(home), "--force", "--db", UNREACHABLE_PG)

    assert code == 1
    assert err.startswith("bpoguard: cannot reach database")
    assert snapshot(home) == before
    assert list(home.parent.glob(f"{home.name}.replaced-*")) == []
    assert leftovers(home.parent) == []


def test_init_into_an_existing_empty_folder_makes_it_the_workspace(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home.mkdir(mode=0o755)

    code, _, err = run(capsys, "init", "--home", str(home))

    assert code == 0, err
    assert (home / "config.toml").is_file()
    assert mode(home) == 0o700
    assert list(home.parent.glob(f"{home.name}.replaced-*")) == []
    assert leftovers(home.parent) == []


def test_init_into_a_path_that_is_a_file_is_refused_and_the_file_kept(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home.write_text("not a folder\n")
    before = home.stat().st_mtime_ns

    code, out, err = run(capsys, "init", "--home", str(home))

    assert code == 1
    assert out == ""
    assert err.startswith("bpoguard: ") and err.count("\n") == 1
    assert home.read_text() == "not a folder\n"
    assert home.stat().st_mtime_ns == before
    assert leftovers(home.parent) == []


# --- where the workspace is --------------------------------------------------------------


def test_without_home_the_workspace_is_dot_bpoguard_in_the_current_folder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "init")

    assert code == 0, err
    assert (Path.cwd() / ".bpoguard" / "config.toml").is_file()
    assert info_json(capsys)["home"] == ".bpoguard"


def test_bpoguard_home_env_var_works_as_home(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BPOGUARD_HOME", str(home))

    code, _, err = run(capsys, "init")

    assert code == 0, err
    assert (home / "config.toml").is_file()
    assert not (Path.cwd() / ".bpoguard").exists()
    assert info_json(capsys)["home"] == str(home)


def test_home_option_wins_over_bpoguard_home(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BPOGUARD_HOME", str(tmp_path / "from-env"))

    init(capsys, tmp_path / "from-option")

    assert (tmp_path / "from-option" / "config.toml").is_file()
    assert not (tmp_path / "from-env").exists()


# --- PostgreSQL ----------------------------------------------------------------------------


def with_password(url: str, password: str) -> str:
    return parse_url(url).set(password=password).render_as_string(hide_password=False)


def pg_table_names(url: str) -> set[str]:
    engine = create_engine(parse_url(url))
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_init_with_postgresql_creates_the_schema_there(
    home: Path, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, home, "--db", pg_db)

    assert pg_revision(pg_db) == schema_head()
    assert pg_table_names(pg_db) >= COUNTED
    assert not (home / "bpoguard.db").exists()
    assert config.load(home).db_url == pg_db
    document = info_json(capsys, "--home", str(home))
    assert str(document["database"]).startswith("postgresql+psycopg://")
    assert document["counts"] == dict.fromkeys(COUNTED, 0)


def test_bpoguard_db_env_var_works_as_db_for_init(
    home: Path, pg_db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BPOGUARD_DB", pg_db)

    init(capsys, home)

    assert pg_revision(pg_db) == schema_head()
    assert not (home / "bpoguard.db").exists()


def test_bpoguard_db_env_var_points_info_at_postgresql_instead_of_sqlite(
    tmp_path: Path, pg_db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    init(capsys, tmp_path / "on-pg", "--db", pg_db)  # puts the schema in pg_db
    init(capsys, tmp_path / "on-sqlite")
    monkeypatch.setenv("BPOGUARD_DB", pg_db)

    document = info_json(capsys, "--home", str(tmp_path / "on-sqlite"))

    assert str(document["database"]).startswith("postgresql+psycopg://")
    assert str(document["database"]).endswith(parse_url(pg_db).database or "?")


def test_init_refuses_a_postgresql_database_holding_foreign_tables(
    home: Path, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(parse_url(pg_db))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE payroll (id integer PRIMARY KEY)"))
        conn.execute(text("INSERT INTO payroll VALUES (1)"))
    engine.dispose()

    code, out, err = run(capsys, "init", "--home", str(home), "--db", pg_db)

    assert code == 1
    assert out == ""
    assert "holds tables that are not bpoguard's" in err
    assert not home.exists()
    assert leftovers(home.parent) == []
    assert pg_table_names(pg_db) == {"payroll"}  # nothing added, nothing dropped


def test_init_with_a_postgresql_password_never_echoes_it(
    home: Path, pg_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = with_password(pg_db, "s3cret-pw-91")

    code, out, err = run(capsys, "init", "--home", str(home), "--db", url)
    info = info_json(capsys, "--home", str(home))

    assert code == 0, err
    assert "s3cret-pw-91" not in out + err
    assert "s3cret-pw-91" not in json.dumps(info)
    assert ":***@" in str(info["database"])
    # The config keeps it (that is why it is 0600).
    assert "s3cret-pw-91" in (home / "config.toml").read_text()
    assert mode(home / "config.toml") == 0o600


# --- output for people ---------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["team[/x]", "team[bold]"])
def test_init_prints_a_home_with_square_brackets_verbatim(
    tmp_path: Path, folder: str, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / folder / "ws"

    code, out, err = run(capsys, "init", "--home", str(home))

    assert code == 0, err
    assert f"Workspace ready at {home.absolute()}\n" in out


def test_init_prints_a_long_home_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path.joinpath(*(["a-folder-name-of-forty-characters-long-x"] * 8), "ws")

    code, out, _ = run(capsys, "init", "--home", str(home))

    assert code == 0
    assert f"Workspace ready at {home.absolute()}\n" in out


def test_init_refuses_a_database_that_already_holds_another_workspace(
    tmp_path: Path, pg_db: str
) -> None:
    workspace.init(tmp_path / "first", db=pg_db)
    with pytest.raises(WorkspaceError, match="already holds a bpoguard workspace"):
        workspace.init(tmp_path / "second", db=pg_db)
    assert not (tmp_path / "second").exists()
