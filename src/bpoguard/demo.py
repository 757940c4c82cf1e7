"""The demo: a fresh workspace, a small simulated world, and what it shows.

It runs every capability that exists so far and nothing else; each later
capability adds its step here. Each step asks the library what an analyst
would ask it, on the simulated world, and keeps the answer for the CLI to
print; the ground truth is only used to say whether the answer was right.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bpoguard import workspace
from bpoguard.detect import pipeline
from bpoguard.errors import LedgerError, WorkspaceError
from bpoguard.events import lake
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.ledger import Ledger, verifier
from bpoguard.simulate.run import COMPLAINTS_NAME, Progress, SimConfig, SimSummary, simulate
from bpoguard.trace import (
    DumpSpec,
    LeakOptions,
    complaints_document,
    leak_document,
    leak_html,
    make_dump,
    trace_complaints,
    trace_leak,
)
from bpoguard.workspace import Workspace

MARKER = ".bpoguard-demo"  # marks a folder the demo made, and may replace
# Small enough to run in well under a minute with the guard deciding every request.
DEMO_CONFIG = SimConfig(agents=100, customers=10_000, days=10, seed=7, guard=True)


@dataclass
class LedgerEvidence:
    """The harvester's first attempt to reveal, proven to be in the signed ledger."""

    verified: str  # the standalone verifier's one-line result
    entries: int
    checkpoint_size: int
    entry: dict[str, Any]
    folder: Path  # entry.json, proof.json, checkpoint.txt, key.txt


@dataclass
class GuardOutcome:
    """What the guard did with one culprit's requests for customer data."""

    scenario: str
    person: str
    requests: int
    denied: int
    top_reason: str | None  # the commonest first reason of a denial


@dataclass
class DetectOutcome:
    """Detection over the lake: alerts raised, and the people ranked by risk."""

    alerts: int
    persons: int
    top: list[dict[str, Any]]  # risk top 5: person, score, reasons
    culprits: dict[str, str]  # person -> scenario, from the ground truth


@dataclass
class LeakOutcome:
    """A dump made from the harvester's reads, mixed with others', traced back."""

    dump: Path
    records: int
    from_culprit: int
    culprit: str
    matched: int  # dump records matched to our customers
    suspects: list[dict[str, Any]]  # the report's chosen suspects, best first
    report: Path  # the suspect report as HTML


@dataclass
class ComplaintsOutcome:
    """Customers' scam reports traced to the staff who had seen them."""

    victims: int
    lines: list[dict[str, Any]]  # the report's most significant lines
    ring: list[str]  # the truth, for the reader to compare


@dataclass
class DemoResult:
    """What the demo did: the world it simulated and what its records show."""

    home: Path
    simulated: SimSummary
    events_by_source: dict[str, int]
    guard: list[GuardOutcome]
    ledger: LedgerEvidence | None
    detect: DetectOutcome | None = None
    leak: LeakOutcome | None = None
    complaints: ComplaintsOutcome | None = None


def run(
    home: Path, config: SimConfig = DEMO_CONFIG, progress: Progress | None = None
) -> DemoResult:
    """Build a fresh demo workspace at HOME and simulate the seed stories into it."""
    _clear_previous(home)
    workspace.init(home)
    (home / MARKER).write_text("made by bpoguard demo; replaced by the next demo run\n")
    with Workspace.open(home) as ws:
        summary = simulate(ws, config, progress)
        table = lake.dataset(ws.settings.lake_dir).to_table()
        evidence = _prove_first_harvest(ws, table, summary)
        detected = _detect(ws, summary, config)
        leak = _trace_harvest(ws, summary) if config.guard else None
        complaints = _trace_scam_reports(ws, summary) if config.guard else None
    counts = table.group_by("source").aggregate([("source", "count")])
    by_source = dict(
        zip(counts["source"].to_pylist(), counts["source_count"].to_pylist(), strict=True)
    )
    outcomes = _guard_outcomes(table, summary) if config.guard else []
    return DemoResult(
        home.absolute(), summary, by_source, outcomes, evidence, detected, leak, complaints
    )


def _detect(ws: Workspace, summary: SimSummary, config: SimConfig) -> DetectOutcome:
    """Run detection on DuckDB over the whole lake, as of the day after the world ends."""
    as_of = config.start + dt.timedelta(days=config.days)
    done = pipeline.run(ws, today=as_of)
    with ws.store.engine.connect() as conn:
        top = pipeline.top(conn, 5)
    culprits = {p: s["scenario"] for s in summary.scenarios for p in s["persons"]}
    return DetectOutcome(done.alerts_total, done.persons, top, culprits)


def _trace_harvest(ws: Workspace, summary: SimSummary) -> LeakOutcome | None:
    """Leak 20 records, half the harvester's, half from elsewhere; ask who leaked them."""
    if not any(s["scenario"] == "harvester" for s in summary.scenarios):
        return None
    folder = ws.home / "evidence" / "leak"
    folder.mkdir(parents=True, exist_ok=True)
    dump = folder / "dump-seen-on-a-forum.txt"
    made = make_dump(ws, DumpSpec(kind="mixed", records=20, format="text", seed=11), dump)
    vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
    document = leak_document(trace_leak(ws, vault, dump, LeakOptions()))
    report = folder / "suspect-report.html"
    report.write_text(leak_html(document), encoding="utf-8")
    return LeakOutcome(
        dump=dump,
        records=made.records,
        from_culprit=made.from_culprits,
        culprit=made.culprits[0],
        matched=int(document["matching"].get("customers", 0)),
        suspects=document["suspects"],
        report=report,
    )


def _trace_scam_reports(ws: Workspace, summary: SimSummary) -> ComplaintsOutcome | None:
    """Trace the customers who reported scam calls to the staff who had seen them."""
    ring = next((s for s in summary.scenarios if s["scenario"] == "ring"), None)
    if ring is None:
        return None
    document = complaints_document(trace_complaints(ws, ws.settings.sim_dir / COMPLAINTS_NAME))
    return ComplaintsOutcome(
        victims=int(document.get("victims", 0)),
        lines=[r for r in document["ranking"] if r["stands_out"]][:6] or document["ranking"][:3],
        ring=list(ring["persons"]),
    )


def _guard_outcomes(table: pa.Table, summary: SimSummary) -> list[GuardOutcome]:
    """Per culprit: how many of their requests the guard saw, refused, and why."""
    decisions = table.filter(pc.field("source") == "guard")
    outcomes = []
    for truth in summary.scenarios:
        for person in truth["persons"]:
            mine = decisions.filter(pc.field("actor") == person)
            denied = mine.filter(pc.field("outcome") == "denied")
            reasons = [r[0] for r in denied["reasons"].to_pylist() if r]
            top = max(set(reasons), key=reasons.count) if reasons else None
            outcomes.append(
                GuardOutcome(truth["scenario"], person, mine.num_rows, denied.num_rows, top)
            )
    return outcomes


def _prove_first_harvest(
    ws: Workspace, table: pa.Table, summary: SimSummary
) -> LedgerEvidence | None:
    """Verify the ledger, then prove the harvester's first reveal attempt as an analyst would."""
    harvester = next((s for s in summary.scenarios if s["scenario"] == "harvester"), None)
    if harvester is None:
        return None
    reveals = table.filter(
        (pc.field("actor") == harvester["persons"][0])
        & (pc.field("action") == "record.reveal")
        & pc.field("interaction_id").is_null()
    ).sort_by("time")
    ledger = Ledger.for_workspace(ws)
    report = ledger.verify()
    checkpoint = ledger.latest_checkpoint()
    if not report.ok or checkpoint is None or reveals.num_rows == 0:
        raise LedgerError(f"the demo ledger does not verify: {report.problem}")
    index = reveals["ledger_index"][0].as_py()
    files = ledger.inclusion_evidence(index, checkpoint)
    folder = ws.home / "evidence" / f"entry-{index}"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    # The analyst's copy of the verifier travels with the evidence: one file, stdlib only.
    shutil.copyfile(verifier.__file__, folder / "verifier.py")
    # Check it the way the analyst will: with the standalone verifier, from the files.
    verified = verifier.check_inclusion_files(
        files["entry.json"],
        json.loads(files["proof.json"]),
        files["checkpoint.txt"].decode(),
        verifier.parse_verifier_key(files["key.txt"].decode().strip()),
    )
    return LedgerEvidence(verified, report.entries_checked, checkpoint.size,
                          json.loads(files["entry.json"]), folder)  # fmt: skip


def _clear_previous(home: Path) -> None:
    if not home.exists():
        return
    if not (home / MARKER).is_file():
        raise WorkspaceError(
            f"{home} exists and was not made by the demo; give another --home for the demo"
        )
    shutil.rmtree(home)
