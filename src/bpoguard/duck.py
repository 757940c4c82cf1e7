"""DuckDB connections for bpoguard's own queries.

DuckDB draws a progress bar on standard output once a query runs for more than
two seconds, whether or not standard output is a terminal. On a big lake that
put a line of bar characters in front of a command's ``--json`` document, so
every connection bpoguard opens turns the bar off.
"""

from __future__ import annotations

from typing import Any

import duckdb

QUIET = "SET enable_progress_bar = false"  # for connections made elsewhere (Ibis)


def connect(**kwargs: Any) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that never writes to standard output."""
    con = duckdb.connect(**kwargs)
    con.execute(QUIET)
    return con
