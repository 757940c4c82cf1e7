"""`config.load` and `config.render`: the workspace's one TOML file."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpoguard import config
from bpoguard.errors import ConfigError

CREATED = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
PG_URL = "postgresql://bpoguard:pw@db.internal:5432/bpoguard"
VALID = '[workspace]\nformat = 1\ncreated = "2026-03-02T09:30:00+00:00"\n\n[ledger]\norigin = "bank.example/ledger"\n'


def write(home: Path, text: str | bytes) -> Path:
    home.mkdir(exist_ok=True)
    path = home / config.CONFIG_NAME
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load_error(home: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        config.load(home)
    return str(caught.value)


# --- what a good file gives ----------------------------------------------------------------


def test_a_valid_config_without_store_url_uses_the_workspace_sqlite_file(home: Path) -> None:
    write(home, VALID)

    settings = config.load(home)

    assert settings.db_url == f"sqlite:///{(home / 'bpoguard.db').resolve()}"
    assert settings.ledger_origin == "bank.example/ledger"
    assert settings.created == "2026-03-02T09:30:00+00:00"
    assert settings.home == home
    assert settings.config_path == home / "config.toml"
    assert (settings.lake_dir, settings.keys_dir, settings.sim_dir) == (
        home / "lake",
        home / "keys",
        home / "sim",
    )


def test_store_url_in_the_file_is_used(home: Path) -> None:
    write(home, VALID + f'\n[store]\nurl = "{PG_URL}"\n')

    assert config.load(home).db_url == PG_URL


def test_db_override_wins_over_the_file(home: Path) -> None:
    write(home, VALID + f'\n[store]\nurl = "{PG_URL}"\n')

    settings = config.load(home, db_override="postgresql://other@127.0.0.1/elsewhere")

    assert settings.db_url == "postgresql://other@127.0.0.1/elsewhere"


def test_db_override_wins_over_the_default_sqlite_file(home: Path) -> None:
    write(home, VALID)

    assert config.load(home, db_override=PG_URL).db_url == PG_URL


def test_render_then_load_round_trips_sqlite_and_postgresql(tmp_path: Path) -> None:
    on_sqlite, on_pg = tmp_path / "a", tmp_path / "b"
    write(on_sqlite, config.render(None, "bank.example/ledger", CREATED))
    write(on_pg, config.render(PG_URL, "bank.example/ledger", CREATED))

    assert config.load(on_sqlite).db_url == config.default_db_url(on_sqlite)
    assert config.load(on_pg).db_url == PG_URL
    assert config.load(on_pg).created == "2026-03-02T09:30:00+00:00"


def test_rendered_config_tells_the_reader_how_to_point_at_postgresql() -> None:
    text = config.render(None, "bank.example/ledger", CREATED)

    assert text.startswith("# bpoguard workspace configuration.")
    assert "postgresql://" in text and "BPOGUARD_DB" in text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(origin=st.text(min_size=1, max_size=40).filter(lambda s: s.isprintable() and " " not in s))
def test_any_one_word_origin_survives_render_and_load(tmp_path: Path, origin: str) -> None:
    home = tmp_path / "round-trip"
    write(home, config.render(None, origin, CREATED))

    assert config.load(home).ledger_origin == origin


# --- what a bad file gives -----------------------------------------------------------------


def test_missing_file_is_a_config_error_naming_the_path(home: Path) -> None:
    home.mkdir()

    message = load_error(home)

    assert str(home / "config.toml") in message
    assert "not found" in message


def test_bad_toml_is_a_config_error_with_the_line(home: Path) -> None:
    path = write(home, VALID + "\nthis line = = is broken\n")

    message = load_error(home)

    assert message.startswith(f"{path}: malformed TOML")
    assert re.search(r"line \d+", message)


def test_text_that_is_not_utf8_is_a_config_error(home: Path) -> None:
    path = write(home, VALID.encode("utf-16"))

    assert load_error(home) == f"{path}: not UTF-8 text"


@pytest.mark.parametrize("value", ["2", "0", '"1"', "[1]"])
def test_a_workspace_format_other_than_1_is_refused(home: Path, value: str) -> None:
    path = write(home, VALID.replace("format = 1", f"format = {value}"))

    message = load_error(home)

    assert message.startswith(f"{path}: workspace format ")
    assert message.endswith("expected 1")


def test_a_missing_workspace_format_is_refused(home: Path) -> None:
    write(home, VALID.replace("format = 1\n", ""))

    assert "workspace format None, expected 1" in load_error(home)


@pytest.mark.parametrize("value", ["true", "1.0"])
def test_a_workspace_format_that_is_not_the_integer_1_is_refused(home: Path, value: str) -> None:
    write(home, VALID.replace("format = 1", f"format = {value}"))

    assert "workspace format" in load_error(home)


@pytest.mark.parametrize("value", ["5", "true", '""', '["postgresql://x"]', "{ host = 'db' }"])
def test_a_store_url_that_is_not_a_non_empty_string_is_refused(home: Path, value: str) -> None:
    path = write(home, VALID + f"\n[store]\nurl = {value}\n")

    assert load_error(home) == f"{path}: [store] url must be a non-empty string"


def test_a_store_that_is_not_a_table_is_refused(home: Path) -> None:
    path = write(home, 'store = "postgresql://x"\n' + VALID)

    assert load_error(home) == f"{path}: missing or malformed [store] table"


@pytest.mark.parametrize(
    "origin",
    [
        '"""bank.example/ledger\nevil"""',
        '"bank.example/ledger\\nevil"',
        '""',
        "42",
        '"bank example"',
        '"bank\\u0007"',
    ],
    ids=["multi-line-literal", "escaped-newline", "empty", "not-a-string", "space", "control"],
)
def test_a_ledger_origin_that_is_not_one_printable_word_is_refused(home: Path, origin: str) -> None:
    path = write(home, VALID.replace('"bank.example/ledger"', origin))

    assert load_error(home) == f"{path}: [ledger] origin must be one word of printable text"


@pytest.mark.parametrize("table", ["workspace", "ledger"])
def test_a_missing_required_table_is_refused(home: Path, table: str) -> None:
    doc = {"workspace": {"format": 1}, "ledger": {"origin": "bank.example/ledger"}}
    del doc[table]
    path = write(home, tomli_w.dumps(doc))

    assert load_error(home) == f"{path}: missing or malformed [{table}] table"


def test_a_config_that_cannot_be_read_is_a_config_error(home: Path) -> None:
    # A folder where the file should be: an OSError on read for any user, root included.
    (home / config.CONFIG_NAME).mkdir(parents=True)

    assert str(home / "config.toml") in load_error(home)


toml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _drop_none(value: Any) -> Any:
    """TOML has no null: leave out the keys and items hypothesis set to None."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    doc=st.fixed_dictionaries(
        {},
        optional={
            "workspace": st.one_of(
                toml_values, st.fixed_dictionaries({"format": toml_values, "created": toml_values})
            ),
            "store": st.one_of(toml_values, st.fixed_dictionaries({"url": toml_values})),
            "ledger": st.one_of(toml_values, st.fixed_dictionaries({"origin": toml_values})),
        },
    )
)
def test_any_toml_document_either_loads_or_raises_config_error(
    tmp_path: Path, doc: dict[str, object]
) -> None:
    home = tmp_path / "fuzz"
    write(home, tomli_w.dumps(_drop_none(doc)))

    try:
        settings_ = config.load(home)
    except ConfigError:  # anything else escaping is the failure this test looks for
        return
    assert settings_.db_url
    assert "\n" not in settings_.ledger_origin
