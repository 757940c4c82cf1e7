"""The promises other tools rely on (DESIGN.md, "Interfaces that other tools rely on").

Exit 0 on success; exit 1 on a user error with exactly one line on stderr that
starts with "bpoguard: ", never a traceback, never a database password.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bpoguard import __version__, workspace
from bpoguard.cli import main

PASSWORD = "hunter2-Zq8"
CONSOLE_SCRIPT = Path(sys.executable).parent / "bpoguard"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The runner's own BPOGUARD_* settings, or its current folder, must not leak in."""
    for name in ("BPOGUARD_HOME", "BPOGUARD_DB", "BPOGUARD_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


@pytest.fixture
def ws(home: Path) -> Path:
    """A fresh SQLite workspace."""
    workspace.init(home)
    return home


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(code: int, out: str, err: str) -> None:
    """Exit 1, nothing on stdout, one line on stderr in the house format."""
    assert code == 1, err
    assert out == ""
    assert err.startswith("bpoguard: ")
    assert err.endswith("\n") and err.count("\n") == 1
    assert "Traceback" not in err


# --- success paths -------------------------------------------------------------------------


def test_no_arguments_prints_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)

    assert code == 0
    assert "Usage: bpoguard" in out
    assert " init " in out and " info " in out
    assert err == ""


def test_help_option_prints_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")

    assert code == 0
    assert "Usage: bpoguard" in out


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--version")

    assert code == 0
    assert out == f"bpoguard {__version__}\n"
    assert err == ""


def test_command_help_lists_home_db_and_their_env_vars(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "init", "--help")

    assert code == 0
    for word in ("--home", "BPOGUARD_HOME", "--db", "BPOGUARD_DB", "--force", "--json"):
        assert word in out


# --- user errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        pytest.param(["info", "--bogus"], "No such option: --bogus", id="unknown-option"),
        pytest.param(["frobnicate"], "No such command 'frobnicate'", id="unknown-command"),
        pytest.param(["info", "--home"], "requires an argument", id="option-without-value"),
        pytest.param(
            ["simulate", "--agents", "many"], "Invalid value for '--agents'", id="bad-value"
        ),
        pytest.param(["info", "--db", "not a url"], "malformed database URL", id="malformed-url"),
        pytest.param(
            ["info", "--db", "mysql://root@127.0.0.1/crm"],
            "unsupported database 'mysql'",
            id="unsupported-database",
        ),
        pytest.param(
            ["info", "--db", "postgresql://bpoguard@127.0.0.1:5432x/bpoguard"],
            "malformed database URL",
            id="port-not-a-number",
        ),
        pytest.param(
            ["info", "--db", "postgresql://bpoguard@[::1/bpoguard"],
            "malformed database URL",
            id="broken-ipv6-host",
        ),
        pytest.param(
            ["info", "--db", "postgresql://bpoguard@127.0.0.1:1/bpoguard"],
            "cannot reach database postgresql+psycopg://bpoguard@127.0.0.1:1/bpoguard",
            id="unreachable-postgresql",
        ),
        pytest.param(
            ["info", "--db", "sqlite:////nonexistent-folder/bpoguard.db"],
            "cannot reach database",
            id="sqlite-in-missing-folder",
        ),
        pytest.param(
            ["info", "--db", "sqlite://"],
            "has no bpoguard schema; run bpoguard init",
            id="no-schema",
        ),
    ],
)
def test_user_errors_are_one_line_on_stderr_and_exit_1(
    ws: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A real workspace, named before the faulty part, so only that part is at fault.
    argv = [args[0], "--home", str(ws), *args[1:]] if args[0] != "frobnicate" else args

    code, out, err = run(capsys, *argv)

    assert_user_error(code, out, err)
    assert message in err


def test_missing_workspace_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "info", "--home", str(tmp_path / "nowhere"))

    assert_user_error(code, out, err)
    assert "no bpoguard workspace at" in err


def test_missing_default_workspace_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "info", "--json")

    assert_user_error(code, out, err)
    assert "no bpoguard workspace at .bpoguard" in err


@pytest.mark.parametrize(
    "content, message",
    [
        pytest.param(b"this is = = not toml\n[[[\n", "malformed TOML", id="garbage"),
        pytest.param(b"\xff\xfe\x00g\x00a\x00r\x00b\x00", "not UTF-8 text", id="not-utf8"),
        pytest.param(
            b'[workspace]\nformat = 9\n[ledger]\norigin = "x"\n',
            "workspace format 9, expected 1",
            id="future-format",
        ),
        pytest.param(b"", "missing or malformed [workspace] table", id="empty"),
    ],
)
def test_malformed_config_is_a_user_error_naming_the_file(
    ws: Path, content: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (ws / "config.toml").write_bytes(content)

    code, out, err = run(capsys, "info", "--home", str(ws), "--json")

    assert_user_error(code, out, err)
    assert str(ws / "config.toml") in err
    assert message in err


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"postgresql://bpoguard:{PASSWORD}@127.0.0.1:1/bpoguard", id="unreachable"),
        pytest.param(f"postgres://bpoguard:{PASSWORD}@127.0.0.1:1/bpoguard", id="postgres-alias"),
        pytest.param(f"mysql://bpoguard:{PASSWORD}@127.0.0.1/bpoguard", id="unsupported"),
        pytest.param(
            f"postgresql://bpoguard:{PASSWORD}@127.0.0.1:1/bpoguard?sslmode=nonsense",
            id="bad-query",
        ),
        pytest.param(
            f"postgresql://bpoguard:P@ss-{PASSWORD}@127.0.0.1:1/bpoguard",
            id="unescaped-at-in-password",
        ),
    ],
)
@pytest.mark.parametrize("command", ["init", "info"])
def test_database_password_never_appears_in_output(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    url: str,
    command: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = request.getfixturevalue("ws") if command == "info" else tmp_path / "new"

    code, out, err = run(capsys, command, "--home", str(home), "--db", url)

    assert code != 0
    assert PASSWORD not in out + err
    assert "Traceback" not in err


def test_database_password_from_bpoguard_db_never_appears_in_output(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BPOGUARD_DB", f"postgresql://bpoguard:{PASSWORD}@127.0.0.1:1/bpoguard")

    code, out, err = run(capsys, "info", "--home", str(ws))

    assert_user_error(code, out, err)
    assert "bpoguard:***@127.0.0.1:1" in err
    assert PASSWORD not in err


# --- the real console script ---------------------------------------------------------------


def test_console_script_prints_json_and_reports_errors_in_one_line(ws: Path) -> None:
    assert CONSOLE_SCRIPT.is_file(), "the bpoguard console script is not installed"
    env = {"PATH": str(CONSOLE_SCRIPT.parent), "HOME": str(ws.parent)}

    ok = subprocess.run(
        [str(CONSOLE_SCRIPT), "info", "--home", str(ws), "--json"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )
    bad = subprocess.run(
        [str(CONSOLE_SCRIPT), "info", "--home", str(ws), "--db", "not a url"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )

    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["home"] == str(ws)
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr == (
        "bpoguard: malformed database URL; expected sqlite:///PATH or "
        "postgresql://USER:PASSWORD@HOST:PORT/DB\n"
    )
