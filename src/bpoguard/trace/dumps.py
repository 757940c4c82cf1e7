"""Simulated leaked dumps, drawn from a simulated world's ground truth, for demos, tests, benchmarks.

A dump is what a culprit could have copied: customers they accessed (read
from the lake's guard decisions, as the ledger records them), with the
fields they accessed, written the way real dumps are (card numbers in
groups, names in lower case, a masked card here and there, national phone
numbers). ``mixed`` dumps add records from elsewhere: half our customers whom
the culprit never accessed, half people we do not hold at all.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bpoguard.errors import InputError
from bpoguard.simulate.identities import IdentityFactory
from bpoguard.trace.accesses import accesses_of, has_lake
from bpoguard.workspace import Workspace

KINDS = ("one", "pair", "mixed")
FORMATS = ("csv", "text", "xlsx", "json", "jsonl")
MAX_RECORDS = 100_000
_ORDER = ("name", "card_number", "sort_code", "account_number", "iban", "phone", "email",
          "passport_number", "driving_licence", "nino", "pan", "date_of_birth")  # fmt: skip
_HEADERS = {"name": "Full Name", "card_number": "CC", "sort_code": "Sort", "account_number": "Acc#",
            "iban": "IBAN", "phone": "Mob", "email": "E-mail", "passport_number": "PP no",
            "driving_licence": "DL", "nino": "NI", "pan": "PAN no", "date_of_birth": "DOB"}  # fmt: skip


@dataclass(frozen=True)
class DumpSpec:
    """What dump to make."""

    kind: str = "one"
    records: int = 20
    format: str = "csv"
    seed: int = 1

    def check(self) -> None:
        """InputError for a spec that cannot be honoured."""
        if self.kind not in KINDS:
            raise InputError(f"--kind must be one of {', '.join(KINDS)}")
        if self.format not in FORMATS:
            raise InputError(f"--format must be one of {', '.join(FORMATS)}")
        if not 1 <= self.records <= MAX_RECORDS:
            raise InputError(f"--records must be between 1 and {MAX_RECORDS:,}")


@dataclass
class MadeDump:
    """What was written, and its truth (for tests and demos; never part of a real trace)."""

    records: int
    culprits: list[str]
    from_culprits: int
    from_elsewhere: int
    customers: dict[str, list[int]] = field(default_factory=dict)  # culprit -> customers
    elsewhere_ours: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The dump's truth as a JSON document."""
        return {
            "records": self.records,
            "culprits": self.culprits,
            "from_culprits": self.from_culprits,
            "from_elsewhere": self.from_elsewhere,
            "customers": self.customers,
            "elsewhere_ours": self.elsewhere_ours,
        }


def _truth(ws: Workspace) -> dict[str, Any]:
    path = ws.settings.sim_dir / "truth.json"
    if not path.is_file():
        raise InputError(f"no simulated world in {ws.home}: run bpoguard simulate --guard first")
    truth: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return truth


def _culprits(truth: dict[str, Any], kind: str) -> list[str]:
    by_name = {s["scenario"]: s for s in truth.get("scenarios", [])}
    if kind == "pair":
        if "ring" in by_name and len(by_name["ring"]["persons"]) >= 2:
            return [str(p) for p in by_name["ring"]["persons"][:2]]
        found = [str(by_name[n]["persons"][0]) for n in ("harvester", "leaver") if n in by_name]
        if len(found) < 2:
            raise InputError(
                "a pair dump needs the ring, or the harvester and the leaver, in the world"
            )
        return found
    for name in ("harvester", "leaver", "ring"):
        if name in by_name and by_name[name]["persons"]:
            return [str(by_name[name]["persons"][0])]
    raise InputError("the simulated world has no culprit (simulate with --scenarios harvester)")


def _values(ws: Workspace, wanted: set[int]) -> tuple[dict[int, dict[str, str]], dict[int, str]]:
    """Values of the wanted customers from the clients' customer files, and their countries."""
    values: dict[int, dict[str, str]] = {}
    countries: dict[int, str] = {}
    for path in sorted(ws.settings.sim_dir.glob("customers-*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                cid = int(row["customer_id"])
                if cid in wanted:
                    countries[cid] = row["country"]
                    values[cid] = {k: v for k, v in row.items() if k in _ORDER and v}
    return values, countries


def make_dump(ws: Workspace, spec: DumpSpec, out: Path) -> MadeDump:
    """Write a simulated leaked dump to ``out`` (whole or not at all)."""
    spec.check()
    truth = _truth(ws)
    if not has_lake(ws.settings.lake_dir):
        raise InputError("the workspace's event lake is empty: nothing was accessed to leak")
    rng = np.random.default_rng(spec.seed)
    culprits = _culprits(truth, spec.kind)
    own = spec.records // 2 if spec.kind == "mixed" else spec.records
    shares = _split(own, len(culprits))
    accessed = _accessed(ws, culprits)
    chosen: dict[str, list[int]] = {}
    taken: set[int] = set()
    for person, share in zip(culprits, shares, strict=True):
        pool = sorted(set(accessed[person]) - taken)
        if not pool:
            raise InputError(f"{person} accessed no customers in this world")
        picks = [int(c) for c in rng.choice(pool, size=min(share, len(pool)), replace=False)]
        chosen[person] = sorted(picks)
        taken.update(picks)
    elsewhere = spec.records - sum(len(v) for v in chosen.values()) if spec.kind == "mixed" else 0
    ours_elsewhere = _elsewhere(ws, truth, taken, accessed, elsewhere // 2, rng)
    values, countries = _values(ws, taken | set(ours_elsewhere))
    rows: list[dict[str, str]] = []
    for person, ids in chosen.items():
        for cid in ids:
            fields = accessed[person][cid] | {"name"}
            rows.append(
                _messy({k: v for k, v in values[cid].items() if k in fields}, countries[cid], rng)
            )
    for cid in ours_elsewhere:
        rows.append(_messy(_some_fields(values[cid], rng), countries[cid], rng))
    strangers = IdentityFactory(spec.seed + 1_000_003).batch("GB", elsewhere - len(ours_elsewhere))
    for stranger in strangers:
        rows.append(_messy(_some_fields(stranger, rng), "GB", rng))
    order = rng.permutation(len(rows))
    rows = [rows[int(k)] for k in order]
    _write(out, spec.format, rows)
    return MadeDump(
        records=len(rows),
        culprits=culprits,
        from_culprits=len(taken),
        from_elsewhere=len(rows) - len(taken),
        customers=chosen,
        elsewhere_ours=sorted(ours_elsewhere),
    )


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


def _accessed(ws: Workspace, people: Sequence[str]) -> dict[str, dict[int, set[str]]]:
    """Per culprit: customers accessed and the fields asked for (from the lake's guard rows)."""
    from bpoguard.trace.accesses import access_index
    from bpoguard.trace.leak import cache_dir

    index = access_index(ws.settings.lake_dir, cache_dir=cache_dir(ws))
    where = {name: k for k, name in enumerate(index.people)}
    ids: set[int] = set()
    for person in people:
        if person not in where:
            continue
        # The positions of this person's pairs, and the customer each position belongs to.
        rows = np.flatnonzero(index.accessors == where[person])
        owners = np.searchsorted(index.indptr, rows, side="right") - 1
        ids.update(int(c) for c in index.customers[owners])
    found: dict[str, dict[int, set[str]]] = {p: {} for p in people}
    for a in accesses_of(ws.settings.lake_dir, ids):
        if a.person in found:
            found[a.person].setdefault(a.customer_id, set()).update(a.fields)
    return found


def _elsewhere(
    ws: Workspace,
    truth: dict[str, Any],
    taken: set[int],
    accessed: dict[str, dict[int, set[str]]],
    count: int,
    rng: np.random.Generator,
) -> list[int]:
    """Our customers that none of the culprits accessed: leaked by someone, somewhere else."""
    if count <= 0:
        return []
    total = int(truth["config"]["customers"])
    touched = {c for per in accessed.values() for c in per}
    canaries = {int(i) for ids in truth.get("canaries", {}).values() for i in ids}
    picked: list[int] = []
    while len(picked) < count:
        cid = int(rng.integers(1, total + 1))
        if cid not in touched and cid not in taken and cid not in canaries and cid not in picked:
            picked.append(cid)
    return picked


def _some_fields(values: dict[str, str], rng: np.random.Generator) -> dict[str, str]:
    keep = ["name"] + [
        k for k in ("card_number", "phone", "email", "account_number") if k in values
    ]
    return {k: values[k] for k in keep[: 2 + int(rng.integers(0, 2))] if k in values}


def _messy(values: dict[str, str], country: str, rng: np.random.Generator) -> dict[str, str]:
    """Format values the way dumps do: groups, dashes, lower case, national numbers, a masked card."""
    out: dict[str, str] = {}
    strong = [k for k in values if k not in ("name", "sort_code", "date_of_birth")]
    for key, value in values.items():
        roll = float(rng.random())
        if key == "card_number":
            if len(strong) > 1 and roll < 0.15:
                value = "**** **** **** " + value[-4:]
            elif roll < 0.6:
                value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
            else:
                value = "-".join(value[i : i + 4] for i in range(0, len(value), 4))
        elif key in ("name", "email", "iban", "nino", "driving_licence", "pan") and roll < 0.6:
            value = value.lower()
        elif key == "sort_code" and len(value) == 6:
            value = f"{value[:2]}-{value[2:4]}-{value[4:]}"
        elif key == "phone" and country == "GB" and value.startswith("+44") and roll < 0.5:
            value = "0" + value[3:6] + " " + value[6:]
        elif key == "phone" and country == "US" and value.startswith("+1") and roll < 0.5:
            value = f"({value[2:5]}) {value[5:8]}-{value[8:]}"
        out[key] = value
    return out


def _write(out: Path, format_: str, rows: list[dict[str, str]]) -> None:
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"no folder {folder} to write {out.name} into")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _render(Path(tmp), format_, rows)
        os.chmod(tmp, 0o600)  # synthetic, but shaped like stolen data
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _render(path: Path, format_: str, rows: list[dict[str, str]]) -> None:
    columns = [c for c in _ORDER if any(c in r for r in rows)]
    if format_ == "xlsx":
        _xlsx(path, columns, rows)
        return
    text = io.StringIO()
    if format_ == "csv":
        writer = csv.writer(text, delimiter=";")
        writer.writerow([_HEADERS[c] for c in columns])
        writer.writerows([r.get(c, "") for c in columns] for r in rows)
    elif format_ == "jsonl":
        for r in rows:
            text.write(json.dumps({_HEADERS[k]: v for k, v in r.items()}) + "\n")
    elif format_ == "json":
        json.dump({"data": [{_HEADERS[k]: v for k, v in r.items()} for r in rows]}, text, indent=1)
    else:
        text.write("fresh uk fullz, tested, DM for more\n\n")
        for k, r in enumerate(rows, start=1):
            text.write(f"{k}) " + " | ".join(r[c] for c in columns if c in r) + "\n")
    path.write_text(text.getvalue(), encoding="utf-8")


def _xlsx(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    from openpyxl import Workbook  # type: ignore[import-untyped]

    book = Workbook(write_only=True)
    sheet = book.create_sheet("leads")
    sheet.append([_HEADERS[c] for c in columns] + ["price"])
    for r in rows:
        # A formula nobody computed: readers that take cached values see an empty cell.
        sheet.append([r.get(c, "") for c in columns] + ["=4.25*1"])
    book.save(path)


# The pieces of make_dump, for benchmarks that write many small dumps from one world.


def customer_values(
    ws: Workspace, wanted: set[int]
) -> tuple[dict[int, dict[str, str]], dict[int, str]]:
    """The wanted customers' values (from the simulator's customer files) and countries."""
    return _values(ws, wanted)


def leaked_record(values: dict[str, str], country: str, rng: np.random.Generator) -> dict[str, str]:
    """One customer's values written the way dumps write them (see make_dump)."""
    return _messy(values, country, rng)


def some_fields(values: dict[str, str], rng: np.random.Generator) -> dict[str, str]:
    """A name and one or two identifying values: a record leaked from somewhere else."""
    return _some_fields(values, rng)


def write_records(out: Path, format_: str, rows: list[dict[str, str]]) -> None:
    """Write records (field name -> value) as a dump in one of FORMATS, whole or not at all."""
    if format_ not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}")
    _write(out, format_, rows)


__all__ = [
    "FORMATS",
    "KINDS",
    "DumpSpec",
    "MadeDump",
    "customer_values",
    "leaked_record",
    "make_dump",
    "some_fields",
    "write_records",
]
