"""The lake's published Parquet files, by day, and what changed since the last run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path


def lake_files(lake_dir: Path, since: dt.date | None = None) -> list[Path]:
    """Every published file (never a hidden staging file), oldest day first."""
    files = sorted(lake_dir.glob("day=*/*.parquet"))
    if since is None:
        return files
    return [f for f in files if day_of(f) >= since]


def day_of(path: Path) -> dt.date:
    """The day of a lake file, from its partition folder."""
    return dt.date.fromisoformat(path.parent.name.removeprefix("day="))


def fingerprint(files: list[Path]) -> dict[str, str]:
    """Each file's name (relative to the lake) with its size and modification time."""
    return {
        f"{p.parent.name}/{p.name}": f"{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files
    }


def touched_days(before: dict[str, str], now: dict[str, str]) -> set[dt.date]:
    """Days whose files were added, changed or removed since ``before``."""
    changed = {k for k in now.keys() | before.keys() if now.get(k) != before.get(k)}
    return {dt.date.fromisoformat(k.split("/", 1)[0].removeprefix("day=")) for k in changed}
