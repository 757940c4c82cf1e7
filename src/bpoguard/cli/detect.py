"""`bpoguard detect`, `risk top`, `alerts list|show|triage`, `evaluate`: insider risk."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
from pathlib import Path
from typing import Annotated

import pyarrow.parquet as pq
import typer
from rich.table import Table

from bpoguard.cli._common import (
    DEFAULT_HOME,
    Db,
    Home,
    Json,
    command_group,
    emit_json,
    err,
    open_workspace,
    out,
)
from bpoguard.cli._progress import stages
from bpoguard.detect import alerts, evaluate, pipeline
from bpoguard.detect.engine import check_engine
from bpoguard.detect.people import directory_for
from bpoguard.detect.rules import load as load_rules
from bpoguard.errors import BpoguardError, InputError

_DURATION = re.compile(r"(\d+)\s*(s|m|h)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def _date(option: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None


def _interval(value: str) -> float:
    """Seconds in a duration written as 90s, 15m or 2h."""
    match = _DURATION.fullmatch(value.strip().lower())
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else 0
    if seconds < 1:
        raise InputError(f"--every {value!r} is not a duration such as 90s, 15m or 2h")
    return float(seconds)


def _report(summary: pipeline.DetectSummary, json_out: bool, scheduled: bool) -> None:
    """Print one run's summary: a JSON document (one line each when scheduled) or prose."""
    if json_out:
        if scheduled:  # JSON Lines: one document a run, flushed so a pipe sees it at once
            sys.stdout.write(json.dumps(summary.as_json(), sort_keys=True, default=str) + "\n")
            sys.stdout.flush()
        else:
            emit_json(summary.as_json())
        return
    stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}Z " if scheduled else ""
    if summary.up_to_date:
        out.print(f"{stamp}No new events since the last run; alerts and risk scores refreshed.")
    out.print(
        f"{stamp}{summary.person_days:,} person-days ({summary.days_recomputed} days recomputed "
        f"on {summary.engine}), {summary.findings} findings ({summary.suppressed} allow-listed), "
        f"{summary.alerts_new} new alerts, {summary.alerts_total} in all"
    )
    for entry in summary.expired_allow:
        out.print(f"{stamp}Allow-list entry expired: {entry}")


def detect_command(
    since: Annotated[
        str | None, typer.Option("--since", help="Recompute features from this day (YYYY-MM-DD).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Detect on days up to this one (YYYY-MM-DD).")
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help="duckdb (default) or spark.")] = "duckdb",
    spark_master: Annotated[
        str | None, typer.Option("--spark-master", help="Spark master URL (default local[*]).")
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules", help="Rule file (TOML); default HOME/detect/rules.toml if present."
        ),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            help="Run again every DURATION (90s, 15m, 2h) until interrupted; with --json, "
            "one JSON document a line per run.",
        ),
    ] = None,
    runs: Annotated[
        int | None, typer.Option("--runs", help="With --every: stop after this many runs.")
    ] = None,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Turn new events into features, alerts and risk scores (only new days recomputed). [analyst]"""
    first, last = _date("--since", since), _date("--until", until)
    if first and last and first > last:
        raise InputError("--since is after --until")
    interval = _interval(every) if every is not None else None
    if runs is not None and (interval is None or runs < 1):
        raise InputError("--runs needs --every and must be at least 1")
    check_engine(engine, spark_master)  # before the progress bars: a bad option is one line
    if rules is not None:
        load_rules(rules)
    done = 0
    while True:
        started = time.monotonic()
        failed: BpoguardError | None = None
        try:
            with open_workspace(home, db) as ws, stages(not json_out) as progress:
                summary = pipeline.run(ws, engine, spark_master, first, last, rules, progress)
        except BpoguardError as exc:
            if interval is None or done == 0:
                raise  # a wrong home or rule file is a mistake to fix now, not to retry
            # A later scheduled run that fails (a busy store, a rule file being edited) is
            # reported and the schedule goes on from the same watermark.
            err.print(f"bpoguard: run {done + 1} failed: {exc}")
            failed = exc
        else:
            _report(summary, json_out, scheduled=interval is not None)
        done += 1
        if interval is None or (runs is not None and done >= runs):
            if failed is not None:
                raise failed  # the exit status is the last run's
            return
        try:
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
        except KeyboardInterrupt:  # between runs: nothing is half done, so a clean stop
            err.print(f"bpoguard: stopped after {done} runs")
            return


risk_app = command_group("risk", "Insider-risk scores per person, explained.")


@risk_app.command("top")
def risk_top(
    n: Annotated[int, typer.Option("--n", help="How many people.")] = 20,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """The people with the highest risk, with the reasons behind each score. [analyst, auditor]"""
    if n < 1:
        raise InputError("--n must be at least 1")
    with open_workspace(home, db) as ws, ws.store.engine.connect() as conn:
        ranked = pipeline.top(conn, n)
    if json_out:
        emit_json(ranked)
        return
    if not ranked:
        out.print("No risk scores yet: run bpoguard detect")
    table = Table(title="Highest insider risk")
    for column in ("#", "person", "score", "reasons"):
        table.add_column(column)
    for i, r in enumerate(ranked, start=1):
        table.add_row(str(i), str(r["person"]), f"{r['score']:.1f}", "\n".join(r["reasons"]))
    out.print(table)


alerts_app = command_group("alerts", "Alerts raised by detection: list, show, triage.")


@alerts_app.command("list")
def alerts_list(
    status: Annotated[
        str | None, typer.Option("--status", help="new, triaged, dismissed or escalated.")
    ] = None,
    person: Annotated[str | None, typer.Option("--person", help="Only this person's.")] = None,
    severity: Annotated[
        str | None, typer.Option("--severity", help="low, medium, high or critical.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 100,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """List alerts, most severe first. [analyst, auditor]"""
    try:
        with open_workspace(home, db) as ws, ws.store.engine.connect() as conn:
            found = alerts.list_alerts(conn, status, person, severity, limit)
    except ValueError as exc:
        raise InputError(f"bad filter: {exc}") from None
    if json_out:
        emit_json([a.as_json() for a in found])
        return
    if not found:
        out.print("No alerts")
    for a in found:
        window = a.window_start.isoformat()
        if a.window_end != a.window_start:
            window += f"..{a.window_end.isoformat()}"
        out.print(f"#{a.id} [{a.severity}] {a.status:<9} {a.person}  {window}  {a.summary}")


@alerts_app.command("show")
def alerts_show(
    alert_id: Annotated[int, typer.Argument(help="The alert's number.")],
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Show one alert: its explanation and the events (and ledger entries) behind it. [analyst, auditor]"""
    with open_workspace(home, db) as ws, ws.store.engine.connect() as conn:
        alert = alerts.get(conn, alert_id)
    if json_out:
        emit_json(alert.as_json())
        return
    out.print(f"Alert #{alert.id}: {alert.detector} [{alert.severity}] on {alert.person}")
    out.print(f"Window {alert.window_start} to {alert.window_end}, status {alert.status}")
    if alert.status_reason:
        out.print(f"Reason: {alert.status_reason} ({alert.status_by})")
    out.print(alert.explanation)
    ledger = [str(i) for _, i in alert.evidence if i is not None]
    out.print(
        f"{len(alert.evidence)} events linked"
        + (f"; ledger entries {', '.join(ledger[:20])}" if ledger else "")
    )


@alerts_app.command("triage")
def alerts_triage(
    alert_id: Annotated[int, typer.Argument(help="The alert's number.")],
    status: Annotated[
        str, typer.Option("--status", help="triaged, dismissed, escalated (or new again).")
    ],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required to dismiss).")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Who is triaging.")] = "analyst",
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Set an alert's status; it is kept across re-runs of detection. [analyst]"""
    now = dt.datetime.now(dt.UTC)
    with open_workspace(home, db) as ws, ws.store.engine.begin() as conn:
        alert = alerts.triage(conn, alert_id, status, by, reason, now)
    if json_out:
        emit_json(alert.as_json())
        return
    out.print(f"Alert #{alert.id} is now {alert.status}")


def evaluate_command(
    truth: Annotated[
        Path, typer.Option("--truth", help="sim/truth.json or CERT answers/insiders.csv.")
    ],
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Measure detection against a ground truth: ranks, recall at 1%/5%, AUC, delay. [analyst, auditor]"""
    culprits = evaluate.load_truth(truth)
    with open_workspace(home, db) as ws, ws.store.engine.connect() as conn:
        ranked = pipeline.top(conn, 10**9)
        found = alerts.list_alerts(conn, limit=10**9)
        directory = directory_for(conn, ws.settings.lake_dir)
        cache = pipeline.detect_dir(ws) / pipeline.FEATURES_FILE
    if not ranked:
        raise InputError("no risk scores yet: run bpoguard detect first")
    holders: dict[str, list[str]] = {}
    for account, person in directory.holders:
        holders.setdefault(account, []).append(person)
    days = (
        len(set(pq.read_table(cache, columns=["day"]).column("day").to_pylist()))
        if cache.exists()
        else 1
    )
    report = evaluate.evaluate(culprits, ranked, found, holders, days)
    if json_out:
        emit_json(report)
        return
    out.print(
        f"{report['culprits']} culprits among {report['persons']} persons: recall "
        f"{report['recall_at_1pct']} at 1% ({report['budget_1pct']}), {report['recall_at_5pct']} "
        f"at 5% ({report['budget_5pct']}), AUC {report['roc_auc']}, "
        f"{report['alerts_per_100_staff_per_day']} alerts per 100 staff per day"
    )
    for r in report["insiders"]:
        out.print(
            f"  {r['person']} ({r['scenario']}): rank {r['rank']}, first alert "
            f"{r['hours_to_first_alert']} h after the first act"
        )
