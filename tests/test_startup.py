"""Start-up: what a command imports before it does anything, and what it imports later.

Each check runs in a fresh interpreter, since this test process has imported
everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import typer.main
from scipy import stats  # type: ignore[import-untyped]

from bpoguard.cli.app import _COMMANDS, _LazyGroup, _load, app
from bpoguard.trace.scoring import _log_tail

# Loaded by `bpoguard trace leak` only when it needs them (or never, for --json).
_LATER = ("scipy", "scipy.special", "rich.table", "rich.progress", "jinja2")


def _imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running code."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_the_cli_and_the_trace_import_none_of_the_later_modules() -> None:
    held = _imported_after(
        "import bpoguard.cli, bpoguard.cli.trace, bpoguard.trace.leak, bpoguard.trace.report"
    )
    assert "bpoguard.trace.scoring" in held  # the check would be empty otherwise
    assert not held & set(_LATER)


def test_the_tail_imports_scipy_special_when_first_computed() -> None:
    held = _imported_after(
        "import sys\n"
        "import numpy as np\n"
        "from bpoguard.trace.scoring import _log_tail\n"
        "assert 'scipy.special' not in sys.modules\n"
        "tail = _log_tail(np.array([2], dtype=np.int64), 10, np.array([1.0]))\n"
        "assert 0.0 > float(tail[0]) > -5.0"
    )
    assert "scipy.special" in held


def test_the_tail_is_still_scipy_stats_binomial_tail() -> None:
    k = np.array([1, 2, 5, 40], dtype=np.int64)
    mean = np.array([0.5, 0.01, 3.0, 0.2])
    expected = stats.binom.logsf(k - 1, 50, mean / 50)
    assert np.array_equal(_log_tail(k, 50, mean), expected)


def test_help_still_lists_every_command_group() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from bpoguard.cli import entry; entry()", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for name in ("init", "info", "customers", "trace", "ledger", "detect"):
        assert name in done.stdout


def test_the_help_lists_the_commands_without_importing_them() -> None:
    held = _imported_after(
        "from bpoguard.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()) as text:\n"
        "    assert main(['--help']) == 0\n"
        "assert 'trace' in text.getvalue() and 'evaluate' in text.getvalue()"
    )
    loaded = {module for module, _, _ in _COMMANDS.values()} & held
    assert not loaded
    assert not held & {"pandas", "ibis", "faker", "pyspark"}


@pytest.mark.parametrize("name", list(_COMMANDS))
def test_each_listed_summary_is_the_commands_own_help(name: str) -> None:
    real = _load(name)
    group = typer.main.get_group(app)
    assert isinstance(group, _LazyGroup)
    ctx = group.make_context("bpoguard", [], resilient_parsing=True)
    group._listing = True
    try:
        stand_in = group.get_command(ctx, name)
    finally:
        group._listing = False
    assert stand_in is not None and stand_in is not real
    assert (stand_in.hidden, stand_in.deprecated) == (real.hidden, real.deprecated)
    # What `--help` prints for it, at every terminal width.
    for limit in range(10, 300):
        assert stand_in.get_short_help_str(limit) == real.get_short_help_str(limit)


def test_help_and_version_import_neither_the_workspace_nor_sqlalchemy() -> None:
    held = _imported_after(
        "from bpoguard.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['--help']) == 0\n"
        "    assert main(['--version']) == 0"
    )
    assert "bpoguard.cli.app" in held
    assert not held & {"bpoguard.workspace", "bpoguard.store", "sqlalchemy", "cryptography"}
