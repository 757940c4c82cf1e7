"""DuckDB never draws its progress bar on standard output (it broke --json on big lakes)."""

from __future__ import annotations

import subprocess
import sys

from bpoguard import duck
from bpoguard.detect.engine import DuckDBEngine

SETTING = "SELECT current_setting('enable_progress_bar')"


def test_duckdb_would_draw_it_by_default() -> None:
    # In a fresh process: what a bare connection does (and why duck.connect exists).
    code = f"import duckdb; print(duckdb.connect().execute({SETTING!r}).fetchone()[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_our_connections_have_no_progress_bar() -> None:
    row = duck.connect().execute(SETTING).fetchone()
    assert row is not None and row[0] is False


def test_the_detect_engine_has_no_progress_bar() -> None:
    row = DuckDBEngine()._con.con.execute(SETTING).fetchone()
    assert row is not None and row[0] is False
