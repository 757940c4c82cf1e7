"""Files the trace package writes whole or not at all, and the DuckDB connections that build them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from bpoguard import duck

# What one cache build may hold in DuckDB's buffers: past it, DuckDB's sorts, groupings
# and temporary tables spill to a folder beside the cache. Without a limit DuckDB takes up
# to 80% of the machine's memory; at 90 days (80 M lake events) the builds peaked at 4-10 GB.
# The process's peak is this plus what lives outside DuckDB's buffers (see docs/trace.md).
BUILD_MEMORY = os.environ.get("BPOGUARD_TRACE_BUILD_MEMORY", "1GB")


def write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private(target: Path, write: Callable[[str], None]) -> None:
    """Have ``write`` fill a temporary file beside ``target``, then rename it into place, 0600.

    For the caches of who accessed whom: as sensitive as the lake they come from.
    """
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def build_connection(folder: Path, ordered: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection for building a cache in ``folder``: bounded memory, spilling beside it.

    The spill folder is a hidden one inside ``folder`` (0700: spilled rows are who
    accessed whom), removed when the connection closes. With ``ordered`` false,
    rows need not keep the order a query without ORDER BY reads them in, which
    lets DuckDB write a COPY in parallel without buffering it.
    """
    spill = Path(tempfile.mkdtemp(prefix=".spill-", dir=folder))
    con = duck.connect()
    try:
        con.execute("SET memory_limit = ?", [BUILD_MEMORY])
        con.execute("SET temp_directory = ?", [str(spill)])
        if not ordered:
            con.execute("SET preserve_insertion_order = false")
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
