"""Running the real `bpoguard` CLI in process, as the guard's CLI tests do."""

from __future__ import annotations

import json

import pytest

from bpoguard.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of one command."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    """The one JSON document a command prints with --json; it must succeed."""
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    document: dict[str, object] = json.loads(out)  # exactly one document, or this fails
    return document


def assert_user_error(code: int, out: str, err: str) -> None:
    """Exit 1, nothing on stdout, one line on stderr in the house format."""
    assert code == 1, err
    assert out == ""
    assert err.startswith("bpoguard: ") and err.count("\n") == 1
    assert "Traceback" not in err
