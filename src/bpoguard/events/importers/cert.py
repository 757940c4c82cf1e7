"""Importer for the CMU SEI CERT Insider Threat Test Dataset (releases r4.2 and r6.2).

``import_cert(ws, folder)`` reads what the dataset's folder holds, each file
streamed in blocks and imported whole or not at all (``importers._common``):

- ``LDAP/YYYY-MM.csv`` and ``psychometric.csv`` -> the people dimension
  (``events.people``); people who vanish from a later snapshot get an
  ``hr.leave`` event on the first day of the first month without them, and
  people who appear after the first snapshot an ``hr.join``;
- ``logon.csv``, ``device.csv``, ``file.csv``, ``email.csv``, ``http.csv`` ->
  events in the lake (mapping in docs/events.md).

The release is told by each file's header. ``answers/`` is the ground truth
(for ``bpoguard evaluate``) and ``decoy.csv`` is not imported. CERT's times
carry no zone; they are read as UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from bpoguard.errors import InputError
from bpoguard.events import people
from bpoguard.events.importers import _common
from bpoguard.events.importers._common import (
    KEEP_LINES,
    BadLines,
    Block,
    FileReport,
    ImportReport,
    Progress,
    RangeResult,
    constant,
    default_workers,
    import_file,
    import_ranges,
    line_ranges,
    read_header,
    span,
    to_table,
    worker_pool,
)
from bpoguard.events.lake import LakeWriter, stage_table
from bpoguard.events.schema import Action, Outcome
from bpoguard.workspace import Workspace

SOURCE: Final = "cert"
DATE_FORMAT: Final = "%m/%d/%Y %H:%M:%S"

HEADERS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "logon": {"r4.2": ("id", "date", "user", "pc", "activity")},
    "device": {
        "r4.2": ("id", "date", "user", "pc", "activity"),
        "r6.2": ("id", "date", "user", "pc", "file_tree", "activity"),
    },
    "http": {
        "r4.2": ("id", "date", "user", "pc", "url", "content"),
        "r6.2": ("id", "date", "user", "pc", "url", "activity", "content"),
    },
    "email": {
        "r4.2": ("id", "date", "user", "pc", "to", "cc", "bcc", "from", "size", "attachments", "content"),
        "r6.2": (
            "id", "date", "user", "pc", "to", "cc", "bcc", "from", "activity", "size", "attachments", "content",
        ),
    },
    "file": {
        "r4.2": ("id", "date", "user", "pc", "filename", "content"),
        "r6.2": (
            "id", "date", "user", "pc", "filename", "activity", "to_removable_media",
            "from_removable_media", "content",
        ),
    },
}  # fmt: skip
LDAP_HEADERS: Final = {
    "r4.2": (
        "employee_name", "user_id", "email", "role", "business_unit", "functional_unit",
        "department", "team", "supervisor",
    ),
    "r6.2": (
        "employee_name", "user_id", "email", "role", "projects", "business_unit",
        "functional_unit", "department", "team", "supervisor",
    ),
}  # fmt: skip
PSYCHOMETRIC_HEADER: Final = ("employee_name", "user_id", "O", "C", "E", "A", "N")
ACTIVITY_FILES: Final = ("logon", "device", "file", "email", "http")

_ACTIONS: Final[dict[str, dict[str, Action]]] = {
    "logon": {"Logon": Action.LOGON, "Logoff": Action.LOGOFF},
    "device": {"Connect": Action.DEVICE_CONNECT, "Disconnect": Action.DEVICE_DISCONNECT},
    "http": {
        "WWW Visit": Action.WEB_VISIT,
        "WWW Download": Action.WEB_DOWNLOAD,
        "WWW Upload": Action.WEB_UPLOAD,
    },
    "email": {"Send": Action.EMAIL_SEND, "View": Action.EMAIL_VIEW},
    "file": {
        "File Open": Action.FILE_OPEN,
        "File Write": Action.FILE_WRITE,
        "File Copy": Action.FILE_COPY,
        "File Delete": Action.FILE_DELETE,
    },
}
# Where r4.2 has no activity column, every row is one action: its file.csv lists
# copies to removable media, its email.csv sent mail, its http.csv visits.
_R42_ACTION: Final = {
    "http": Action.WEB_VISIT,
    "email": Action.EMAIL_SEND,
    "file": Action.FILE_COPY,
}
_MONTH_FILE: Final = re.compile(r"^(\d{4})-(\d{2})\.csv$")
_WHOLE: Final = r"^\d+$"


def import_cert(
    ws: Workspace,
    folder: Path,
    skip_bad: bool = False,
    progress: Progress | None = None,
    keep_raw: bool = True,
    workers: int | None = None,
) -> ImportReport:
    """Import a CERT dataset folder (or one of its CSV files) into the workspace.

    ``keep_raw=False`` leaves ``raw`` empty: the lake is about a quarter of the
    size and the import faster, for bulk analysis where the CSV files are kept
    anyway. A big activity file is cut into byte ranges that ``workers``
    processes (default: the cores, at most four) parse, map and encode side by
    side.
    """
    tick = progress or (lambda stage, done, total: None)
    report = ImportReport()
    pools = _Pools(default_workers() if workers is None else workers)
    try:
        if folder.is_file():
            _import_one(ws, folder, skip_bad, tick, report, keep_raw, pools)
        else:
            _import_folder(ws, folder, skip_bad, tick, report, keep_raw, pools)
    finally:
        pools.close()
    return report


def _import_folder(
    ws: Workspace,
    folder: Path,
    skip_bad: bool,
    tick: Progress,
    report: ImportReport,
    keep_raw: bool,
    pools: _Pools,
) -> None:
    if not folder.is_dir():
        raise InputError(f"{folder} is not a CERT dataset folder or file")
    ldap = sorted((folder / "LDAP").glob("*.csv")) if (folder / "LDAP").is_dir() else []
    activity = [folder / f"{k}.csv" for k in ACTIVITY_FILES if (folder / f"{k}.csv").is_file()]
    psychometric = folder / "psychometric.csv"
    if not ldap and not activity and not psychometric.is_file():
        raise InputError(
            f"{folder} holds none of the CERT files (logon.csv, device.csv, file.csv, "
            "email.csv, http.csv, LDAP/, psychometric.csv)"
        )
    for path in ldap:
        report.files.append(_import_ldap(ws, path, skip_bad, tick))
    if ldap:
        report.files.append(_import_changes(ws))
    if psychometric.is_file():
        report.files.append(_import_psychometric(ws, psychometric, skip_bad, tick))
    for path in activity:
        report.files.append(_import_activity(ws, path, path.stem, skip_bad, tick, keep_raw, pools))
    if (folder / "answers").is_dir():
        report.notes.append("answers/ is the ground truth: give it to bpoguard evaluate")
    if (folder / "decoy.csv").is_file():
        report.notes.append("decoy.csv is not imported")


def _import_one(
    ws: Workspace,
    path: Path,
    skip_bad: bool,
    tick: Progress,
    report: ImportReport,
    keep_raw: bool,
    pools: _Pools,
) -> None:
    if path.parent.name == "LDAP":
        report.files.append(_import_ldap(ws, path, skip_bad, tick))
        report.files.append(_import_changes(ws))
    elif path.name == "psychometric.csv":
        report.files.append(_import_psychometric(ws, path, skip_bad, tick))
    elif path.stem in ACTIVITY_FILES:
        report.files.append(_import_activity(ws, path, path.stem, skip_bad, tick, keep_raw, pools))
    else:
        raise InputError(f"{path.name} is not a CERT dataset file")


def release_of(path: Path, kind: str) -> str:
    """``r4.2`` or ``r6.2``, from the file's header; InputError when it is neither."""
    header = tuple(read_header(path))
    for release, names in HEADERS[kind].items():
        if header == names:
            return release
    expected = " or ".join(",".join(n) for n in HEADERS[kind].values())
    raise InputError(f"{path.name}: header is not CERT {kind} (expected {expected})")


# --- activity files ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Range:
    """One byte range of an activity file, as a worker process gets it."""

    path: Path
    begin: int
    end: int
    kind: str
    release: str
    keep_raw: bool
    skip_bad: bool
    staging: Path
    stem: str  # unique name of the range's Parquet files


def _import_activity(
    ws: Workspace,
    path: Path,
    kind: str,
    skip_bad: bool,
    tick: Progress,
    keep_raw: bool,
    pools: _Pools,
) -> FileReport:
    release = release_of(path, kind)

    def tasks(writer: LakeWriter, ranges: list[tuple[int, int]]) -> list[_Range]:
        return [
            _Range(
                path, begin, end, kind, release, keep_raw, skip_bad, writer.staging,
                f"{writer.source}-{writer.run_id}-r{number:05d}",
            )
            for number, (begin, end) in enumerate(ranges)
        ]  # fmt: skip

    pool = pools.get() if path.stat().st_size > _common.CHUNK else None
    return import_ranges(ws, path, f"cert.{kind}", tasks, convert_range, skip_bad, tick, pool)


class _Pools:
    """The worker processes of one import, started when the first big file needs them."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: Executor | None = None

    def get(self) -> Executor | None:
        if self.workers < 2:
            return None
        if self._pool is None:
            self._pool = worker_pool(self.workers, __name__)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def convert_range(task: _Range) -> RangeResult:
    """Parse, check and map one byte range of an activity file; stage its Parquet files.

    Runs in a worker process (or in the importing one for a small file); line
    numbers in the result count from the range's first line. The range is
    read in pieces (cache-sized column passes) and staged as one batch.
    """
    result = RangeResult(lines=0)
    mapped: list[pa.Table] = []
    for begin, end in line_ranges(task.path, _common.PIECE, (task.begin, task.end)):
        piece = _convert_piece(task, begin, end, result)
        if result.bad_count and not task.skip_bad:
            return result  # the file is rejected: no need to map the rest
        if piece is not None:
            mapped.append(piece)
    if mapped:
        table = pa.concat_tables(mapped)
        result.rows = stage_table(task.staging, task.stem, table)
        result.first, result.last = span(table)
    return result


def _convert_piece(task: _Range, begin: int, end: int, result: RangeResult) -> pa.Table | None:
    """One piece of a range mapped to events (None if none is left); its bad lines go to result."""
    names = list(HEADERS[task.kind][task.release])
    block = Block(task.path, begin, end, names)
    table = block.table
    time = _times(table.column("date"))
    actions = _actions(table, task.kind)
    found, count, keep = block.bad_lines(_problems(table, task.kind, task.release, time, actions))
    room = KEEP_LINES - len(result.bad)
    result.bad.extend((result.lines + line, reason) for line, reason in found[: max(room, 0)])
    result.bad_count += count
    result.lines += block.lines
    if count and not task.skip_bad:
        return None
    if keep is not None:
        table, time = table.filter(keep), time.filter(keep)
        actions = actions.filter(keep) if actions is not None else None
    if not table.num_rows:
        return None
    raw = block.raw(keep) if task.keep_raw else None
    return _map(table, task.kind, task.release, names, time, actions, raw)


def _problems(
    table: pa.Table, kind: str, release: str, time: pa.Array, actions: pa.Array | None
) -> list[tuple[pa.Array | pa.ChunkedArray, str]]:
    """(bad-row mask, reason) checks of a parsed range, in the order they are reported."""
    problems = [
        # strptime takes 1/4/2010 too: the length holds it to CERT's zero-padded form.
        (pc.not_equal(pc.utf8_length(table.column("date")), 19), "date is not MM/DD/YYYY HH:MM:SS"),
        (pc.is_null(time), "date is not MM/DD/YYYY HH:MM:SS"),
        (pc.equal(pc.utf8_length(table.column("id")), 0), "id is empty"),
        (pc.equal(pc.utf8_length(table.column("user")), 0), "user is empty"),
    ]  # fmt: skip
    if actions is not None:
        problems.append((pc.is_null(actions), _activity_reason(kind)))
    if kind == "email":
        problems.append((pc.invert(pc.match_substring_regex(table.column("size"), _WHOLE)), "size is not a whole number"))  # fmt: skip
        if release == "r4.2":
            problems.append((pc.invert(pc.match_substring_regex(table.column("attachments"), _WHOLE)), "attachments is not a whole number"))  # fmt: skip
    if kind == "file" and release == "r6.2":
        for column in ("to_removable_media", "from_removable_media"):
            flag = pc.is_in(table.column(column), value_set=pa.array(["True", "False"]))
            problems.append((pc.invert(flag), f"{column} is not True or False"))
    return problems


def _activity_reason(kind: str) -> str:
    return f"activity is not one of {', '.join(_ACTIONS[kind])}"


def _times(dates: pa.ChunkedArray) -> pa.Array:
    parsed = pc.strptime(dates, format=DATE_FORMAT, unit="us", error_is_null=True)
    # A naive timestamp cast to UTC keeps its value: the same as assume_timezone, far cheaper.
    return parsed.cast(pa.timestamp("us", tz="UTC"))


def _actions(table: pa.Table, kind: str) -> pa.Array | None:
    """Each row's action, null where the activity is unknown; None when the file has no activity column."""
    if "activity" not in table.column_names:
        return None
    mapping = _ACTIONS[kind]
    index = pc.index_in(table.column("activity"), value_set=pa.array(list(mapping)))
    return pc.take(pa.array([str(a) for a in mapping.values()]), index)


def _map(
    table: pa.Table,
    kind: str,
    release: str,
    names: list[str],
    time: pa.Array,
    actions: pa.Array | None,
    raw: pa.Array | None,
) -> pa.Table:
    n = table.num_rows
    col = table.column
    ids = pc.utf8_trim(col("id"), characters="{}")
    columns: dict[str, pa.Array] = {
        "event_id": pc.binary_join_element_wise(f"{SOURCE}-{kind}", ids, "-"),
        "time": time,
        "source": constant(SOURCE, n),
        "action": actions if actions is not None else constant(str(_R42_ACTION[kind]), n),
        "actor": col("user"),
        "device_id": _blank_to_null(col("pc")),
        "outcome": constant(str(Outcome.SUCCESS), n),
    }
    if raw is not None:
        columns["raw"] = raw  # the source line
    if kind == "device":
        columns["removable"] = constant(True, n)
        if "file_tree" in names:
            columns["dest"] = _blank_to_null(col("file_tree"))
    elif kind == "http":
        url = col("url")
        columns["dest"] = url
        columns["target"] = _blank_to_null(pc.utf8_lower(_host(url)))
    elif kind == "email":
        columns.update(_email(table, release))
    elif kind == "file":
        columns["dest"] = col("filename")
        if release == "r6.2":
            columns["removable"] = pc.or_(
                pc.equal(col("to_removable_media"), "True"),
                pc.equal(col("from_removable_media"), "True"),
            )
        else:
            columns["removable"] = constant(True, n)
    return to_table(n, columns)


def _host(url: pa.ChunkedArray) -> pa.Array:
    """A URL's host. The common case first: the regex without an optional part is 2.5x faster."""
    host = pc.struct_field(pc.extract_regex(url, r"^[a-zA-Z]+://(?P<host>[^/:?#]*)"), [0])
    if host.null_count == 0:
        return host
    bare = pc.struct_field(pc.extract_regex(url, r"^(?P<host>[^/:?#]*)"), [0])
    return pc.coalesce(host, bare)


def _email(table: pa.Table, release: str) -> dict[str, pa.Array]:
    col = table.column
    joined = pc.binary_join_element_wise(col("to"), col("cc"), col("bcc"), ";")
    tidy = pc.utf8_trim(pc.replace_substring_regex(joined, r";+", ";"), characters=";")
    attachments = col("attachments")
    if release == "r4.2":
        count = pc.cast(attachments, pa.int64())
    else:
        listed = pc.add(pc.count_substring(attachments, ";"), 1)
        count = pc.if_else(pc.equal(pc.utf8_length(attachments), 0), 0, listed)
    return {
        # Recipients comma-separated, to then cc then bcc (docs/events.md).
        "dest": _blank_to_null(pc.replace_substring(tidy, ";", ",")),
        "account": _blank_to_null(col("from")),
        "bytes": pc.cast(col("size"), pa.int64()),
        "attachments": pc.cast(count, pa.int64()),
    }


def _blank_to_null(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return pc.if_else(pc.equal(pc.utf8_length(values), 0), pa.scalar(None, pa.string()), values)


# --- people ------------------------------------------------------------------------------


def _read_small_csv(
    path: Path, expected: dict[str, tuple[str, ...]], what: str, bad: BadLines
) -> tuple[str, list[tuple[int, dict[str, str]]]]:
    """A small CSV file (an LDAP snapshot, the psychometric file) as numbered rows."""
    header = tuple(read_header(path))
    release = next((r for r, names in expected.items() if header == names), None)
    if release is None:
        wanted = " or ".join(",".join(n) for n in expected.values())
        raise InputError(f"{path.name}: header is not CERT {what} (expected {wanted})")
    rows: list[tuple[int, dict[str, str]]] = []
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        start = reader.line_num + 1
        for fields in reader:
            if len(fields) != len(header):
                bad.add(start, f"has {len(fields)} fields, expected {len(header)}")
            else:
                rows.append((start, dict(zip(header, fields, strict=True))))
            start = reader.line_num + 1
    return release, rows


def _import_ldap(ws: Workspace, path: Path, skip_bad: bool, tick: Progress) -> FileReport:
    match = _MONTH_FILE.match(path.name)
    if match is None:
        raise InputError(f"LDAP/{path.name}: an LDAP snapshot is named YYYY-MM.csv")
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise InputError(f"LDAP/{path.name}: month {month} is not 01-12")
    snapshot = dt.date(year, month, 1)

    def body(
        writer: LakeWriter, bad: BadLines
    ) -> tuple[int, dt.datetime | None, dt.datetime | None]:
        _, rows = _read_small_csv(path, LDAP_HEADERS, "LDAP snapshot", bad)
        by_name = {r["employee_name"]: r["user_id"] for _, r in rows}
        now = dt.datetime.now(dt.UTC)
        records = []
        seen: set[str] = set()
        for line, r in rows:
            if not r["user_id"]:
                bad.add(line, "user_id is empty")
                continue
            if r["user_id"] in seen:
                bad.add(line, "user_id appears twice in this snapshot")
                continue
            seen.add(r["user_id"])
            records.append(
                {
                    "person": r["user_id"],
                    "name": r["employee_name"] or None,
                    "email": r["email"] or None,
                    "role": r["role"] or None,
                    "projects": r.get("projects") or None,
                    "business_unit": r["business_unit"] or None,
                    "functional_unit": r["functional_unit"] or None,
                    "department": r["department"] or None,
                    "team": r["team"] or None,
                    "supervisor": by_name.get(r["supervisor"]) if r["supervisor"] else None,
                    "supervisor_name": r["supervisor"] or None,
                    "snapshot": snapshot,
                    "source": "cert-ldap",
                    "imported_at": now,
                }
            )
        table = pa.Table.from_pylist(records, schema=people.SNAPSHOT_SCHEMA)
        people.write_file(
            ws.settings.lake_dir, f"ldap-{snapshot:%Y-%m}-{writer.run_id}.parquet", table
        )
        first = dt.datetime.combine(snapshot, dt.time(), tzinfo=dt.UTC)
        return len(records), first, first

    try:
        # Two months can hold the same people, byte for byte: the month is part of the kind.
        kind = f"cert.ldap.{snapshot:%Y-%m}"
        return import_file(ws, path, kind, body, skip_bad, tick, label=f"LDAP/{path.name}")
    except BaseException:
        # The snapshot file is written before the import is recorded; take it back.
        for stale in people.people_dir(ws.settings.lake_dir).glob(
            f"ldap-{snapshot:%Y-%m}-*.parquet"
        ):
            if not _recorded(ws, stale):
                stale.unlink(missing_ok=True)
        raise


def _recorded(ws: Workspace, path: Path) -> bool:
    from bpoguard.events import imports

    run_id = path.stem.rsplit("-", 1)[-1]
    with ws.store.session() as session:
        return any(r.run_id == run_id for r in imports.listing(session))


def _import_psychometric(ws: Workspace, path: Path, skip_bad: bool, tick: Progress) -> FileReport:
    def body(
        writer: LakeWriter, bad: BadLines
    ) -> tuple[int, dt.datetime | None, dt.datetime | None]:
        _, rows = _read_small_csv(path, {"any": PSYCHOMETRIC_HEADER}, "psychometric", bad)
        now = dt.datetime.now(dt.UTC)
        records = []
        for line, r in rows:
            wrong = next((t for t in people.TRAITS if not r[t].strip().isdigit()), None)
            if wrong is not None:
                bad.add(line, f"{wrong} is not a whole number")
                continue
            if not r["user_id"]:
                bad.add(line, "user_id is empty")
                continue
            records.append(
                {
                    "person": r["user_id"],
                    **{t: int(r[t]) for t in people.TRAITS},
                    "imported_at": now,
                }
            )
        table = pa.Table.from_pylist(records, schema=people.TRAITS_SCHEMA)
        people.write_file(ws.settings.lake_dir, f"psychometric-{writer.run_id}.parquet", table)
        return len(records), None, None

    try:
        return import_file(ws, path, "cert.psychometric", body, skip_bad, tick)
    except BaseException:
        for stale in people.people_dir(ws.settings.lake_dir).glob("psychometric-*.parquet"):
            if not _recorded(ws, stale):
                stale.unlink(missing_ok=True)
        raise


def _import_changes(ws: Workspace) -> FileReport:
    """hr.leave / hr.join events from the snapshots, each written once (deterministic ids)."""
    lake = ws.settings.lake_dir
    known = _existing_ids(lake)
    found = people.changes(people.load(lake))
    fresh = [
        (action, person, month)
        for action, person, month in found
        if _change_id(action, person, month) not in known
    ]
    report = FileReport(
        name="LDAP (joiners and leavers)", kind="cert.ldap-changes", status="imported"
    )
    if not fresh:
        report.status = "already imported" if found else "imported"
        return report
    writer = LakeWriter(lake, source="cert-hr")
    n = len(fresh)
    times = [dt.datetime.combine(m, dt.time(), tzinfo=dt.UTC) for _, _, m in fresh]
    table = to_table(
        n,
        {
            "event_id": pa.array([_change_id(a, p, m) for a, p, m in fresh]),
            "time": pa.array(times, pa.timestamp("us", tz="UTC")),
            "source": constant(SOURCE, n),
            "action": pa.array([a for a, _, _ in fresh]),
            "actor": pa.array([p for _, p, _ in fresh]),
            "outcome": constant(str(Outcome.SUCCESS), n),
            "raw": pa.array(
                [
                    f"{'absent from' if a == 'hr.leave' else 'first in'} LDAP/{m:%Y-%m}.csv"
                    for a, _, m in fresh
                ]
            ),
        },
    )
    try:
        writer.write_table(table)
        writer.commit()
    except BaseException:
        writer.retract()
        raise
    report.rows = n
    report.first_time, report.last_time = min(times).isoformat(), max(times).isoformat()
    return report


def _change_id(action: str, person: str, month: dt.date) -> str:
    return f"{SOURCE}-{action.split('.')[1]}-{person}-{month:%Y-%m}"


def _existing_ids(lake: Path) -> set[str]:
    files = sorted(lake.glob("day=*/cert-hr-*.parquet"))
    if not files:
        return set()
    ids = ds.dataset([str(f) for f in files], format="parquet").to_table(columns=["event_id"])
    return set(ids.column("event_id").to_pylist())


__all__ = ["HEADERS", "LDAP_HEADERS", "import_cert", "release_of"]
