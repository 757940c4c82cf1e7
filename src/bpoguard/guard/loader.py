"""Loading a client's customer file into the vault: every value validated, all or nothing.

The file is CSV with a header: ``ref`` (the client's customer reference,
required), optionally ``country`` and ``customer_id`` (the simulator writes
both), and any field type names (``phone``, ``card_number``...). It is read as
a stream; rows are written as they are checked, inside the caller's
transaction, and any rejected row raises :class:`LoadRejected` so that the
caller's rollback leaves nothing behind.

Loading a file again updates in place: a field column replaces that field,
an empty cell clears it, fields without a column are left as they are.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy import Connection, bindparam, insert, select, update

from bpoguard.errors import InputError
from bpoguard.fields import FieldType
from bpoguard.guard.vault import Vault
from bpoguard.store import models as m
from bpoguard.validators import FIELD_COUNTRIES, InvalidValue, validate

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

Progress = Callable[[int, int], None]  # (bytes read, file size)

BATCH = 1_000  # rows checked, then written together
MAX_ERRORS = 20  # stop reading after this many rejected rows
SHOWN_ERRORS = 5  # of them, named in the one-line message
REF_LIMIT = 64  # customers.ref is String(64)
LINE_LIMIT = 1 << 20  # bytes: a longer line is junk, not a customer
_SPECIAL = ("ref", "country", "customer_id")


@dataclass(frozen=True)
class RowError:
    """Why one line was rejected: the field and the rule, never the value."""

    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


class LoadRejected(InputError):
    """The file had bad rows; nothing was loaded. ``errors`` lists them (up to MAX_ERRORS)."""

    def __init__(self, name: str, errors: list[RowError], stopped: bool) -> None:
        errors = sorted(errors, key=lambda e: e.line)
        self.errors = errors
        count = f"{len(errors)}+" if stopped else str(len(errors))
        shown = "; ".join(str(e) for e in errors[:SHOWN_ERRORS])
        more = f"; and {len(errors) - SHOWN_ERRORS} more" if len(errors) > SHOWN_ERRORS else ""
        super().__init__(f"{name}: {count} rows rejected, nothing loaded: {shown}{more}")


@dataclass
class LoadReport:
    """What a load did."""

    client_id: str
    path: str
    rows: int = 0
    created: int = 0  # customers new to the store
    existing: int = 0  # customers already there (loaded before, or the simulator's)
    values: int = 0  # field values encrypted and written
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Header:
    fields: tuple[FieldType, ...]
    positions: tuple[int, ...]  # the column of each field
    ref: int
    country: int | None
    customer_id: int | None
    width: int


@dataclass(frozen=True)
class _Row:
    line: int
    ref: str
    country: str
    customer_id: int | None
    values: dict[FieldType, str]


def load_customers(
    conn: Connection,
    vault: Vault,
    client_id: str,
    path: Path,
    *,
    country: str | None = None,
    progress: Progress | None = None,
    today: dt.date | None = None,
) -> LoadReport:
    """Load a customer file for a client inside conn's transaction; raise before any commit.

    ``country`` is the default for rows without a country column (the client's
    own by default). On LoadRejected or any other error the caller must roll back
    (``engine.begin()`` does).
    """
    own_country = _client_country(conn, client_id)  # also: the client must exist
    default_country = _check_country(country or own_country, "--country")
    report = LoadReport(client_id, str(path))
    size = _size(path)
    with _open_lines(path) as lines:
        reader = csv.reader(lines)
        header = _header(reader, path.name)
        report.fields = [f.value for f in header.fields]
        errors: list[RowError] = []
        seen: dict[str, int] = {}
        for batch in _batches(reader, path.name):
            rows = _check_rows(batch, header, default_country, seen, errors, today)
            known = _known(conn, client_id, header, rows, errors)
            report.rows += len(batch)
            if not errors:
                _write(conn, vault, client_id, header, rows, known, report)
            if progress:
                progress(lines.done, size)
            if len(errors) >= MAX_ERRORS:
                raise LoadRejected(path.name, errors[:MAX_ERRORS], stopped=True)
    if errors:
        raise LoadRejected(path.name, errors, stopped=False)
    if report.rows == 0:
        raise InputError(f"{path.name}: has a header but no customer rows")
    return report


# --- reading ---------------------------------------------------------------------------------


class _Lines:
    """The file's lines decoded one by one, so that a decoding problem has its line number."""

    def __init__(self, handle: BinaryIO, name: str) -> None:
        self._handle = handle
        self._name = name
        self.done = 0  # bytes read, for progress

    def __iter__(self) -> Iterator[str]:
        number = 0
        while raw := self._handle.readline(LINE_LIMIT):
            number += 1
            self.done += len(raw)
            yield self._decode(raw, number)

    def _decode(self, raw: bytes, number: int) -> str:
        where = f"{self._name}: line {number}"
        if b"\x00" in raw:
            raise InputError(f"{where}: binary data (NUL bytes); not a CSV text file")
        if len(raw) == LINE_LIMIT and not raw.endswith(b"\n"):
            raise InputError(f"{where}: longer than {LINE_LIMIT:,} bytes; not a customer file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{where}: not UTF-8 text; save the file as CSV UTF-8") from None
        # Spreadsheet programs put a byte-order mark in front of UTF-8 CSV.
        return text.removeprefix("\ufeff") if number == 1 else text


@contextmanager
def _open_lines(path: Path) -> Iterator[_Lines]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise InputError(f"customer file {path} not found") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not a customer file") from None
    except OSError as exc:
        raise InputError(f"customer file {path}: cannot read ({exc.strerror})") from None
    with handle:
        yield _Lines(handle, path.name)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"customer file {path} not found") from None
    except OSError as exc:
        raise InputError(f"customer file {path}: cannot read ({exc.strerror})") from None


def _next(reader: Iterator[list[str]], name: str, line: int) -> list[str] | None:
    """The next record, with decoding and CSV errors turned into messages with a line number."""
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise InputError(f"{name}: line {line + 1}: malformed CSV ({exc})") from None


def _header(reader: CsvReader, name: str) -> _Header:
    names = _next(reader, name, 0)
    if names is None or not any(n.strip() for n in names):
        raise InputError(f"{name}: empty; a customer file starts with a header line (ref,...)")
    columns = [n.strip().lower() for n in names]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise InputError(f"{name}: header repeats column(s) {', '.join(repeated)}")
    known = {f.value for f in FieldType}
    unknown = [c for c in columns if c not in known and c not in _SPECIAL]
    if unknown:
        allowed = ", ".join([*_SPECIAL, *sorted(known)])
        raise InputError(f"{name}: unknown column(s) {', '.join(unknown)}; allowed: {allowed}")
    if "ref" not in columns:
        raise InputError(f"{name}: no ref column; every customer needs the client's reference")
    fields = tuple(FieldType(c) for c in columns if c in known)
    positions = tuple(i for i, c in enumerate(columns) if c in known)
    if not fields:
        raise InputError(f"{name}: no field columns (phone, email, card_number, ...)")
    return _Header(
        fields=fields,
        positions=positions,
        ref=columns.index("ref"),
        country=columns.index("country") if "country" in columns else None,
        customer_id=columns.index("customer_id") if "customer_id" in columns else None,
        width=len(columns),
    )


def _batches(reader: CsvReader, name: str) -> Iterator[list[tuple[int, list[str]]]]:
    batch: list[tuple[int, list[str]]] = []
    while (record := _next(reader, name, reader.line_num)) is not None:
        if not any(cell.strip() for cell in record):
            continue  # blank lines, often at the end of a file
        batch.append((reader.line_num, record))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


# --- checking --------------------------------------------------------------------------------


def _check_rows(
    batch: list[tuple[int, list[str]]],
    header: _Header,
    default_country: str,
    seen: dict[str, int],
    errors: list[RowError],
    today: dt.date | None,
) -> list[_Row]:
    rows = []
    for line, record in batch:
        try:
            row = _check_row(line, record, header, default_country, today)
        except _Rejected as exc:
            errors.append(RowError(line, exc.problem))
            continue
        if row.ref in seen:
            errors.append(RowError(line, f"ref repeats line {seen[row.ref]}"))
            continue
        seen[row.ref] = line
        rows.append(row)
    return rows


class _Rejected(Exception):
    def __init__(self, problem: str) -> None:
        self.problem = problem


def _check_row(
    line: int, record: list[str], header: _Header, default: str, today: dt.date | None
) -> _Row:
    if len(record) != header.width:
        raise _Rejected(f"has {len(record)} columns, the header has {header.width}")
    ref = record[header.ref].strip()
    if not ref or len(ref) > REF_LIMIT or not ref.isprintable():
        raise _Rejected(f"ref is empty, longer than {REF_LIMIT} characters, or not printable")
    country = default
    if header.country is not None and record[header.country].strip():
        country = _row_country(record[header.country])
    customer_id = None if header.customer_id is None else _customer_id(record[header.customer_id])
    return _Row(line, ref, country, customer_id, _values(record, header, country, today))


def _values(
    record: list[str], header: _Header, country: str, today: dt.date | None
) -> dict[FieldType, str]:
    values = {}
    for name, position in zip(header.fields, header.positions, strict=True):
        raw = record[position]
        if not raw.strip():
            continue  # an empty cell clears the field
        try:
            values[name] = validate(name, raw, country, today=today)
        except InvalidValue as exc:
            raise _Rejected(str(exc)) from None  # the rule broken, never the value
    return values


def _row_country(text: str) -> str:
    code = text.strip().upper()
    if code not in FIELD_COUNTRIES:
        raise _Rejected(f"country must be one of {', '.join(sorted(FIELD_COUNTRIES))}")
    return code


def _customer_id(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise _Rejected("customer_id is not a whole number") from None
    if value <= 0:
        raise _Rejected("customer_id is not a positive number")
    return value


def _check_country(country: str, option: str) -> str:
    code = country.strip().upper()
    if code not in FIELD_COUNTRIES:
        raise InputError(
            f"{option} {country!r}: known countries {', '.join(sorted(FIELD_COUNTRIES))}"
        )
    return code


def _client_country(conn: Connection, client_id: str) -> str:
    row = conn.execute(
        select(m.Organisation.country, m.Organisation.kind).where(m.Organisation.id == client_id)
    ).first()
    if row is None:
        raise InputError(f"unknown client {client_id}; give an organisation id such as org-albion")
    if row.kind is not m.OrgKind.CLIENT:
        raise InputError(f"{client_id} is not a client organisation")
    return str(row.country)


# --- writing ---------------------------------------------------------------------------------

_EXISTING = select(m.Customer.id, m.Customer.ref, m.Customer.country).where(
    m.Customer.client_id == bindparam("client_id"),
    m.Customer.ref.in_(bindparam("refs", expanding=True)),
)
_BY_ID = select(m.Customer.id, m.Customer.client_id, m.Customer.ref, m.Customer.country).where(
    m.Customer.id.in_(bindparam("ids", expanding=True))
)
_SET_COUNTRY = (
    update(m.Customer)
    .where(m.Customer.id == bindparam("b_id"))
    .values(country=bindparam("b_country"))
)


def _known(
    conn: Connection, client_id: str, header: _Header, rows: list[_Row], errors: list[RowError]
) -> dict[str, tuple[int, str]]:
    """The customers already stored, by ref: (id, country). Ids a file gives must be there."""
    if not rows:
        return {}
    if header.customer_id is None:
        if errors:
            return {}  # nothing will be written: no need to look
        found = conn.execute(_EXISTING, {"client_id": client_id, "refs": [r.ref for r in rows]})
        return {r.ref: (r.id, r.country) for r in found}
    by_id = {r.id: r for r in conn.execute(_BY_ID, {"ids": [r.customer_id for r in rows]})}
    known = {}
    for row in rows:
        have = by_id.get(row.customer_id or 0)
        if have is None or have.client_id != client_id or have.ref != row.ref:
            problem = f"customer_id {row.customer_id} is not this client's customer with this ref"
            errors.append(RowError(row.line, problem))
        else:
            known[row.ref] = (have.id, have.country)
    return known


def _write(
    conn: Connection,
    vault: Vault,
    client_id: str,
    header: _Header,
    rows: list[_Row],
    known: dict[str, tuple[int, str]],
    report: LoadReport,
) -> None:
    if not rows:
        return
    _update_countries(conn, rows, known)
    ids = {ref: customer_id for ref, (customer_id, _) in known.items()}
    new = [row for row in rows if row.ref not in known]
    if new:
        created = conn.execute(
            insert(m.Customer).returning(m.Customer.id, m.Customer.ref, sort_by_parameter_order=True),
            [{"client_id": client_id, "ref": row.ref, "country": row.country,
              "is_canary": False} for row in new],
        ).all()  # fmt: skip
        ids.update({r.ref: r.id for r in created})
    report.created += len(new)
    report.existing += len(rows) - len(new)
    records = [(ids[row.ref], row.values) for row in rows]
    report.values += vault.put_many(conn, client_id, records, clear=header.fields)


def _update_countries(
    conn: Connection, rows: list[_Row], stored: dict[str, tuple[int, str]]
) -> None:
    changed = [
        {"b_id": stored[row.ref][0], "b_country": row.country}
        for row in rows
        if row.ref in stored and stored[row.ref][1] != row.country
    ]
    if changed:
        conn.execute(_SET_COUNTRY, changed)


__all__ = ["LoadRejected", "LoadReport", "RowError", "load_customers"]
