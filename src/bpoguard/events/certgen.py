"""A generator of data in the CMU SEI CERT Insider Threat Test Dataset formats.

It writes what a holder of release r4.2 (or, with ``fmt="r6.2"``, r6.2) would
have in their folder::

    logon.csv device.csv http.csv email.csv file.csv psychometric.csv
    LDAP/2010-01.csv ...             one snapshot of the staff per month
    answers/insiders.csv             dataset,scenario,details,user,start,end
    answers/r4.2-1/r4.2-1-USER.csv   the insider's malicious rows, kind first

Normal staff keep office hours on their own PC, some work late now and then,
a fifth use thumb drives, everyone browses and mails; a few leave each month
and vanish from the next LDAP snapshot. Insiders follow the dataset's
documented scenarios:

1. no removable drive or after-hours work before; then logons after hours,
   a thumb drive, uploads to wikileaks.org; leaves shortly after;
2. browses job websites and writes to a competitor; before leaving, uses a
   thumb drive at a markedly higher rate to take data;
3. a system administrator downloads a keylogger, carries it on a thumb drive
   to his supervisor's PC, next day logs on there with the captured
   credentials and sends an alarming mass e-mail from the supervisor's
   address, then leaves. The rows stay under the insider's user id, on the
   supervisor's PC, ``from`` the supervisor's address.

Dates are the dataset's ``MM/DD/YYYY HH:MM:SS`` with no zone (read as UTC).
Rows are generated a day at a time with numpy (PCG64) and written with
Arrow's CSV writer, so tens of millions of rows stream out in minutes with
bounded memory; the same configuration and seed give the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from faker import Faker
from numpy.typing import NDArray

from bpoguard.errors import InputError

__all__ = [
    "COMPETITOR_DOMAINS",
    "JOB_SITES",
    "KEYLOGGER_SITES",
    "LEAK_SITES",
    "ORG_DOMAIN",
    "CertConfig",
    "CertSummary",
    "generate",
]

FORMATS: Final = ("r4.2", "r6.2")
ORG_DOMAIN: Final = "dtaa.com"
JOB_SITES: Final = (
    "monster.com",
    "careerbuilder.com",
    "indeed.com",
    "simplyhired.com",
    "linkedin.com",
    "jobhuntersbible.com",
    "craigslist.org",
    "hotjobs.yahoo.com",
)
LEAK_SITES: Final = ("wikileaks.org",)
# Invented firms: the simulated company's rivals and the keylogger vendors.
COMPETITOR_DOMAINS: Final = ("lockwood-aerospace.com", "northstar-defense.com")
KEYLOGGER_SITES: Final = ("keystroke-spy.net", "perfect-keylog.com")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_PERSONAL_DOMAINS: Final = ("gmail.com", "yahoo.com", "hotmail.com", "aol.com", "comcast.net")
_PARTNER_DOMAINS: Final = ("harborview-logistics.com", "meridian-supply.com", "atlas-metals.com")
_WEB_DOMAINS: Final = _words(
    "google.com yahoo.com bing.com msn.com cnn.com bbc.co.uk nytimes.com wsj.com "
    "reuters.com espn.com weather.com amazon.com ebay.com wikipedia.org youtube.com "
    "facebook.com twitter.com reddit.com imdb.com craigslist.org about.com ask.com "
    "aol.com foxnews.com usatoday.com washingtonpost.com bloomberg.com forbes.com "
    "nasa.gov nih.gov irs.gov webmd.com mapquest.com expedia.com southwest.com "
    "bestbuy.com walmart.com target.com homedepot.com dell.com hp.com microsoft.com "
    "apple.com adobe.com oracle.com ibm.com cisco.com intel.com stackoverflow.com "
    "sourceforge.net github.com slashdot.org wired.com arstechnica.com cnet.com "
    "engadget.com techcrunch.com zdnet.com nationalgeographic.com"
)
_WORDS: Final = _words(
    "project meeting budget report quarter review design test schedule contract "
    "supplier order invoice delivery engine wing sensor radar flight system software "
    "hardware network server update patch release customer support ticket analysis "
    "market sales forecast price cost revenue growth team manager plan strategy risk "
    "safety quality audit compliance training lunch holiday weekend football baseball "
    "weather travel hotel flight car house garden recipe movie music news election "
    "economy stock bond fund retirement health doctor school college family kids dog "
    "coffee traffic game score season player coach league ticket concert book author "
    "science space moon planet research study data model simulation prototype drawing "
    "specification requirement interface module component assembly inspection parts"
)
_JOB_WORDS: Final = "job career resume salary position opening apply interview hiring benefits"
_LEAK_WORDS: Final = "leak documents secret upload anonymous submission classified disclosure"
_KEYLOG_WORDS: Final = "keylogger keystroke capture stealth monitor password logging download"
_ALARM_WORDS: Final = "urgent layoffs company closing fired security breach lawsuit panic warning"
_MAGIC: Final = {
    "doc": "D0-CF-11-E0-A1-B1-1A-E1",
    "pdf": "25-50-44-46-2D",
    "zip": "50-4B-03-04-14",
    "jpg": "FF-D8-FF-E0",
    "txt": "",
    "exe": "4D-5A-90-00-03",
}
_ALNUM: Final = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
_EPOCH: Final = dt.date(1970, 1, 1)
_DAY: Final = 86_400

# (functional unit, department, roles of its staff); IT first: scenario 3 needs it.
_DEPARTMENTS: Final = (
    ("6 - InformationTechnology", "1 - ITOperations", ("ITAdmin", "ITAdmin", "HelpDesk")),
    ("2 - ResearchAndEngineering", "1 - Engineering", ("ElectricalEngineer", "SoftwareEngineer")),
    ("4 - SalesAndMarketing", "1 - Sales", ("Salesman", "AccountExecutive")),
    ("3 - Manufacturing", "1 - Assembly", ("Technician", "AssemblySupervisor")),
    ("5 - Finance", "1 - Accounting", ("Accountant", "FinancialAnalyst")),
    ("1 - Administration", "2 - HumanResources", ("HRSpecialist", "Recruiter")),
    ("2 - ResearchAndEngineering", "2 - Research", ("Scientist", "Statistician")),
    ("4 - SalesAndMarketing", "2 - Marketing", ("MarketingSpecialist", "Designer")),
    ("1 - Administration", "1 - Security", ("SecurityGuard", "SecurityAnalyst")),
    ("3 - Manufacturing", "2 - Quality", ("QualityInspector", "Technician")),
)

# Columns of each file, per release (NOTES.md, "Detection content").
COLUMNS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "r4.2": {
        "logon": ("id", "date", "user", "pc", "activity"),
        "device": ("id", "date", "user", "pc", "activity"),
        "http": ("id", "date", "user", "pc", "url", "content"),
        "email": (
            "id",
            "date",
            "user",
            "pc",
            "to",
            "cc",
            "bcc",
            "from",
            "size",
            "attachments",
            "content",
        ),
        "file": ("id", "date", "user", "pc", "filename", "content"),
    },
    "r6.2": {
        "logon": ("id", "date", "user", "pc", "activity"),
        "device": ("id", "date", "user", "pc", "file_tree", "activity"),
        "http": ("id", "date", "user", "pc", "url", "activity", "content"),
        "email": (
            "id",
            "date",
            "user",
            "pc",
            "to",
            "cc",
            "bcc",
            "from",
            "activity",
            "size",
            "attachments",
            "content",
        ),
        "file": (
            "id",
            "date",
            "user",
            "pc",
            "filename",
            "activity",
            "to_removable_media",
            "from_removable_media",
            "content",
        ),
    },
}
LDAP_COLUMNS: Final = {
    "r4.2": (
        "employee_name",
        "user_id",
        "email",
        "role",
        "business_unit",
        "functional_unit",
        "department",
        "team",
        "supervisor",
    ),
    "r6.2": (
        "employee_name",
        "user_id",
        "email",
        "role",
        "projects",
        "business_unit",
        "functional_unit",
        "department",
        "team",
        "supervisor",
    ),
}
KINDS: Final = ("logon", "device", "http", "email", "file")
_INT_COLUMNS: Final = frozenset({"ts", "size", "attachment_count"})
_BOOL_COLUMNS: Final = frozenset({"mal"})

_Ints = NDArray[np.int64]
_Floats = NDArray[np.float64]
_Bools = NDArray[np.bool_]


@dataclass(frozen=True)
class CertConfig:
    """What to generate: staff, days from ``start``, insiders, release format."""

    users: int = 200
    days: int = 120
    seed: int = 1
    insiders: int = 3
    start: dt.date = dt.date(2010, 1, 4)
    fmt: str = "r4.2"

    def check(self) -> None:
        """Raise InputError for a configuration the generator cannot honour."""
        if self.fmt not in FORMATS:
            raise InputError(f"--format {self.fmt!r} is not one of {', '.join(FORMATS)}")
        if not 20 <= self.users <= 50_000:
            raise InputError(f"--users {self.users} must be between 20 and 50000")
        if not 30 <= self.days <= 2_000:
            raise InputError(f"--days {self.days} must be between 30 and 2000")
        if not 0 <= self.insiders <= self.users // 10:
            raise InputError(f"--insiders {self.insiders} must be between 0 and a tenth of --users")


@dataclass
class CertSummary:
    """What :func:`generate` wrote."""

    out: str
    format: str
    users: int
    days: int
    seed: int
    events: dict[str, int]
    total_events: int
    leavers: int
    insiders: list[dict[str, object]]
    files: list[str] = field(default_factory=list)


@dataclass
class _Staff:
    names: list[str]
    ids: list[str]
    emails: list[str]
    roles: list[str]
    units: list[str]
    departments: list[str]
    teams: list[str]
    supervisor: list[int]  # index, -1 for the top
    projects: list[str]
    team_start: _Ints
    team_size: _Ints
    pc: list[str]


@dataclass
class _Habits:
    start_hour: _Floats
    length: _Floats
    after_hours: _Floats  # chance of an evening session on a working day
    usb: _Floats  # chance of a thumb-drive day
    http: _Floats  # visits per working day
    email: _Floats
    job_browse: _Floats  # chance of a job-site visit on a day
    last_day: _Ints  # last day index at work (days - 1: stays)


@dataclass
class _Insider:
    user: int
    scenario: int
    first: int  # first day index of the malicious activity
    last: int
    rows: list[str] = field(default_factory=list)
    start_ts: int | None = None
    end_ts: int | None = None


def _day_epoch(day: dt.date) -> int:
    return (day - _EPOCH).days * _DAY


class _Frame:
    """Rows of one file for one day, gathered as column chunks."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.chunks: dict[str, list[pa.Array]] = {n: [] for n in names}

    def add(self, **columns: object) -> None:
        n = len(columns["ts"])  # type: ignore[arg-type]
        for name in self.names:
            value = columns.get(name)
            self.chunks[name].append(_as_array(name, value, n))

    def table(self) -> pa.Table | None:
        if not self.chunks["ts"]:
            return None
        arrays = [pa.concat_arrays(self.chunks[n]) for n in self.names]
        table = pa.Table.from_arrays(arrays, names=list(self.names))
        return table.take(pc.sort_indices(table, [("ts", "ascending")]))


def _type_of(name: str) -> pa.DataType:
    if name in _INT_COLUMNS:
        return pa.int64()
    if name in _BOOL_COLUMNS:
        return pa.bool_()
    return pa.string()


def _as_array(name: str, value: object, n: int) -> pa.Array:
    kind = _type_of(name)
    if value is None:
        if name == "mal":
            return pa.array(np.zeros(n, dtype=bool))
        return pa.nulls(n, kind) if kind != pa.string() else pa.array([""] * n, pa.string())
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, pa.Array):
        return value.cast(kind) if value.type != kind else value
    if isinstance(value, str | bool | int):
        return pa.array([value] * n, kind)
    return pa.array(value, kind)


_FRAME_COLUMNS: Final = {
    "logon": ("ts", "user", "pc", "activity", "mal"),
    "device": ("ts", "user", "pc", "file_tree", "activity", "mal"),
    "http": ("ts", "user", "pc", "url", "activity", "content", "mal"),
    "email": (
        "ts",
        "user",
        "pc",
        "to",
        "cc",
        "bcc",
        "from",
        "activity",
        "size",
        "attachments",
        "attachment_count",
        "content",
        "mal",
    ),
    "file": (
        "ts",
        "user",
        "pc",
        "filename",
        "activity",
        "to_removable_media",
        "from_removable_media",
        "content",
        "mal",
    ),
}


def generate(
    out: Path, config: CertConfig, progress: Callable[[str, int, int], None] | None = None
) -> CertSummary:
    """Write a CERT-format dataset into ``out`` (created; must be empty or absent)."""
    config.check()
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} is not empty; give a new folder for the generated data")
    out.mkdir(parents=True, exist_ok=True)
    return _Generator(out, config, progress or (lambda stage, done, total: None)).run()


class _Generator:
    def __init__(
        self, out: Path, config: CertConfig, progress: Callable[[str, int, int], None]
    ) -> None:
        self.out = out
        self.config = config
        self.progress = progress
        self.rng = np.random.default_rng(config.seed)
        self.r6 = config.fmt == "r6.2"
        self.staff = self._staff()
        self.habits = self._habits()
        self.insiders = self._insiders()
        self._pools()
        self.counts = dict.fromkeys(KINDS, 0)

    # --- people ---------------------------------------------------------------------------

    def _staff(self) -> _Staff:
        n = self.config.users
        faker = Faker("en_US")
        faker.seed_instance(self.config.seed)
        firsts = [faker.first_name() for _ in range(400)]
        lasts = [faker.last_name() for _ in range(400)]
        names: list[str] = []
        ids: list[str] = []
        seen_names: set[str] = set()
        seen_ids: set[str] = set()
        while len(names) < n:
            f, m, last = (
                firsts[self.rng.integers(400)],
                firsts[self.rng.integers(400)],
                lasts[self.rng.integers(400)],
            )
            name = f"{f} {m} {last}"
            if name in seen_names:
                continue
            uid = f"{f[0]}{m[0]}{last[0]}{self.rng.integers(10_000):04d}".upper()
            if uid in seen_ids:
                continue
            seen_names.add(name)
            seen_ids.add(uid)
            names.append(name)
            ids.append(uid)
        emails = [name.replace(" ", ".") + "@" + ORG_DOMAIN for name in names]
        depts = _DEPARTMENTS[: max(2, min(len(_DEPARTMENTS), n // 25))]
        roles = ["President"] + ["Director"] * len(depts)
        units = [depts[0][0]] + [d[0] for d in depts]
        departments = [depts[0][1]] + [d[1] for d in depts]
        teams = ["1 - Executive"] * (1 + len(depts))
        supervisor = [-1] + [0] * len(depts)
        team_start = [0] * (1 + len(depts))
        team_size = [1 + len(depts)] * (1 + len(depts))
        rest = n - len(roles)
        per_dept = [
            rest // len(depts) + (1 if i < rest % len(depts) else 0) for i in range(len(depts))
        ]
        for d, (unit, dept, dept_roles) in enumerate(depts):
            members = per_dept[d]
            sizes = _split(members, max(1, math.ceil(members / 10)))
            for t, size in enumerate(sizes):
                lead = len(roles)
                for k in range(size):
                    roles.append("Manager" if k == 0 else dept_roles[(k - 1) % len(dept_roles)])
                    units.append(unit)
                    departments.append(dept)
                    teams.append(f"{t + 1} - {dept.split(' - ')[1]}{t + 1}")
                    supervisor.append(1 + d if k == 0 else lead)
                    team_start.append(lead)
                    team_size.append(size)
        pcs = self.rng.choice(max(10_000, 2 * n), size=n, replace=False)
        width = max(4, len(str(max(10_000, 2 * n) - 1)))
        projects = [
            ";".join(f"Project {p}" for p in sorted(set(self.rng.integers(1, 40, size=2).tolist())))
            for _ in range(n)
        ]
        return _Staff(
            names=names,
            ids=ids,
            emails=emails,
            roles=roles,
            units=units,
            departments=departments,
            teams=teams,
            supervisor=supervisor,
            projects=projects,
            team_start=np.array(team_start, dtype=np.int64),
            team_size=np.array(team_size, dtype=np.int64),
            pc=[f"PC-{p:0{width}d}" for p in pcs.tolist()],
        )

    def _habits(self) -> _Habits:
        n, rng = self.config.users, self.rng
        late = rng.random(n) < 0.15
        usb = rng.random(n) < 0.2
        return _Habits(
            start_hour=np.clip(rng.normal(8.0, 0.6, n), 6.5, 10.0),
            length=np.clip(rng.normal(9.0, 0.5, n), 7.5, 10.5),
            after_hours=np.where(late, rng.uniform(0.03, 0.12, n), 0.0),
            usb=np.where(usb, rng.uniform(0.1, 0.5, n), 0.0),
            http=rng.lognormal(math.log(55), 0.5, n),
            email=rng.lognormal(math.log(6), 0.5, n),
            job_browse=np.where(rng.random(n) < 0.04, rng.uniform(0.02, 0.08, n), 0.0),
            last_day=np.full(n, self.config.days - 1, dtype=np.int64),
        )

    def _insiders(self) -> list[_Insider]:
        cfg, rng, staff, habits = self.config, self.rng, self.staff, self.habits
        protected = {0} | {i for i, r in enumerate(staff.roles) if r in ("Director", "Manager")}
        pool = [i for i in range(cfg.users) if i not in protected]
        admins = [i for i in pool if staff.roles[i] == "ITAdmin"]
        chosen: list[_Insider] = []
        taken: set[int] = set()
        for k in range(cfg.insiders):
            scenario = 1 + k % 3
            candidates = [i for i in (admins if scenario == 3 else pool) if i not in taken]
            if not candidates:
                raise InputError(f"not enough staff for {cfg.insiders} insiders; give more --users")
            user = int(candidates[int(rng.integers(len(candidates)))])
            taken.add(user)
            first, last, leave = self._window(scenario)
            chosen.append(_Insider(user=user, scenario=scenario, first=first, last=last))
            habits.last_day[user] = leave
            if scenario in (1, 3):  # no removable drive, no late work before
                habits.usb[user] = 0.0
                habits.after_hours[user] = 0.0
            else:  # a rare thumb-drive user, so the surge stands out from a history
                habits.usb[user] = 0.04
            protected.add(staff.supervisor[user])
        self._attrition(protected | taken)
        return chosen

    def _window(self, scenario: int) -> tuple[int, int, int]:
        days, rng = self.config.days, self.rng
        length = {
            1: max(3, min(14, days // 12)),
            2: max(7, min(56, days // 4)),
            3: 2,
        }[scenario]
        earliest = max(10, int(days * 0.35))
        latest = days - length - 6
        first = int(rng.integers(earliest, max(earliest + 1, latest)))
        last = first + length - 1
        leave = last + (1 if scenario == 3 else int(rng.integers(1, 5)))
        return first, last, min(leave, days - 1)

    def _attrition(self, keep: set[int]) -> None:
        # About 1.5% of staff leave a month, on days spread over the period.
        cfg, rng = self.config, self.rng
        months = cfg.days / 30
        count = min(int(cfg.users * 0.015 * months), cfg.users // 5)
        pool = np.array([i for i in range(cfg.users) if i not in keep], dtype=np.int64)
        leavers = rng.choice(pool, size=min(count, len(pool)), replace=False)
        days = rng.integers(int(cfg.days * 0.2), cfg.days - 1, size=len(leavers))
        self.habits.last_day[leavers] = days
        # Honest leavers often look around before going: a lighter job search.
        browsing = leavers[rng.random(len(leavers)) < 0.3]
        self.habits.job_browse[browsing] = np.maximum(self.habits.job_browse[browsing], 0.15)

    # --- pools of strings -------------------------------------------------------------------

    def _pools(self) -> None:
        rng = self.rng
        words = np.array(_WORDS)

        def phrases(count: int, low: int, high: int) -> list[str]:
            sizes = rng.integers(low, high, size=count)
            return [" ".join(words[rng.integers(len(words), size=s)]) for s in sizes]

        self.content = pa.array(phrases(2048, 6, 14))
        paths = phrases(4000, 1, 3)
        domains = rng.integers(len(_WEB_DOMAINS), size=4000)
        self.urls = pa.array(
            [
                f"http://{_WEB_DOMAINS[d]}/{p.replace(' ', '/')}{rng.integers(1, 999)}.html"
                for d, p in zip(domains.tolist(), paths, strict=True)
            ]
        )
        self.job_urls = [
            f"http://www.{site}/{p.replace(' ', '_')}"
            for site, p in zip(
                np.array(JOB_SITES)[rng.integers(len(JOB_SITES), size=200)].tolist(),
                phrases(200, 1, 3),
                strict=True,
            )
        ]
        externals = [
            f"{n.split(' ')[0]}.{n.split(' ')[-1]}{rng.integers(1, 99)}@{d}"
            for n, d in zip(
                self.staff.names[: min(300, len(self.staff.names))] * 4,
                np.array(_PERSONAL_DOMAINS + _PARTNER_DOMAINS)[
                    rng.integers(8, size=4 * min(300, len(self.staff.names)))
                ].tolist(),
                strict=True,
            )
        ]
        self.externals = pa.array(externals)
        self.emails = pa.array(self.staff.emails)
        self.users = pa.array(self.staff.ids)
        self.pcs = pa.array(self.staff.pc)
        exts = list(_MAGIC)
        ext_idx = rng.integers(len(exts), size=4096)
        stems = [_random_token(rng, 8) for _ in range(4096)]
        dirs = [_random_token(rng, 8) for _ in range(4096)]
        self.removable_files = pa.array(
            [
                f"R:\\{d}\\{s}.{exts[e]}" if self.r6 else f"{s}.{exts[e]}"
                for d, s, e in zip(dirs, stems, ext_idx.tolist(), strict=True)
            ]
        )
        self.local_files = pa.array(
            [
                f"C:\\{d}\\{s}.{exts[e]}"
                for d, s, e in zip(reversed(dirs), stems, ext_idx.tolist(), strict=True)
            ]
        )
        body = phrases(4096, 4, 10)
        self.file_content = pa.array(
            [
                (_MAGIC[exts[e]] + " " + b).strip()
                for e, b in zip(ext_idx.tolist(), body, strict=True)
            ]
        )
        self.attachment_names = pa.array(
            [
                f"C:\\{d}\\{s}.{exts[e]}({rng.integers(2_000, 900_000)})"
                for d, s, e in zip(dirs[:1024], stems[:1024], ext_idx[:1024].tolist(), strict=True)
            ]
        )
        self.file_trees = pa.array(
            [
                ";".join(
                    ["R:\\"] + [f"R:\\{_random_token(rng, 8)}" for _ in range(rng.integers(1, 4))]
                )
                for _ in range(256)
            ]
        )

    # --- the run ----------------------------------------------------------------------------

    def run(self) -> CertSummary:
        cfg = self.config
        writers = {
            kind: _CsvOut(self.out / f"{kind}.csv", COLUMNS[cfg.fmt][kind]) for kind in KINDS
        }
        try:
            for k in range(cfg.days):
                frames = {kind: _Frame(_FRAME_COLUMNS[kind]) for kind in KINDS}
                self._normal_day(k, frames)
                self._insider_day(k, frames)
                for kind in KINDS:
                    table = frames[kind].table()
                    if table is None:
                        continue
                    self._emit(kind, table, writers[kind])
                self.progress("generate", k + 1, cfg.days)
        finally:
            for writer in writers.values():
                writer.close()
        files = [f"{kind}.csv" for kind in KINDS]
        files += self._ldap()
        files.append(self._psychometric())
        files += self._answers()
        return CertSummary(
            out=str(self.out),
            format=cfg.fmt,
            users=cfg.users,
            days=cfg.days,
            seed=cfg.seed,
            events=dict(self.counts),
            total_events=sum(self.counts.values()),
            leavers=int((self.habits.last_day < cfg.days - 1).sum()),
            insiders=[
                {
                    "user": self.staff.ids[i.user],
                    "scenario": i.scenario,
                    "start": _format_one(i.start_ts),
                    "end": _format_one(i.end_ts),
                }
                for i in self.insiders
            ],
            files=sorted(files),
        )

    def _emit(self, kind: str, table: pa.Table, writer: _CsvOut) -> None:
        n = table.num_rows
        ts = table.column("ts").to_numpy()
        columns: dict[str, pa.Array] = {
            "id": _ids(self.rng, n),
            "date": _format_dates(ts),
        }
        if kind == "email" and not self.r6:
            columns["attachments"] = pc.cast(table.column("attachment_count"), pa.string())
        if kind == "file" and not self.r6:
            # r4.2 records only copies to removable media.
            keep = pc.equal(table.column("to_removable_media"), "True")
            table = table.filter(keep)
            columns = {k: v.filter(keep) for k, v in columns.items()}
            n = table.num_rows
        names = COLUMNS[self.config.fmt][kind]
        arrays = [columns[c] if c in columns else table.column(c) for c in names]
        out = pa.Table.from_arrays(arrays, names=list(names))
        writer.write(out)
        self.counts[kind] += n
        mal = table.column("mal")
        if pc.any(mal).as_py():
            self._record_malicious(kind, out.filter(mal), table.filter(mal))

    def _record_malicious(self, kind: str, rows: pa.Table, source: pa.Table) -> None:
        by_user = {self.staff.ids[i.user]: i for i in self.insiders}
        ts = source.column("ts").to_pylist()
        for row, when in zip(rows.to_pylist(), ts, strict=True):
            insider = by_user[row["user"]]
            insider.rows.append(
                kind + "," + ",".join("" if v is None else str(v) for v in row.values())
            )
            insider.start_ts = when if insider.start_ts is None else min(insider.start_ts, when)
            insider.end_ts = when if insider.end_ts is None else max(insider.end_ts, when)

    # --- normal behaviour --------------------------------------------------------------------

    def _normal_day(self, k: int, frames: dict[str, _Frame]) -> None:
        cfg, rng, habits = self.config, self.rng, self.habits
        n = cfg.users
        day = cfg.start + dt.timedelta(days=k)
        weekday = day.weekday() < 5
        at_work = (habits.last_day >= k) & (rng.random(n) > 0.03)
        at_work &= rng.random(n) < (1.0 if weekday else 0.02)
        users = np.flatnonzero(at_work)
        if len(users) == 0:
            return
        epoch = _day_epoch(day)
        start = epoch + (
            (habits.start_hour[users] + rng.normal(0, 0.25, len(users))) * 3600
        ).astype(np.int64)
        end = start + ((habits.length[users] + rng.normal(0, 0.4, len(users))) * 3600).astype(
            np.int64
        )
        # One PC in twenty days is someone else's desk (shared rooms, hot-desking).
        pc_owner = np.where(rng.random(len(users)) < 0.05, rng.integers(n, size=len(users)), users)
        self._logons(users, pc_owner, start, end, frames["logon"])
        self._web(users, pc_owner, start, end, habits.http[users], frames["http"])
        self._mail(users, pc_owner, start, end, habits.email[users], frames["email"])
        self._jobs(users, pc_owner, start, end, frames["http"])
        late = rng.random(len(users)) < habits.after_hours[users]
        if late.any():
            lu = users[late]
            ls = epoch + (rng.uniform(19.5, 23.0, len(lu)) * 3600).astype(np.int64)
            le = ls + rng.integers(20 * 60, 90 * 60, len(lu))
            own = lu
            self._logons(lu, own, ls, le, frames["logon"], unlock=False)
            self._web(lu, own, ls, le, habits.http[lu] * 0.15, frames["http"])
            self._mail(lu, own, ls, le, habits.email[lu] * 0.1, frames["email"])
        usb = rng.random(len(users)) < habits.usb[users]
        if usb.any():
            self._thumb_drive(users[usb], pc_owner[usb], start[usb], end[usb], frames, 1.5)
        if self.r6:
            self._local_files(users, pc_owner, start, end, frames["file"])

    def _logons(
        self,
        users: _Ints,
        pcs: _Ints,
        start: _Ints,
        end: _Ints,
        frame: _Frame,
        unlock: bool = True,
    ) -> None:
        m = len(users)
        frame.add(ts=start, user=self.users.take(users), pc=self.pcs.take(pcs), activity="Logon")
        frame.add(ts=end, user=self.users.take(users), pc=self.pcs.take(pcs), activity="Logoff")
        if unlock:
            again = self.rng.random(m) < 0.15
            if again.any():
                u = users[again]
                ts = start[again] + (self.rng.random(len(u)) * (end[again] - start[again])).astype(
                    np.int64
                )
                frame.add(
                    ts=ts, user=self.users.take(u), pc=self.pcs.take(pcs[again]), activity="Logon"
                )

    def _spread(
        self, users: _Ints, pcs: _Ints, start: _Ints, end: _Ints, rate: _Floats
    ) -> tuple[_Ints, _Ints, _Ints]:
        counts = self.rng.poisson(rate)
        u = np.repeat(users, counts)
        p = np.repeat(pcs, counts)
        s = np.repeat(start, counts)
        e = np.repeat(end, counts)
        ts = s + (self.rng.random(len(u)) * (e - s)).astype(np.int64)
        return u, p, ts

    def _web(
        self, users: _Ints, pcs: _Ints, start: _Ints, end: _Ints, rate: _Floats, frame: _Frame
    ) -> None:
        u, p, ts = self._spread(users, pcs, start, end, rate)
        if len(u) == 0:
            return
        rng = self.rng
        pool = len(self.urls)
        # Each person has favourite sites: a skewed draw shifted per person.
        idx = ((rng.random(len(u)) ** 2.5) * pool).astype(np.int64) + u * 7919
        r = rng.random(len(u))
        activity = np.where(r < 0.96, "WWW Visit", np.where(r < 0.99, "WWW Download", "WWW Upload"))
        frame.add(
            ts=ts,
            user=self.users.take(u),
            pc=self.pcs.take(p),
            url=self.urls.take(idx % pool),
            activity=activity,
            content=self.content.take(rng.integers(len(self.content), size=len(u))),
        )

    def _jobs(self, users: _Ints, pcs: _Ints, start: _Ints, end: _Ints, frame: _Frame) -> None:
        browsing = self.rng.random(len(users)) < self.habits.job_browse[users]
        if not browsing.any():
            return
        rate = np.full(int(browsing.sum()), 2.0)
        u, p, ts = self._spread(
            users[browsing], pcs[browsing], start[browsing], end[browsing], rate
        )
        self._add_http(frame, u, p, ts, self.job_urls, "WWW Visit", _JOB_WORDS, mal=False)

    def _add_http(
        self,
        frame: _Frame,
        u: _Ints,
        p: _Ints,
        ts: _Ints,
        urls: list[str],
        activity: str,
        words: str,
        mal: bool,
    ) -> None:
        if len(u) == 0:
            return
        picks = self.rng.integers(len(urls), size=len(u))
        frame.add(
            ts=ts,
            user=self.users.take(u),
            pc=self.pcs.take(p),
            url=[urls[i] for i in picks.tolist()],
            activity=activity,
            content=words,
            mal=mal,
        )

    def _recipient(self, u: _Ints) -> pa.Array:
        rng = self.rng
        m = len(u)
        r = rng.random(m)
        mate = self.staff.team_start[u] + rng.integers(0, 1 << 30, m) % self.staff.team_size[u]
        anyone = rng.integers(self.config.users, size=m)
        internal = self.emails.take(np.where(r < 0.7, mate, anyone))
        external = self.externals.take(rng.integers(len(self.externals), size=m))
        return pc.if_else(pa.array(r < 0.85), internal, external)

    def _mail(
        self, users: _Ints, pcs: _Ints, start: _Ints, end: _Ints, rate: _Floats, frame: _Frame
    ) -> None:
        u, p, ts = self._spread(users, pcs, start, end, rate)
        m = len(u)
        if m == 0:
            return
        rng = self.rng
        n_to = 1 + (rng.random(m) < 0.35) + (rng.random(m) < 0.1)
        to_col = _join_prefix([self._recipient(u) for _ in range(3)], n_to)
        cc = pc.if_else(pa.array(rng.random(m) < 0.2), self._recipient(u), "")
        bcc = pc.if_else(pa.array(rng.random(m) < 0.03), self._recipient(u), "")
        own = self.emails.take(u)
        view = rng.random(m) < (0.4 if self.r6 else 0.0)
        other = self._recipient(u)
        sender = pc.if_else(pa.array(view), other, own)
        to_col = pc.if_else(pa.array(view), own, to_col)
        count = np.where(rng.random(m) < 0.75, 0, rng.integers(1, 4, m))
        size = (
            rng.lognormal(math.log(25_000), 0.6, m)
            + count * rng.lognormal(math.log(150_000), 1.0, m)
        ).astype(np.int64)
        frame.add(
            ts=ts,
            user=self.users.take(u),
            pc=self.pcs.take(p),
            to=to_col,
            cc=cc,
            bcc=bcc,
            **{"from": sender},
            activity=np.where(view, "View", "Send"),
            size=size,
            attachments=self._attachment_list(count),
            attachment_count=count,
            content=self.content.take(rng.integers(len(self.content), size=m)),
        )

    def _attachment_list(self, count: _Ints) -> pa.Array:
        m = len(count)
        slots = [
            self.attachment_names.take(self.rng.integers(len(self.attachment_names), size=m))
            for _ in range(3)
        ]
        return _join_prefix(slots, count)

    def _thumb_drive(
        self,
        users: _Ints,
        pcs: _Ints,
        start: _Ints,
        end: _Ints,
        frames: dict[str, _Frame],
        files_per_session: float,
        sessions: float = 0.7,
        mal: bool = False,
    ) -> None:
        rng = self.rng
        counts = 1 + rng.poisson(sessions, len(users))
        u = np.repeat(users, counts)
        p = np.repeat(pcs, counts)
        s = np.repeat(start, counts)
        e = np.repeat(end, counts)
        on = s + (rng.random(len(u)) * np.maximum(e - s - 600, 1)).astype(np.int64)
        off = np.minimum(on + rng.integers(120, 3600, len(u)), np.maximum(e, on + 60))
        names, pc_names = self.users.take(u), self.pcs.take(p)
        trees = self.file_trees.take(rng.integers(len(self.file_trees), size=len(u)))
        frames["device"].add(
            ts=on, user=names, pc=pc_names, file_tree=trees, activity="Connect", mal=mal
        )
        frames["device"].add(ts=off, user=names, pc=pc_names, activity="Disconnect", mal=mal)
        nfiles = rng.poisson(files_per_session, len(u))
        fu = np.repeat(u, nfiles)
        fp = np.repeat(p, nfiles)
        fts = np.repeat(on, nfiles) + (rng.random(len(fu)) * np.repeat(off - on, nfiles)).astype(
            np.int64
        )
        if len(fu) == 0:
            return
        m = len(fu)
        r = rng.random(m)
        # Most rows are copies onto the drive; r6.2 also shows reads from it.
        to_drive = r < 0.8
        pick = rng.integers(len(self.removable_files), size=m)
        frames["file"].add(
            ts=fts,
            user=self.users.take(fu),
            pc=self.pcs.take(fp),
            filename=pc.if_else(
                pa.array(to_drive), self.removable_files.take(pick), self.local_files.take(pick)
            )
            if self.r6
            else self.removable_files.take(pick),
            activity=np.where(to_drive, np.where(r < 0.6, "File Copy", "File Write"), "File Open"),
            to_removable_media=np.where(to_drive, "True", "False"),
            from_removable_media=np.where(to_drive, "False", "True"),
            content=self.file_content.take(pick),
            mal=mal,
        )

    def _local_files(
        self, users: _Ints, pcs: _Ints, start: _Ints, end: _Ints, frame: _Frame
    ) -> None:
        u, p, ts = self._spread(users, pcs, start, end, np.full(len(users), 2.0))
        m = len(u)
        if m == 0:
            return
        pick = self.rng.integers(len(self.local_files), size=m)
        r = self.rng.random(m)
        frame.add(
            ts=ts,
            user=self.users.take(u),
            pc=self.pcs.take(p),
            filename=self.local_files.take(pick),
            activity=np.where(
                r < 0.8, "File Open", np.where(r < 0.95, "File Write", "File Delete")
            ),
            to_removable_media="False",
            from_removable_media="False",
            content=self.file_content.take(pick),
        )

    # --- insiders ---------------------------------------------------------------------------

    def _insider_day(self, k: int, frames: dict[str, _Frame]) -> None:
        day = self.config.start + dt.timedelta(days=k)
        for insider in self.insiders:
            if insider.first <= k <= insider.last:
                act = {1: self._scenario1, 2: self._scenario2, 3: self._scenario3}[insider.scenario]
                act(insider, k, day, frames)

    def _own(self, user: int) -> tuple[_Ints, _Ints]:
        one = np.array([user], dtype=np.int64)
        return one, one

    def _scenario1(
        self, insider: _Insider, k: int, day: dt.date, frames: dict[str, _Frame]
    ) -> None:
        rng = self.rng
        if k != insider.first and rng.random() < 0.25:
            return
        u, p = self._own(insider.user)
        epoch = _day_epoch(day)
        on = np.array([epoch + int(rng.uniform(20.5, 23.5) * 3600)], dtype=np.int64)
        off = on + int(rng.integers(40 * 60, 120 * 60))
        frames["logon"].add(
            ts=on, user=self.users.take(u), pc=self.pcs.take(p), activity="Logon", mal=True
        )
        frames["logon"].add(
            ts=off, user=self.users.take(u), pc=self.pcs.take(p), activity="Logoff", mal=True
        )
        self._thumb_drive(
            u, p, on + 120, off - 120, frames, files_per_session=6.0, sessions=0.3, mal=True
        )
        uploads = int(rng.integers(1, 4))
        ts = np.sort(on + 300 + rng.integers(0, max(int(off[0] - on[0]) - 600, 1), uploads))
        urls = [f"http://{LEAK_SITES[0]}/submit/{_random_token(rng, 6).lower()}" for _ in range(4)]
        self._add_http(
            frames["http"],
            np.repeat(u, uploads),
            np.repeat(p, uploads),
            ts,
            urls,
            "WWW Upload",
            _LEAK_WORDS,
            mal=True,
        )

    def _scenario2(
        self, insider: _Insider, k: int, day: dt.date, frames: dict[str, _Frame]
    ) -> None:
        rng = self.rng
        if day.weekday() >= 5:
            return
        u, p = self._own(insider.user)
        epoch = _day_epoch(day)
        start = np.array([epoch + int(self.habits.start_hour[insider.user] * 3600)], dtype=np.int64)
        end = start + int(self.habits.length[insider.user] * 3600)
        if rng.random() < 0.7:
            n = int(rng.integers(2, 9))
            ts = np.sort(start + rng.integers(0, int(end[0] - start[0]), n))
            self._add_http(
                frames["http"],
                np.repeat(u, n),
                np.repeat(p, n),
                ts,
                self.job_urls,
                "WWW Visit",
                _JOB_WORDS,
                mal=True,
            )
        if rng.random() < 0.25 or k == insider.first:
            ts = start + rng.integers(0, int(end[0] - start[0]))
            recipient = (
                f"recruiting@{COMPETITOR_DOMAINS[int(rng.integers(len(COMPETITOR_DOMAINS)))]}"
            )
            frames["email"].add(
                ts=ts,
                user=self.users.take(u),
                pc=self.pcs.take(p),
                to=[recipient],
                cc="",
                bcc="",
                **{"from": self.emails.take(u)},
                activity="Send",
                size=[int(rng.integers(80_000, 400_000))],
                attachments=[
                    f"C:\\{_random_token(rng, 8)}\\resume.doc({int(rng.integers(40_000, 200_000))})"
                ],
                attachment_count=[1],
                content=_JOB_WORDS,
                mal=True,
            )
        surge_from = insider.last - max(3, (insider.last - insider.first) // 3)
        if k >= surge_from:
            self._thumb_drive(
                u, p, start, end, frames, files_per_session=12.0, sessions=2.5, mal=True
            )

    def _scenario3(
        self, insider: _Insider, k: int, day: dt.date, frames: dict[str, _Frame]
    ) -> None:
        rng = self.rng
        u, own_pc = self._own(insider.user)
        boss = self.staff.supervisor[insider.user]
        boss_pc = np.array([boss], dtype=np.int64)
        epoch = _day_epoch(day)
        if k == insider.first:
            ts = np.array([epoch + int(rng.uniform(10, 15) * 3600)], dtype=np.int64)
            site = KEYLOGGER_SITES[int(rng.integers(len(KEYLOGGER_SITES)))]
            urls = [f"http://www.{site}/download/keylogger_setup.exe"]
            self._add_http(
                frames["http"], u, own_pc, ts, urls, "WWW Download", _KEYLOG_WORDS, mal=True
            )
            # After hours, at the supervisor's desk, from the thumb drive.
            on = np.array([epoch + int(rng.uniform(19.0, 21.0) * 3600)], dtype=np.int64)
            off = on + int(rng.integers(10 * 60, 30 * 60))
            self._visit(frames, u, boss_pc, on, off, with_drive=True)
            return
        on = np.array([epoch + int(rng.uniform(19.5, 22.0) * 3600)], dtype=np.int64)
        off = on + int(rng.integers(10 * 60, 25 * 60))
        self._visit(frames, u, boss_pc, on, off, with_drive=False)
        everyone = rng.choice(
            self.config.users,
            size=min(self.config.users, int(rng.integers(40, 120))),
            replace=False,
        )
        frames["email"].add(
            ts=on + 300,
            user=self.users.take(u),
            pc=self.pcs.take(boss_pc),
            to=[";".join(self.staff.emails[i] for i in sorted(everyone.tolist()))],
            cc="",
            bcc="",
            **{"from": [self.staff.emails[boss]]},
            activity="Send",
            size=[int(rng.integers(20_000, 60_000))],
            attachments="",
            attachment_count=[0],
            content=_ALARM_WORDS,
            mal=True,
        )

    def _visit(
        self,
        frames: dict[str, _Frame],
        u: _Ints,
        pc_of: _Ints,
        on: _Ints,
        off: _Ints,
        with_drive: bool,
    ) -> None:
        user, pc_name = self.users.take(u), self.pcs.take(pc_of)
        frames["logon"].add(ts=on, user=user, pc=pc_name, activity="Logon", mal=True)
        frames["logon"].add(ts=off, user=user, pc=pc_name, activity="Logoff", mal=True)
        if not with_drive:
            return
        frames["device"].add(
            ts=on + 60,
            user=user,
            pc=pc_name,
            file_tree="R:\\;R:\\tools",
            activity="Connect",
            mal=True,
        )
        frames["device"].add(ts=off - 60, user=user, pc=pc_name, activity="Disconnect", mal=True)
        frames["file"].add(
            ts=on + 120,
            user=user,
            pc=pc_name,
            filename="R:\\tools\\keylogger_setup.exe" if self.r6 else "keylogger_setup.exe",
            activity="File Open",
            # r4.2 lists only copies to a drive; r6.2 shows this one as read from it.
            to_removable_media="False" if self.r6 else "True",
            from_removable_media="True",
            content=_MAGIC["exe"] + " " + _KEYLOG_WORDS,
            mal=True,
        )

    # --- the other files -----------------------------------------------------------------------

    def _ldap(self) -> list[str]:
        cfg, staff = self.config, self.staff
        folder = self.out / "LDAP"
        folder.mkdir()
        columns = LDAP_COLUMNS[cfg.fmt]
        files = []
        month = dt.date(cfg.start.year, cfg.start.month, 1)
        last = cfg.start + dt.timedelta(days=cfg.days - 1)
        while month <= last:
            # Staff still at work on the first day of the month, or joining during it.
            first_k = max(0, (month - cfg.start).days)
            name = f"{month:%Y-%m}.csv"
            with (folder / name).open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(columns)
                for i in range(cfg.users):
                    if self.habits.last_day[i] < first_k:
                        continue
                    boss = staff.supervisor[i]
                    row = {
                        "employee_name": staff.names[i],
                        "user_id": staff.ids[i],
                        "email": staff.emails[i],
                        "role": staff.roles[i],
                        "projects": staff.projects[i],
                        "business_unit": "1",
                        "functional_unit": staff.units[i],
                        "department": staff.departments[i],
                        "team": staff.teams[i],
                        "supervisor": staff.names[boss] if boss >= 0 else "",
                    }
                    writer.writerow([row[c] for c in columns])
            files.append(f"LDAP/{name}")
            month = (month + dt.timedelta(days=32)).replace(day=1)
        return files

    def _psychometric(self) -> str:
        traits = self.rng.integers(10, 51, size=(self.config.users, 5))
        with (self.out / "psychometric.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(("employee_name", "user_id", "O", "C", "E", "A", "N"))
            for i in range(self.config.users):
                writer.writerow((self.staff.names[i], self.staff.ids[i], *traits[i].tolist()))
        return "psychometric.csv"

    def _answers(self) -> list[str]:
        release = self.config.fmt
        folder = self.out / "answers"
        folder.mkdir()
        files = []
        with (folder / "insiders.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(("dataset", "scenario", "details", "user", "start", "end"))
            for insider in sorted(self.insiders, key=lambda i: (i.scenario, i.user)):
                uid = self.staff.ids[insider.user]
                details = f"{release}-{insider.scenario}-{uid}.csv"
                writer.writerow(
                    (
                        release[1:],
                        insider.scenario,
                        details,
                        uid,
                        _format_one(insider.start_ts),
                        _format_one(insider.end_ts),
                    )
                )
                sub = folder / f"{release}-{insider.scenario}"
                sub.mkdir(exist_ok=True)
                rows = sorted(insider.rows, key=lambda line: _sort_key(line))
                (sub / details).write_text("".join(r + "\n" for r in rows), encoding="utf-8")
                files.append(f"answers/{sub.name}/{details}")
        files.append("answers/insiders.csv")
        return files


def _sort_key(line: str) -> tuple[str, str]:
    date = line.split(",")[2]  # kind,id,date,...
    return (date[6:10] + date[0:2] + date[3:5] + date[11:], line)


class _CsvOut:
    """One output CSV: the dataset's plain header, then unquoted rows (no field has a comma)."""

    def __init__(self, path: Path, names: tuple[str, ...]) -> None:
        self._sink = pa.OSFile(str(path), "wb")
        self._sink.write(",".join(names).encode() + b"\n")
        self._writer: pacsv.CSVWriter | None = None
        self._names = names

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            options = pacsv.WriteOptions(include_header=False, quoting_style="none")
            self._writer = pacsv.CSVWriter(self._sink, table.schema, write_options=options)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._sink.close()


def _join_prefix(slots: list[pa.Array], count: _Ints) -> pa.Array:
    """Join the first ``count`` slots of each row with ';'.

    Emptied slots are joined and trimmed: pyarrow 26's ``binary_join_element_wise``
    with ``null_handling="skip"`` drops the rows whose every slot is null.
    """
    kept = [pc.if_else(pa.array(count > j), slot, "") for j, slot in enumerate(slots)]
    return pc.utf8_rtrim(pc.binary_join_element_wise(*kept, ";"), characters=";")


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _random_token(rng: np.random.Generator, length: int) -> str:
    return bytes(_ALNUM[rng.integers(36, size=length)]).decode()


def _ids(rng: np.random.Generator, n: int) -> pa.Array:
    """CERT-style row ids, ``{X1D9-S0ES98JV-5357PWMI}``, built as one byte matrix."""
    chars = _ALNUM[rng.integers(36, size=(n, 24), dtype=np.uint8)]
    chars[:, 0] = ord("{")
    chars[:, 5] = ord("-")
    chars[:, 14] = ord("-")
    chars[:, 23] = ord("}")
    return pa.array(np.ascontiguousarray(chars).view("S24").ravel()).cast(pa.string())


def _format_dates(ts: _Ints) -> pa.Array:
    """``MM/DD/YYYY HH:MM:SS`` for epoch seconds, as digits in a byte matrix (strftime is slow)."""
    n = len(ts)
    days = (ts // _DAY).astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    mday = (days - months).astype(np.int64) + 1
    sod = ts % _DAY
    parts = [
        (month, 2, 0),
        (mday, 2, 3),
        (year, 4, 6),
        (sod // 3600, 2, 11),
        (sod // 60 % 60, 2, 14),
        (sod % 60, 2, 17),
    ]
    out = np.empty((n, 19), dtype=np.uint8)
    out[:, 2] = out[:, 5] = ord("/")
    out[:, 10] = ord(" ")
    out[:, 13] = out[:, 16] = ord(":")
    for value, width, at in parts:
        for w in range(width):
            out[:, at + width - 1 - w] = 48 + (value // 10**w) % 10
    return pa.array(out.view("S19").ravel()).cast(pa.string())


def _format_one(ts: int | None) -> str:
    if ts is None:
        return ""
    return str(_format_dates(np.array([ts], dtype=np.int64))[0].as_py())
