"""`bpoguard demo`: the main job on the embedded defaults."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from bpoguard.cli._common import Json, emit_json, out
from bpoguard.cli._progress import stages
from bpoguard.cli.simulate import summary_table

if TYPE_CHECKING:
    from bpoguard import demo

DESCRIPTIONS = {
    "harvester": "reads bank, card and passport fields at night, without calls",
    "mailbox": "client mailboxes used from outside and a rival; passwords changed",
    "leaver": "exports the client list, leaves, keeps the laptop, reads on",
    "ring": "agents whose customers later report scam calls",
}


def demo_command(
    home: Annotated[
        Path, typer.Option("--home", help="Demo workspace; a previous demo there is replaced.")
    ] = Path(".bpoguard-demo"),
    json_out: Json = False,
) -> None:
    """Run the demo: a fresh workspace and a simulated BPO with the seed stories' crimes. [admin]"""
    with stages(enabled=not json_out) as progress:
        # Imported when the demo runs: it reaches every capability, analytics included,
        # which other commands should not wait for at start-up.
        from bpoguard import demo

        result = demo.run(home, progress=progress)
    if json_out:
        emit_json(asdict(result))
        return
    out.print(f"\nDemo workspace: {result.home}\n")
    out.print(summary_table(result.simulated))
    sources = Table(title="Events in the lake, by source")
    sources.add_column("source")
    sources.add_column("events", justify="right")
    for source, count in sorted(result.events_by_source.items()):
        sources.add_row(source, f"{count:,}")
    out.print(sources)
    out.print(_crimes(result), soft_wrap=True)
    if result.guard:
        out.print(_guard(result), soft_wrap=True)
    if result.ledger is not None:
        out.print(_ledger(result.ledger), soft_wrap=True)
    if result.detect is not None:
        out.print(_detect(result.detect), soft_wrap=True)
    if result.leak is not None:
        out.print(_leak(result.leak), soft_wrap=True)
    if result.complaints is not None:
        out.print(_complaints(result.complaints), soft_wrap=True)


def _guard(result: demo.DemoResult) -> str:
    lines = [
        "Guard: every request above was decided by the contracts' Cedar policies; "
        f"{result.simulated.denied:,} were refused. The culprits' requests:"
    ]
    for o in result.guard:
        share = f"{o.denied:,} of {o.requests:,} refused" if o.requests else "no record requests"
        lines.append(f"  {o.scenario:<10} {o.person}: {share}")
        if o.top_reason:
            lines.append(f"  {'':<10} most often: {o.top_reason}")
    return "\n".join(lines) + "\n"


def _ledger(evidence: demo.LedgerEvidence) -> str:
    entry = evidence.entry
    folder = evidence.folder
    return "\n".join(
        [
            f"Record: {evidence.entries:,} access decisions in the ledger, every hash re-derived,",
            f"  checkpoint at size {evidence.checkpoint_size:,} signed; the ledger verifies.",
            f"  The harvester's first attempt is entry {evidence.folder.name.removeprefix('entry-')}:",
            f"  {entry['staff']} asked to reveal {', '.join(entry['fields'])}",
            f"  of customer {entry['customer']} at {entry['t'][:19]} UTC, with no call open;",
            f"  decision: {entry['decision']} ({'; '.join(entry['reasons'])}).",
            f"  Standalone verifier: {evidence.verified}",
            "  A police analyst checks them without bpoguard, with Python 3 and cryptography:",
            f"    cd {folder}",
            "    python3 verifier.py --entry entry.json --proof proof.json \\",
            '      --checkpoint checkpoint.txt --key "$(cat key.txt)"',
            "",
        ]
    )


def _detect(detected: demo.DetectOutcome) -> str:
    lines = [
        f"Detect: {detected.alerts} alerts over {detected.persons} people; "
        "the five highest risks, with why:"
    ]
    for k, item in enumerate(detected.top, 1):
        scenario = detected.culprits.get(str(item["person"]))
        mark = f"  <- the {scenario}" if scenario else ""
        lines.append(f"  {k}. {item['person']} (risk {float(item['score']):.1f}){mark}")
        for reason in list(item.get("reasons", []))[:2]:
            lines.append(f"       {reason}")
    return "\n".join(lines) + "\n"


def _leak(leak: demo.LeakOutcome) -> str:
    lines = [
        f"Trace: a dump of {leak.records} records turns up ({leak.from_culprit} of them read by "
        f"{leak.culprit}, the rest from elsewhere);",
        f"  {leak.matched} are our customers, found through the vault's blind indexes.",
    ]
    if not leak.suspects:
        lines.append("  No one accessed more of them than chance explains.")
    for s in leak.suspects[:3]:
        right = "  <- the harvester" if s["person"] == leak.culprit else ""
        lines.append(
            f"  suspect {s['rank']}: {s['person']} accessed {s['records_explained']} of them "
            f"before the leak (p = {s['adjusted_p_value']:.1e}){right}"
        )
    lines.append(f"  Suspect report, each access with its ledger proof: {leak.report}")
    return "\n".join(lines) + "\n"


def _complaints(complaints: demo.ComplaintsOutcome) -> str:
    ring = set(complaints.ring)
    lines = [
        f"Trace: {complaints.victims} customers reported scam calls; who had seen them before "
        "their reports, more than chance explains (Fisher's exact test, false-discovery corrected):"
    ]
    for r in complaints.lines:
        mark = "  <- in the ring" if r["value"] in ring else ""
        lines.append(
            f"  {r['dimension']:<8} {r['value']}: {r['victims_accessed']} of {r['victims']} victims, "
            f"{r['others_accessed']} of {r['others']:,} others (q = {r['q_value']:.1e}){mark}"
        )
    lines.append(f"  The ring, from the ground truth: {', '.join(complaints.ring)}")
    return "\n".join(lines) + "\n"


def _crimes(result: demo.DemoResult) -> str:
    lines = ["Crimes injected (from the ground truth, sim/truth.json):"]
    for truth in result.simulated.scenarios:
        name = truth["scenario"]
        first = (truth["first_act"] or "-")[:16].replace("T", " ")
        lines.append(f"  {name:<10} {', '.join(truth['persons'])}, from {first} UTC")
        lines.append(f"  {'':<10} {DESCRIPTIONS[name]}")
        lines.append(f"  {'':<10} {_scale(truth)}")
    return "\n".join(lines) + "\n"


def _scale(truth: dict[str, Any]) -> str:
    name = truth["scenario"]
    if name == "harvester":
        return f"{len(truth['customers']):,} customers harvested"
    if name == "mailbox":
        return f"{len(truth['accounts'])} mailboxes taken over"
    if name == "leaver":
        return f"left {truth['left']}; {len(truth['customers']):,} customers taken or read"
    return f"{len(truth['victims']):,} of their customers report scam calls"
