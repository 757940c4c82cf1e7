"""The caches' builds in bounded memory: the same files as building each one whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from trace_world import World

from bpoguard import duck
from bpoguard.trace import _files, accesses, bycustomer
from bpoguard.trace.accesses import DAY_US, NEVER, dump_caches


def _index_in_one_table(summary: Path, target: Path) -> None:
    """The pair index as it was built before: the whole table at once, then encoded."""
    con = duck.connect()
    try:
        table = (
            con.execute(
                "SELECT customer_id, actor, "  # noqa: S608
                f"CAST(first_us // {DAY_US} AS INTEGER) AS first_day, "
                f"CAST(coalesce(first_allowed_us // {DAY_US}, {NEVER}) AS INTEGER) AS first_allowed_day, "
                f"CAST(last_us // {DAY_US} AS INTEGER) AS last_day, "
                f"CAST(coalesce(last_allowed_us // {DAY_US}, {NEVER}) AS INTEGER) AS last_allowed_day, "
                "fields, coalesce(fields_allowed, '') AS fields_allowed "
                "FROM read_parquet(?) ORDER BY customer_id, actor",
                [str(summary)],
            )
            .arrow()
            .read_all()
            .combine_chunks()
        )
    finally:
        con.close()
    for name in ("actor", "fields", "fields_allowed"):
        where = table.schema.get_field_index(name)
        table = table.set_column(where, name, pc.dictionary_encode(table[name]).combine_chunks())
    with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(1, table.num_rows))


@pytest.mark.parametrize("batch", [7, 1000, 1 << 20])
def test_the_pair_index_built_a_slice_at_a_time_is_the_same_file(
    world: World, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(accesses, "_BATCH", batch)  # many slices: codes carried across them
    caches = dump_caches(lake, tmp_path / "cache")
    expected = tmp_path / "whole.arrow"
    _index_in_one_table(caches.summary, expected)
    assert caches.pairs.read_bytes() == expected.read_bytes()


def test_the_summary_built_through_filed_parts_is_the_same_rows(
    world: World, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = accesses.pair_summary(lake, tmp_path / "one")
    monkeypatch.setattr(accesses, "ROWS_PER_PART", 500)  # dozens of ranges, each filed apart
    parts = accesses.pair_summary(lake, tmp_path / "parts")
    assert parts.name == whole.name
    con = duck.connect()
    try:
        one, many = (con.execute("SELECT * FROM read_parquet(?)", [str(p)]).fetchall()
                     for p in (whole, parts))  # fmt: skip
    finally:
        con.close()
    assert one == many  # the same rows in the same order (row groups may differ)
    leftovers = [p.name for p in (tmp_path / "parts").iterdir() if p.name.startswith((".", "tmp_"))]
    assert leftovers == []  # the filed rows, the parts and the spill folder are gone


def test_a_build_connection_is_bounded_and_leaves_nothing(tmp_path: Path) -> None:
    with _files.build_connection(tmp_path) as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()
        spill = con.execute("SELECT current_setting('temp_directory')").fetchone()
        assert limit is not None and spill is not None
        assert "GiB" in str(limit[0]) or "MiB" in str(limit[0])
        assert Path(str(spill[0])).parent == tmp_path
        # A sort larger than nothing at all still runs: DuckDB spills what does not fit.
        con.execute("SELECT count(*) FROM (SELECT range FROM range(200000) ORDER BY range DESC)")
    assert list(tmp_path.iterdir()) == []


def test_a_dump_trace_reads_its_caches_without_importing_pandas(
    world: World, lake: Path, tmp_path: Path
) -> None:
    """DuckDB's parameter binding and pyarrow's to_numpy import pandas: 0.25 s a trace."""
    cache = tmp_path / "cache"
    dump_caches(lake, cache)
    bycustomer.bucket_files(lake, cache, [0])  # the rows cache too: builds are not traces
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from bpoguard.trace.accesses import accesses_of, dump_accesses, dump_caches\n"
        f"lake, cache = Path({str(lake)!r}), Path({str(cache)!r})\n"
        "import pyarrow.parquet as pq\n"
        "pairs = pq.ParquetFile(dump_caches(lake, cache).summary).read(columns=['customer_id', 'actor'])\n"
        "ids = sorted(set(pairs.column('customer_id').to_pylist()))[:50]\n"
        "people = sorted(set(pairs.column('actor').to_pylist()))[:3]\n"
        "assert 'pandas' not in sys.modules\n"
        "read = dump_accesses(lake, {c: {'card'} for c in ids}, None, True, cache)\n"
        "rows = accesses_of(lake, ids, None, True, cache, people=people)\n"
        "assert read is not None\n"
        "print('pandas' in sys.modules, len(rows))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[0] == "False"
