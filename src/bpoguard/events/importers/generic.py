"""Importer for any CSV or JSON Lines log, described by a small TOML mapping file.

Example (docs/events.md has it with a sample log)::

    source = "vpn"                    # the lake's source column
    format = "csv"                    # csv | jsonl (default: from the file's suffix)
    id = "session"                    # optional: a column that identifies the record

    [time]
    column = "when"
    format = "%d/%m/%Y %H:%M:%S"      # strptime format, or iso8601 (default), epoch, epoch_ms
    timezone = "Asia/Kolkata"         # for times written without a zone (default UTC)

    [action]
    column = "event"                  # or: value = "auth.logon" for every row
    map = { connect = "auth.logon", disconnect = "auth.logoff" }
    unmapped = "skip"                 # skip (count) | error (a bad line); default error

    [outcome]
    column = "result"
    map = { ok = "success", denied = "failure" }
    default = "success"

    [columns]                         # lake column = source column (dotted path in JSON)
    actor = "user"
    src_ip = "client.ip"
    device_id = "host"
    bytes = "bytes_out"

Actions must be the lake's (``events.schema.Action``). Without ``id``, a
record's event id is derived from its content, so a re-export of the same
records maps to the same ids.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bpoguard.errors import InputError
from bpoguard.events.importers._common import BadLines, ImportReport, Progress, import_file
from bpoguard.events.importers._records import (
    Record,
    RowProblem,
    Unmapped,
    csv_rows,
    json_records,
    parse_time,
    raw_json,
    text,
    write_records,
)
from bpoguard.events.importers._records import field as lookup
from bpoguard.events.lake import LakeWriter
from bpoguard.events.schema import Action, Event, Outcome
from bpoguard.workspace import Workspace

_STRING_COLUMNS: Final = (
    "actor",
    "account",
    "target",
    "src_ip",
    "device_id",
    "site_id",
    "purpose",
    "dest",
)
_INT_COLUMNS: Final = ("customer_id", "interaction_id", "bytes", "attachments")
_BOOL_COLUMNS: Final = ("removable",)
_TRUE: Final = frozenset({"true", "yes", "1", "y"})
_FALSE: Final = frozenset({"false", "no", "0", "n", ""})


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file: how one log's records become events."""

    source: str
    time_column: str
    time_format: str = "iso8601"
    timezone: dt.tzinfo = dt.UTC
    action_column: str | None = None
    action_value: str | None = None
    action_map: dict[str, str] = field(default_factory=dict)
    skip_unmapped: bool = False
    outcome_column: str | None = None
    outcome_map: dict[str, str] = field(default_factory=dict)
    outcome_default: str = str(Outcome.SUCCESS)
    columns: dict[str, str] = field(default_factory=dict)
    id_column: str | None = None
    format: str | None = None


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; InputError names what is wrong in it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read mapping {path}: {exc.__class__.__name__}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"mapping {path.name} is not valid TOML ({exc})") from None
    return parse_mapping(data, path.name)


def parse_mapping(data: dict[str, Any], name: str = "mapping") -> Mapping:
    """A mapping from its TOML document."""
    known_actions = {str(a) for a in Action}
    known_outcomes = {str(o) for o in Outcome}

    def need(value: object, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{name}: {what} must be a non-empty string")
        return value.strip()

    unknown = set(data) - {"source", "format", "id", "time", "action", "outcome", "columns"}
    if unknown:
        raise InputError(f"{name}: unknown keys {', '.join(sorted(unknown))}")
    time = data.get("time") or {}
    action = data.get("action") or {}
    outcome = data.get("outcome") or {}
    columns = data.get("columns") or {}
    if not all(isinstance(t, dict) for t in (time, action, outcome, columns)):
        raise InputError(f"{name}: time, action, outcome and columns are tables")
    if ("column" in action) == ("value" in action):
        raise InputError(f"{name}: [action] needs either column or value")
    action_map = {str(k): need(v, f"action.map.{k}") for k, v in (action.get("map") or {}).items()}
    for target in [*action_map.values(), *([action["value"]] if "value" in action else [])]:
        if target not in known_actions:
            raise InputError(
                f"{name}: {target!r} is not an action of the lake (see docs/events.md)"
            )
    outcome_map = {
        str(k): need(v, f"outcome.map.{k}") for k, v in (outcome.get("map") or {}).items()
    }
    default = need(outcome.get("default", str(Outcome.SUCCESS)), "outcome.default")
    for target in [*outcome_map.values(), default]:
        if target not in known_outcomes:
            raise InputError(
                f"{name}: outcome {target!r} is not one of {', '.join(sorted(known_outcomes))}"
            )
    allowed = set(_STRING_COLUMNS + _INT_COLUMNS + _BOOL_COLUMNS)
    wrong = set(columns) - allowed
    if wrong:
        raise InputError(f"{name}: [columns] {', '.join(sorted(wrong))} are not lake columns")
    unmapped = action.get("unmapped", "error")
    if unmapped not in ("error", "skip"):
        raise InputError(f"{name}: action.unmapped is error or skip")
    fmt = data.get("format")
    if fmt is not None and fmt not in ("csv", "jsonl"):
        raise InputError(f"{name}: format is csv or jsonl")
    zone = str(time.get("timezone", "UTC"))
    try:
        tz: dt.tzinfo = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"{name}: time.timezone {zone!r} is not a known time zone") from None
    return Mapping(
        source=need(data.get("source"), "source"),
        time_column=need(time.get("column"), "time.column"),
        time_format=need(time.get("format", "iso8601"), "time.format"),
        timezone=tz,
        action_column=need(action["column"], "action.column") if "column" in action else None,
        action_value=action.get("value"),
        action_map=action_map,
        skip_unmapped=unmapped == "skip",
        outcome_column=need(outcome["column"], "outcome.column") if "column" in outcome else None,
        outcome_map=outcome_map,
        outcome_default=default,
        columns={k: need(v, f"columns.{k}") for k, v in columns.items()},
        id_column=need(data["id"], "id") if "id" in data else None,
        format=fmt,
    )


def import_events(
    ws: Workspace,
    paths: list[Path],
    mapping: Mapping,
    skip_bad: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import CSV or JSON Lines logs with a mapping."""
    tick = progress or (lambda stage, done, total: None)
    report = ImportReport()
    unmapped: Counter[str] = Counter()
    convert = _Converter(mapping)
    for path in paths:
        fmt = mapping.format or (
            "jsonl" if path.suffix.lower() in (".jsonl", ".json", ".ndjson") else "csv"
        )

        def body(
            writer: LakeWriter, bad: BadLines, path: Path = path, fmt: str = fmt
        ) -> tuple[int, Any, Any]:
            records: Iterator[tuple[int, Any]]
            if fmt == "csv":
                records = csv_rows(path, tuple(convert.required), tick)
            else:
                records = json_records(path, tick)
            return write_records(writer, records, convert, bad, unmapped)

        kind = f"events.{mapping.source}"[:32]
        report.files.append(import_file(ws, path, kind, body, skip_bad, tick))
    if unmapped:
        listed = ", ".join(f"{v} ({n})" for v, n in sorted(unmapped.items()))
        report.notes.append(f"action values not in the mapping, not imported: {listed}")
    return report


class _Converter:
    def __init__(self, mapping: Mapping) -> None:
        self.m = mapping
        self.required = [mapping.time_column]
        if mapping.action_column:
            self.required.append(mapping.action_column)

    def __call__(self, record: Record) -> list[Event]:
        m = self.m
        when = self._time(lookup(record, m.time_column))
        action = self._action(record)
        event = Event(
            event_id="",
            time=when,
            source=m.source,
            action=action,
            outcome=self._outcome(record),
            raw=raw_json(record),
        )
        for column, source in m.columns.items():
            value = lookup(record, source)
            if column in _INT_COLUMNS:
                setattr(event, column, _int(value, source))
            elif column in _BOOL_COLUMNS:
                setattr(event, column, _bool(value, source))
            else:
                setattr(event, column, text(value))
        key = text(lookup(record, m.id_column)) if m.id_column else None
        if m.id_column and key is None:
            raise RowProblem(f"{m.id_column} is empty")
        if key is None:
            key = hashlib.sha256(event.raw.encode()).hexdigest()[:24]  # type: ignore[union-attr]
        event.event_id = f"{m.source}-{key}"
        return [event]

    def _time(self, value: object) -> dt.datetime:
        m = self.m
        name = m.time_column
        if m.time_format in ("epoch", "epoch_ms"):
            try:
                seconds = float(str(value).strip())
            except ValueError:
                raise RowProblem(f"{name} is not a number of seconds") from None
            if m.time_format == "epoch_ms":
                seconds /= 1000
            return dt.datetime.fromtimestamp(seconds, dt.UTC)
        if m.time_format == "iso8601":
            when = parse_time(value, name)
            if isinstance(value, str) and _naive(value):
                when = when.replace(tzinfo=m.timezone).astimezone(dt.UTC)
            return when
        try:
            parsed = dt.datetime.strptime(str(value).strip(), m.time_format)
        except ValueError:
            raise RowProblem(f"{name} does not match {m.time_format}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=m.timezone)
        return parsed.astimezone(dt.UTC)

    def _action(self, record: Record) -> str:
        m = self.m
        if m.action_value is not None:
            return m.action_value
        value = text(lookup(record, m.action_column or ""))
        if value is None:
            raise RowProblem(f"{m.action_column} is empty")
        if value in m.action_map:
            return m.action_map[value]
        if not m.action_map and value in {str(a) for a in Action}:
            return value
        if m.skip_unmapped:
            raise Unmapped(value[:40])
        raise RowProblem(f"{m.action_column} has a value the mapping does not map")

    def _outcome(self, record: Record) -> str:
        m = self.m
        if m.outcome_column is None:
            return m.outcome_default
        value = text(lookup(record, m.outcome_column))
        if value is None:
            return m.outcome_default
        return m.outcome_map.get(value, m.outcome_default)


def _naive(value: str) -> bool:
    tail = value.strip()[10:]
    return not (tail.endswith("Z") or "+" in tail or tail.count("-") > 0)


def _int(value: object, name: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise RowProblem(f"{name} is not a whole number")
    try:
        return int(str(value).strip())
    except ValueError:
        raise RowProblem(f"{name} is not a whole number") from None


def _bool(value: object, name: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False if word else None
    raise RowProblem(f"{name} is not true or false")
