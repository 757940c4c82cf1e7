"""`bpoguard trace ...`: who leaked a dump, the common point of compromise, simulated dumps."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bpoguard import collector
from bpoguard.cli._common import (
    DEFAULT_HOME,
    Db,
    Home,
    Json,
    command_group,
    emit_json,
    open_workspace,
    out,
)
from bpoguard.cli._progress import stages
from bpoguard.errors import InputError

trace_app = command_group(
    "trace",
    "Find who leaked a dump of customer records, and the common point behind fraud reports.",
)

Html = Annotated[
    Path | None,
    typer.Option("--html", help="Also write the report as a self-contained HTML page here."),
]


def _date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} must be a date as YYYY-MM-DD") from None


def write_whole(path: Path, text: str) -> None:
    """Write a file whole or not at all (a temporary file renamed into place)."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"no folder {folder} to write {path.name} into")
    from bpoguard.trace import _files  # it brings DuckDB, which only the trace itself needs

    _files.write_whole(folder / path.name, text)


@trace_app.command("leak")
def leak(
    path: Annotated[Path, typer.Argument(help="The dump: CSV, XLSX, JSON, JSON Lines or text.")],
    first_seen: Annotated[
        str | None,
        typer.Option("--first-seen", help="When the dump was first seen (YYYY-MM-DD)."),
    ] = None,
    allowed_only: Annotated[
        bool,
        typer.Option("--allowed-only", help="Count only requests the guard allowed."),
    ] = False,
    max_records: Annotated[
        int, typer.Option("--max-records", help="Stop reading after this many records.")
    ] = 1_000_000,
    html: Html = None,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Match a leaked dump to our customers and rank who accessed them before it surfaced. [analyst, investigator]"""
    from bpoguard.trace.dump import dump_format
    from bpoguard.trace.recognition import DumpRecognition

    if max_records < 1:
        raise InputError("--max-records must be at least 1")
    seen = _date(first_seen, "--first-seen")
    dump_format(path)  # an unreadable file is one line, before any worker or progress bar
    # The dump is read and recognised by a worker forked now, from a process that has
    # imported little, on the other core while this one imports the trace (SQLAlchemy,
    # the vault, numpy, DuckDB: most of a second) and opens the workspace.
    with DumpRecognition(path, max_records) as early:
        from bpoguard.cli.vault import provider
        from bpoguard.guard.vault import Vault
        from bpoguard.trace.leak import LeakOptions, trace_leak
        from bpoguard.trace.report import leak_document, leak_html

        options = LeakOptions(seen, include_denied=not allowed_only, max_records=max_records)
        with (
            open_workspace(home, db) as ws,
            stages(not json_out and sys.stderr.isatty()) as progress,
        ):
            trace = trace_leak(ws, Vault(provider(ws)), path, options, progress, early)
    # The report is some 100,000 new dicts and lists and no reference cycles (a test holds
    # it): the 70-80 collections building it set off, one or two of them full walks of the
    # trace's heap, cost 0.06-0.24 s of a 0.1-0.4 s leak_document at 90 days.
    with collector.paused():
        document = leak_document(trace)
        if html is not None:
            write_whole(html, leak_html(document))
        if json_out:
            emit_json(document)
            return
        _print_leak(document)


def _print_leak(d: dict[str, Any]) -> None:
    out.print(d["verdict"])
    for warning in d["dump"]["warnings"]:
        out.print(f"note: {warning}")
    for hit in d["canary_hits"]:
        out.print(
            f"CANARY {hit['customer_id']} ({hit['ref']}): placed with {hit['shown_to'] or 'nobody'}, "
            f"opened by {', '.join(hit['touched_by']) or 'nobody'}"
        )
    for r in d["ranking"][:10]:
        mark = "SUSPECT" if r["chosen"] else "       "
        out.print(
            f"{r['rank']:>3} {mark} {r['person']:<14} {r['records_explained']:>5} of "
            f"{r['considered']:<5} expected {r['expected_by_chance']:.3g}  p={r['p_value']:.3g}  "
            f"adjusted={r['adjusted_p_value']:.3g}"
        )


@trace_app.command("complaints")
def complaints(
    path: Annotated[
        Path, typer.Argument(help="CSV of fraud reports: customer_id (or ref), reported_on.")
    ],
    html: Html = None,
    allowed_only: Annotated[
        bool,
        typer.Option("--allowed-only", help="Count only requests the guard allowed."),
    ] = False,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Find who (person, team, site, shift, channel) accessed a disproportionate share of fraud victims. [analyst, investigator]"""
    from bpoguard.trace.complaints import complaints_document, trace_complaints
    from bpoguard.trace.report import complaints_html

    with open_workspace(home, db) as ws:
        result = trace_complaints(ws, path, include_denied=not allowed_only)
    document = complaints_document(result)
    if html is not None:
        write_whole(html, complaints_html(document))
    if json_out:
        emit_json(document)
        return
    out.print(document["verdict"])
    for r in document["ranking"][:15]:
        out.print(
            f"{r['rank']:>3} {r['dimension']:<8} {r['value']:<24} victims {r['victims_accessed']:>4} "
            f"of {r['victims']:<5} others {r['others_accessed']:>6} of {r['others']:<7} "
            f"p={r['p_value']:.3g} q={r['q_value']:.3g}"
        )


@trace_app.command("make-dump")
def make_dump(
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the dump.")],
    kind: Annotated[
        str,
        typer.Option(
            "--kind", help="one (one culprit), pair (two pooling), mixed (half from elsewhere)."
        ),
    ] = "one",
    records: Annotated[int, typer.Option("--records", help="Records in the dump.")] = 20,
    format_: Annotated[
        str, typer.Option("--format", help="csv, text, xlsx, json or jsonl.")
    ] = "csv",
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same dump.")] = 1,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Write a leaked dump drawn from a simulated world's culprits, formatted as real ones are. [admin]"""
    from bpoguard.trace.dumps import DumpSpec
    from bpoguard.trace.dumps import make_dump as build

    spec = DumpSpec(kind=kind, records=records, format=format_, seed=seed)
    with open_workspace(home, db) as ws:
        made = build(ws, spec, out_path)
    if json_out:
        emit_json(made.as_json())
        return
    out.print(
        f"Wrote {made.records} records to {out_path} ({spec.format}): "
        f"{made.from_culprits} from {', '.join(made.culprits)}, {made.from_elsewhere} from elsewhere"
    )
