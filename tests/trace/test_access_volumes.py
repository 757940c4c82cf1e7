"""A window's volumes remembered beside the totals: the same people and sizes as summing them."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
from trace_world import World

from bpoguard.trace import accesses
from bpoguard.trace.accesses import NEVER, dump_caches


def _days(world: World) -> list[int]:
    start = dt.date.fromisoformat(world.truth["config"]["start"])
    first = int(dt.datetime.combine(start, dt.time(0), tzinfo=dt.UTC).timestamp()) // 86_400
    return [first, first + 2, first + 4, NEVER]


def test_remembered_volumes_are_the_sums(
    world: World, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    caches = dump_caches(lake, tmp_path / "cache")
    expected = {}
    for day in _days(world):
        for include_denied in (True, False):
            people, sizes = accesses._volumes(caches.totals, day, include_denied)
            expected[day, include_denied] = (people, sizes.tolist())
            got = accesses._window_volumes(caches.totals, day, include_denied)
            assert (got[0], got[1].tolist()) == expected[day, include_denied]
    assert any(people for people, _ in expected.values())
    memos = sorted(caches.totals.parent.glob(f"{accesses._VOLUMES_PREFIX}*.arrow"))
    assert len(memos) == len(expected)
    assert all((m.stat().st_mode & 0o777) == 0o600 for m in memos)

    def never(*_: object) -> None:
        raise AssertionError("the totals were summed again")

    monkeypatch.setattr(accesses, "_volumes", never)
    for (day, include_denied), want in expected.items():
        got = accesses._window_volumes(caches.totals, day, include_denied)
        assert (got[0], got[1].tolist()) == want
    # The caches kept beside the totals survive the next look at them.
    assert dump_caches(lake, tmp_path / "cache") == caches
    assert sorted(caches.totals.parent.glob(f"{accesses._VOLUMES_PREFIX}*.arrow")) == memos


def test_a_stale_or_damaged_memo_is_not_trusted(lake: Path, tmp_path: Path) -> None:
    caches = dump_caches(lake, tmp_path / "cache")
    stale = caches.totals.parent / f"{accesses._VOLUMES_PREFIX}0123456789abcdef01234567-5-all.arrow"
    stale.write_bytes(b"old")
    dump_caches(lake, tmp_path / "cache")
    assert not stale.exists()  # of a superseded summary: removed with it
    people, sizes = accesses._volumes(caches.totals, NEVER, True)
    digest = caches.totals.stem.removeprefix(accesses._TOTALS_PREFIX)
    damaged = caches.totals.parent / f"{accesses._VOLUMES_PREFIX}{digest}-{NEVER}-all.arrow"
    damaged.write_bytes(b"not an arrow file")
    got = accesses._window_volumes(caches.totals, NEVER, True)
    assert (got[0], got[1].tolist()) == (people, sizes.tolist())


def test_remembering_volumes_imports_no_pandas(lake: Path, tmp_path: Path) -> None:
    caches = dump_caches(lake, tmp_path / "cache")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from bpoguard.trace import accesses\n"
        f"totals = Path({str(caches.totals)!r})\n"
        "first = accesses._window_volumes(totals, accesses.NEVER, True)\n"
        "again = accesses._window_volumes(totals, accesses.NEVER, True)\n"
        "assert first[0] == again[0] and first[1].tolist() == again[1].tolist()\n"
        "print('pandas' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False"]


def test_only_the_latest_windows_are_remembered(
    lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accesses, "MAX_VOLUMES", 3)
    caches = dump_caches(lake, tmp_path / "cache")
    written = []
    for day in range(20_000, 20_006):
        accesses._window_volumes(caches.totals, day, True)
        written.append(day)
    kept = sorted(caches.totals.parent.glob(f"{accesses._VOLUMES_PREFIX}*.arrow"))
    assert len(kept) == 3
    # The three written last (each newer than the one before) are the ones kept.
    assert {int(p.stem.split("-")[-2]) for p in kept} == set(written[-3:])
    assert caches.totals.exists() and caches.pairs.exists()  # the caches themselves untouched
