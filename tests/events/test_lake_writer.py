"""The lake writer's bulk path: Arrow batches split by day, staged, published or dropped."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from bpoguard.events import lake
from bpoguard.events.importers._common import constant, to_table

START = dt.datetime(2026, 3, 1, 22, 0, tzinfo=dt.UTC)


def batch(hours: list[int]) -> pa.Table:
    n = len(hours)
    return to_table(
        n,
        {
            "event_id": pa.array([f"t-{i}-{h}" for i, h in enumerate(hours)]),
            "time": pa.array(
                [START + dt.timedelta(hours=h) for h in hours], pa.timestamp("us", tz="UTC")
            ),
            "source": constant("test", n),
            "action": constant("auth.logon", n),
            "outcome": constant("success", n),
        },
    )


@pytest.mark.parametrize("background", [False, True])
def test_batches_out_of_time_order_land_in_their_days(tmp_path: Path, background: bool) -> None:
    writer = lake.LakeWriter(tmp_path, "test", max_buffered=4, background=background)
    writer.write_table(batch([30, 1, 0, 27, 5, 2]))  # 3, 1, 1, 3, 2, 2 March
    writer.write_table(batch([50]))
    assert lake.count(tmp_path) == 0  # staged, not published

    assert writer.commit() == 7

    table = lake.dataset(tmp_path).to_table()
    by_day: dict[str, int] = {}
    for row in table.to_pylist():
        assert row["day"] == row["time"].date()
        by_day[str(row["day"])] = by_day.get(str(row["day"]), 0) + 1
    assert by_day == {"2026-03-01": 2, "2026-03-02": 2, "2026-03-03": 2, "2026-03-04": 1}


def test_abort_leaves_the_lake_as_it_was(tmp_path: Path) -> None:
    writer = lake.LakeWriter(tmp_path, "test", max_buffered=2, background=True)
    writer.write_table(batch([0, 1, 2, 30]))
    writer.abort()

    assert lake.count(tmp_path) == 0
    assert not list(tmp_path.glob(".staging-*"))


def test_files_staged_by_another_process_are_published_with_the_run(tmp_path: Path) -> None:
    writer = lake.LakeWriter(tmp_path, "test")
    writer.write_table(batch([0]))
    staged = lake.stage_table(writer.staging, f"test-{writer.run_id}-r00000", batch([1, 26, 3]))
    writer.adopt(staged)
    assert staged == 3 and lake.count(tmp_path) == 0

    assert writer.commit() == 4

    by_day = sorted(str(r["day"]) for r in lake.dataset(tmp_path).to_table().to_pylist())
    assert by_day == ["2026-03-01", "2026-03-01", "2026-03-02", "2026-03-03"]
    assert not list(tmp_path.glob(".staging-*"))


def test_abort_drops_what_other_processes_staged(tmp_path: Path) -> None:
    writer = lake.LakeWriter(tmp_path, "test")
    lake.stage_table(writer.staging, "test-x-r00000", batch([0, 30]))

    writer.abort()

    assert lake.count(tmp_path) == 0
    assert not list(tmp_path.glob(".staging-*"))
