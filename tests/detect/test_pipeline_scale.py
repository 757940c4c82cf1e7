"""Detection's scaling parts: evidence picked inside DuckDB, DuckDB's memory limit and spill folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpoguard.detect import alerts, detectors, pipeline
from bpoguard.detect.engine import DuckDBEngine, EngineError, open_engine
from bpoguard.detect.findings import Finding
from bpoguard.detect.lakefiles import lake_files
from bpoguard.detect.people import Directory
from bpoguard.events.schema import Event

from ._lake import at, ev, write_lake


def _busy_days() -> list[Event]:
    """alice: 150 record views a day on days 0 and 1, web visits between them; bob the same day."""
    events = []
    for day in (0, 1):
        for i in range(150):
            events.append(ev(at(day, 9 + i / 100), "record.view", "alice", customer_id=i))
            events.append(
                ev(at(day, 9.005 + i / 100), "web.visit", "alice", dest="http://a.example/")
            )
        events.append(ev(at(day, 8), "record.view", "bob", customer_id=1))
    events.append(ev(at(0, 10), "record.reveal", "alice", customer_id=7))  # no interaction
    return events


def _finding(detector: object, person: str, day: int) -> Finding:
    return Finding(detector, person, at(day, 0).date(), "test")  # type: ignore[arg-type]


def test_evidence_is_the_first_events_of_the_episode_of_its_kind_in_time_order(
    tmp_path: Path,
) -> None:
    events = _busy_days()
    files = lake_files(write_lake(tmp_path / "lake", events))
    harvest = alerts.fold(alerts.episodes([_finding(detectors.BULK, "alice", d) for d in (0, 1)]))
    [episode] = harvest
    wanted = {("alice", d, pipeline._kind(episode)) for d in pipeline._days(episode)}
    found = pipeline._evidence_events(files, wanted)
    linked = [e for d in pipeline._days(episode) for e in found[("alice", d, "record")]]
    expected = sorted(
        (e for e in events if e.actor == "alice" and e.action.startswith("record.")),
        key=lambda e: (e.time, e.event_id),
    )
    # Each day keeps its first MAX_EVIDENCE: day 0 (151 records) whole, day 1 whole too.
    assert [e[0] for e in linked] == [e.event_id for e in expected]
    assert all(e[1] is None for e in linked)  # no ledger index in this lake
    assert linked[0][2] == expected[0].time
    assert ("bob", at(0, 0).date(), "record") not in found  # only the wanted person


def test_stored_alert_links_at_most_max_evidence_events_and_only_its_kind(tmp_path: Path) -> None:
    from bpoguard import workspace
    from bpoguard.workspace import Workspace

    workspace.init(tmp_path / "home")
    ws = Workspace.open(tmp_path / "home")
    events = _busy_days()
    files = lake_files(write_lake(ws.settings.lake_dir, events))
    found = [_finding(detectors.BULK, "alice", d) for d in (0, 1)]
    found.append(_finding(detectors.NO_INTERACTION, "alice", 0))
    with ws.store.engine.begin() as conn:
        pipeline._store_alerts(conn, found, files, Directory())
    with ws.store.engine.connect() as conn:
        stored = {a.detector: alerts.get(conn, a.id) for a in alerts.list_alerts(conn)}
    records = sorted(
        (e for e in events if e.actor == "alice" and e.action.startswith("record.")),
        key=lambda e: (e.time, e.event_id),
    )
    harvest = stored["bulk-harvest"]
    # The first MAX_EVIDENCE record requests of its two days; no web visit among them.
    assert len(harvest.evidence) == alerts.MAX_EVIDENCE
    assert {e for e, _ in harvest.evidence} == {e.event_id for e in records[: alerts.MAX_EVIDENCE]}
    reveal = next(e for e in events if e.action == "record.reveal")
    if "reveal-without-interaction" in stored:  # not folded into the harvest
        assert [e for e, _ in stored["reveal-without-interaction"].evidence] == [reveal.event_id]


def test_duckdb_spills_into_the_folder_it_is_given_within_its_memory_limit(tmp_path: Path) -> None:
    engine = DuckDBEngine(memory_limit="512MB", spill_dir=tmp_path / "spill")
    try:
        con = engine.backend.con
        [(folder, limit, order)] = con.execute(
            "SELECT current_setting('temp_directory'), current_setting('memory_limit'), "
            "current_setting('preserve_insertion_order')"
        ).fetchall()
    finally:
        engine.close()
    assert Path(folder) == tmp_path / "spill"
    assert (tmp_path / "spill").is_dir()
    assert limit.replace(" ", "") in {"488.2MiB", "512.0MiB", "488.2MB"}
    assert order is False


def test_default_engine_keeps_duckdb_to_its_budget(tmp_path: Path) -> None:
    engine = open_engine("duckdb", spill_dir=tmp_path / "s")
    try:
        [(limit,)] = engine.backend.con.execute("SELECT current_setting('memory_limit')").fetchall()
    finally:
        engine.close()
    number, unit = limit.split()
    assert unit == "GiB" and float(number) <= 2.0


@pytest.mark.parametrize("size", ["lots", "2 GB; DROP", "-1GB"])
def test_a_memory_limit_that_is_not_a_size_is_refused(size: str) -> None:
    with pytest.raises(EngineError, match="is not a size"):
        DuckDBEngine(memory_limit=size)


def test_run_leaves_no_spill_folder_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpoguard import workspace
    from bpoguard.workspace import Workspace

    monkeypatch.chdir(tmp_path)
    workspace.init(tmp_path / "home")
    ws = Workspace.open(tmp_path / "home")
    write_lake(ws.settings.lake_dir, _busy_days())
    pipeline.run(ws, today=at(2, 0).date())
    assert not (tmp_path / ".tmp").exists()
    assert (pipeline.detect_dir(ws) / pipeline.SPILL_DIR).is_dir()
    assert (pipeline.detect_dir(ws) / pipeline.FEATURES_FILE).is_file()
