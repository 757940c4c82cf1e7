"""Benchmark detection's scoring: everything `bpoguard detect` does after the feature table.

Over a workspace whose feature cache (``HOME/detect/features.parquet``) is
already there, it times, stage by stage, what ``bpoguard.detect.pipeline.run``
does once the features are known: the frame (peer groups, own and peer
baselines), the detectors, the robust baselines and the Isolation Forest,
the allow-list, the episodes, the evidence query over the lake (DuckDB), the
alert upsert, risk with decay and its storage. Each stage reports wall and
CPU seconds (every thread of the process); the run reports peak RSS and the
load average around it. The machine is shared, so quote CPU and ratios.

The workspace is never written: its database is copied into a temporary
folder (alerts, evidence and risk emptied, as on a first run) and the lake is
linked read-only. ``--digest`` prints hashes of the findings, the risk
documents and the stored alerts with their evidence, to check that a change
gives identical results (run it against the old and the new code).

Usage:
    .venv/bin/python benchmarks/bench_scoring.py --home /tmp/b30/base/ws [--rerun] [--json]
        [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import inspect
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Stages:
    """Wall and CPU seconds of each named stage, in order."""

    def __init__(self) -> None:
        self.times: dict[str, dict[str, float]] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as one stage."""
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.times[name] = {
            "wall_s": round(time.perf_counter() - wall, 3),
            "cpu_s": round(time.process_time() - cpu, 3),
        }

    def run(self, name: str, call: Callable[[], T]) -> T:
        """Call and time one stage; its result."""
        with self.stage(name):
            return call()


def scratch_home(home: Path, into: Path) -> Path:
    """A writable copy of the workspace without its lake (linked), alerts and risk emptied."""
    copy = into / "ws"
    copy.mkdir()
    for name in ("config.toml", "bpoguard.db"):
        shutil.copy2(home / name, copy / name)
    shutil.copytree(home / "keys", copy / "keys")
    (copy / "lake").symlink_to((home / "lake").resolve())
    return copy


def digest(value: object) -> str:
    """A short hash of a value's repr."""
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def detect(
    stages: Stages, table: Any, directory: Any, as_of: dt.date
) -> tuple[list[Any], list[str]]:
    """What ``pipeline._detect`` does, stage by stage: the findings and the persons."""
    import pandas as pd

    from bpoguard.detect import anomaly, detectors, pipeline

    data = stages.run("to_pandas", table.to_pandas)
    accounts = {a for a, _ in directory.holders}
    # As the pipeline at hand lists the persons (its own unique() or not), to compare versions.
    quick = ".unique()" in inspect.getsource(pipeline._detect)
    column = data["person"].unique() if quick else data["person"]
    persons = stages.run(
        "persons", lambda: sorted({p.person for p in directory.people} | set(column) - accounts)
    )
    data["day"] = pd.to_datetime(data["day"])
    frame = stages.run("frame", lambda: detectors.Frame.of(data, directory))
    found = stages.run("detectors", lambda: detectors.run(frame, ()))
    found += stages.run("robust", lambda: anomaly.robust(frame))
    found += stages.run("forest", lambda: anomaly.forest(frame))
    kept, _ = stages.run("suppress", lambda: pipeline.RuleSet().suppress(found, as_of))
    return kept, persons


def store_alerts(stages: Stages, conn: Any, found: list[Any], files: list[Path]) -> None:
    """What ``pipeline._store_alerts`` does, stage by stage."""
    from bpoguard.detect import alerts, pipeline

    episodes = stages.run("episodes", lambda: alerts.fold(alerts.episodes(found)))
    wanted = {(e.person, d, pipeline._kind(e)) for e in episodes for d in pipeline._days(e)}
    events = stages.run("evidence", lambda: pipeline._evidence_events(files, wanted))
    now = dt.datetime.now(dt.UTC)
    with stages.stage("upsert"):
        items = []
        for episode in episodes:
            kind = pipeline._kind(episode)
            evidence: list[Any] = []
            for day in pipeline._days(episode):
                evidence += events.get((episode.person, day, kind), [])
                if len(evidence) >= alerts.MAX_EVIDENCE:
                    break
            items.append((episode, evidence[: alerts.MAX_EVIDENCE]))
        if hasattr(alerts, "upsert_many"):
            alerts.upsert_many(conn, items, now)
        else:  # the code before the batch upsert, for comparison
            for episode, evidence in items:
                alerts.upsert(conn, episode, now, evidence)


def score_once(
    stages: Stages, ws: Any, table: Any, directory: Any, files: list[Path], as_of: dt.date
) -> list[Any]:
    """One scoring run, as ``pipeline.run`` does it after the features; its findings."""
    from bpoguard.detect import pipeline, risk

    found, persons = detect(stages, table, directory, as_of)
    with ws.store.engine.begin() as conn:
        store_alerts(stages, conn, found, files)
        risks = stages.run(
            "risk", lambda: risk.score(risk.to_people(found, directory), persons, as_of)
        )
        stages.run("store_risk", lambda: pipeline._store_risk(conn, risks))
    return found


def measure(home: Path, rerun: bool, profile: Path | None) -> dict[str, Any]:
    """Time every scoring stage over the workspace's cached feature table."""
    import pyarrow.parquet as pq
    from sqlalchemy import delete, select

    from bpoguard.detect import alerts, pipeline
    from bpoguard.detect._tables import detect_alerts, detect_evidence, detect_risk
    from bpoguard.detect.features import FEATURE_SCHEMA
    from bpoguard.detect.lakefiles import lake_files
    from bpoguard.detect.people import directory_for
    from bpoguard.workspace import Workspace

    table = pq.read_table(home / "detect" / pipeline.FEATURES_FILE).cast(FEATURE_SCHEMA)
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        ws = Workspace.open(scratch_home(home, Path(tmp)))
        with ws.store.engine.begin() as conn:
            for t in (detect_evidence, detect_alerts, detect_risk):
                conn.execute(delete(t))
            directory = directory_for(conn, ws.settings.lake_dir)
        files = lake_files(ws.settings.lake_dir)
        as_of = max(table.column("day").to_pylist())
        rounds = 2 if rerun else 1
        stages = Stages()
        prof = cProfile.Profile() if profile else None
        load = [os.getloadavg()[0]]
        if prof:
            prof.enable()
        for _ in range(rounds):
            # A re-run finds its alerts stored: the upsert then extends, not inserts.
            stages = Stages()
            found = score_once(stages, ws, table, directory, files, as_of)
        if prof:
            prof.disable()
            prof.dump_stats(profile)  # type: ignore[arg-type]
        load.append(os.getloadavg()[0])
        with ws.store.engine.connect() as conn:
            stored = [
                (r.person, r.detector, r.severity, r.window_start, r.window_end,
                 round(r.score, 6), r.summary, r.explanation, r.firings, str(r.detected_at),
                 r.status)
                for r in conn.execute(select(detect_alerts).order_by(detect_alerts.c.id))
            ]  # fmt: skip
            evidence = sorted(
                (r.alert_id, r.event_id, r.ledger_index, str(r.at))
                for r in conn.execute(select(detect_evidence))
            )
            risk_docs = [
                (r.person, round(r.score, 6), json.dumps(r.document, sort_keys=True))
                for r in conn.execute(select(detect_risk).order_by(detect_risk.c.person))
            ]
        ws.close()
    findings = sorted(
        (f.detector.id, f.person, f.day, f.explanation, round(f.weight, 9), f.via, f.accounts)
        for f in found
    )
    total_wall = sum(s["wall_s"] for s in stages.times.values())
    total_cpu = sum(s["cpu_s"] for s in stages.times.values())
    return {
        "home": str(home),
        "person_days": table.num_rows,
        "rerun": rerun,
        "stages": stages.times,
        "total_wall_s": round(total_wall, 3),
        "total_cpu_s": round(total_cpu, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load": [round(x, 2) for x in load],
        "findings": len(found),
        "alerts": len(stored),
        "evidence": len(evidence),
        "digest": {
            "findings": digest(findings),
            "risk": digest(risk_docs),
            "alerts": digest(stored),
            "evidence": digest(evidence),
        },
        "max_evidence": alerts.MAX_EVIDENCE,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    """Parse the arguments, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a workspace with its features")
    parser.add_argument("--rerun", action="store_true", help="time a second run (alerts stored)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the run here")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args()
    if not (args.home / "detect" / "features.parquet").is_file():
        sys.exit(f"{args.home} has no feature cache; run bpoguard detect there first")
    result = measure(args.home, args.rerun, args.profile)
    if args.json:
        print(json.dumps(result, default=str))
        return
    print(f"{result['person_days']:,} person-days, load {result['load']}")
    for name, s in result["stages"].items():
        print(f"  {name:<12} {s['wall_s']:8.2f} s wall {s['cpu_s']:8.2f} s CPU")
    print(
        f"  {'total':<12} {result['total_wall_s']:8.2f} s wall {result['total_cpu_s']:8.2f} s CPU"
    )
    print(f"peak RSS {result['peak_rss_mib']} MiB; {result['findings']} findings, "
          f"{result['alerts']} alerts, {result['evidence']} evidence links")  # fmt: skip
    print("digest", json.dumps(result["digest"]))


if __name__ == "__main__":
    main()
