"""Detectors over the daily feature table: instant rules, window rules, baselines.

Every detector reads the same frame (one row per person and day, the columns
of :data:`bpoguard.detect.features.FEATURES`) and returns findings whose
explanation carries the numbers behind them. Baselines are robust: a person's
own median over the days before, and the 95th percentile of their peers (same
team, else same site, else same role) on the same day.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from pandas.api.indexers import BaseIndexer  # type: ignore[import-untyped]

from bpoguard.detect.findings import Detector, Finding, Severity
from bpoguard.detect.people import Directory

HISTORY_DAYS = 28  # own baseline: the median over up to this many earlier active days
MIN_PEERS = 5
MIN_HISTORY = 3  # earlier active days before a person's own median counts

CANARY = Detector(
    "canary-touched",
    Severity.CRITICAL,
    "A canary customer (no real call reaches one) was requested",
)
AFTER_LEAVING = Detector(
    "after-leaving", Severity.CRITICAL, "Activity after the person's leaving date"
)
OFF_PREMISES = Detector(
    "off-premises",
    Severity.HIGH,
    "Customer data or a client account used from outside the premises",
)
NO_INTERACTION = Detector(
    "reveal-without-interaction",
    Severity.HIGH,
    "Customer fields revealed with no open call or ticket",
)
BULK = Detector(
    "bulk-harvest",
    Severity.HIGH,
    "Far more distinct customers than the person's own past and their peers",
)
REVEAL_SURGE = Detector(
    "reveal-surge",
    Severity.HIGH,
    "Far more customers revealed in the clear than own past and peers",
)
TAKEOVER = Detector(
    "mailbox-takeover",
    Severity.CRITICAL,
    "Sign-in from a network never used before, then a password change",
)
CONCURRENT = Detector(
    "concurrent-use", Severity.HIGH, "One account used from two networks within the same hour"
)
NOTICE_MOVE = Detector(
    "data-after-notice",
    Severity.HIGH,
    "Data moved out (export, removable media, personal mail, file sharing) after notice",
)
REMOVABLE = Detector(
    "removable-after-quiet", Severity.MEDIUM, "Removable media used after a history without any"
)
CERT1 = Detector(
    "after-hours-usb-leak",
    Severity.CRITICAL,
    "After-hours activity, removable media and an upload to a leak or file-sharing site",
)
CERT2 = Detector(
    "job-search-usb-surge",
    Severity.HIGH,
    "Job-search browsing, then removable-media use far above own past",
)
CERT3 = Detector(
    "keylogger-impersonation",
    Severity.CRITICAL,
    "Keylogger or hacking-tool site, then a logon to someone else's computer and mass mail",
)
FROM_HOME = Detector(
    "shared-account-from-home",
    Severity.CRITICAL,
    "A shared client account used off the premises from the home network of one of its holders",
)
CONTACT_RATE = Detector(
    "contact-reveal-rate",
    Severity.HIGH,
    "Phone numbers or e-mail addresses revealed on far more calls than peers",
)
ANOMALY = Detector(
    "anomaly",
    Severity.MEDIUM,
    "A day unlike the person's own past and their peers' (robust baselines)",
)

DETECTORS: tuple[Detector, ...] = (
    CANARY, AFTER_LEAVING, OFF_PREMISES, NO_INTERACTION, BULK, REVEAL_SURGE, TAKEOVER,
    CONCURRENT, NOTICE_MOVE, REMOVABLE, CERT1, CERT2, CERT3, FROM_HOME, CONTACT_RATE, ANOMALY,
)  # fmt: skip

# Features the baselines and the anomaly score look at, with the floor a day must pass.
BASELINE_FEATURES = {
    "customers_viewed": 30,
    "customers_revealed": 10,
    "customers_exported": 20,
    "removable_files": 5,
    "device_connects": 3,
    "emails_out": 3,
    "leak_site_visits": 2,
    "max_recipients": 15,
    "signins_failed": 5,
    "denials": 20,
}


@dataclass
class Frame:
    """The feature table with peers and baselines added; what every detector reads."""

    data: pd.DataFrame
    directory: Directory
    accounts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, table: pd.DataFrame, directory: Directory) -> Frame:
        """Add each row's peer group and the own and peer baselines of the key features."""
        data = table.sort_values(["person", "day"]).reset_index(drop=True)
        people = directory.by_id()
        # Per person, not per row: a person-day table at 30 M events has 430,000 rows.
        persons = data["person"].unique()
        data["peer_group"] = data["person"].map({p: _peer_group(people.get(p)) for p in persons})
        # One code per (peer group, day) at each level, worked out once for every feature.
        levels = {
            level: _group_codes(
                data["person"].map({p: _peer_at(people.get(p), level) for p in persons}),
                data["day"],
            )
            for level in ("team", "site", "role")
        }
        own = _own_medians(data, list(BASELINE_FEATURES))
        # The narrowest peer group with enough people active that day: team, site, role.
        plan = _peer_levels(levels)
        for name in BASELINE_FEATURES:
            data[f"{name}_own"] = own[name]
            data[f"{name}_peers"] = _narrowest_p95(data[name].to_numpy(dtype=float), plan)
        data["history"] = data.groupby("person").cumcount()
        accounts = frozenset(a for a, _ in directory.holders)
        return cls(data, directory, accounts)


def _peer_group(person: object) -> str:
    team = getattr(person, "team", None)
    site = getattr(person, "site", None)
    role = getattr(person, "role", None)
    return f"team:{team}" if team else f"site:{site}" if site else f"role:{role or '-'}"


def _peer_at(person: object, level: str) -> str:
    value = getattr(person, level, None)
    return f"{level}:{value}" if value else f"{level}:-"


class _EarlierDays(BaseIndexer):  # type: ignore[misc]
    """Each row's window: the up to HISTORY_DAYS rows of the same person just before it."""

    def __init__(self, first: np.ndarray) -> None:
        super().__init__()
        self.first = first  # each row's person's first row (rows sorted by person)

    def get_window_bounds(
        self,
        num_values: int = 0,
        min_periods: int | None = None,
        center: bool | None = None,
        closed: str | None = None,
        step: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows [start, end) of each row's window: never the row itself, never another person."""
        end = np.arange(num_values, dtype=np.int64)
        return np.maximum(self.first[:num_values], end - HISTORY_DAYS), end


def _own_medians(data: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Median of each feature over the person's earlier days (NaN with under MIN_HISTORY).

    ``data`` is sorted by person and day. One rolling window over every column
    at once, its bounds worked out once: the same medians as a shift and a
    rolling median per person and feature, which took 4 of the frame's 9 s
    at 30 M events.
    """
    person = data["person"].to_numpy()
    rows = np.arange(len(person), dtype=np.int64)
    starts = np.r_[True, person[1:] != person[:-1]] if len(person) else np.array([], bool)
    first = np.maximum.accumulate(np.where(starts, rows, 0)) if len(person) else rows
    window = _EarlierDays(first)
    return data[names].astype(float).rolling(window, min_periods=MIN_HISTORY).median()


def _group_codes(*columns: pd.Series) -> np.ndarray:
    """One integer per row naming its combination of the columns' values."""
    codes = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        values, uniques = pd.factorize(column)
        codes = codes * len(uniques) + values
    return codes


class _Groups:
    """Rows grouped by a code: what every leave-one-out quantile over those groups shares.

    Sorting by code, then value, puts each group's rows in one run; where the
    runs start, and each row's place in its run, are the same for every
    feature, so they are worked out once.
    """

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = codes
        total = len(codes)
        c = np.sort(codes)
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]]) if total else np.array([], np.int64)
        sizes = np.diff(np.r_[starts, total]).astype(np.int64)
        self.start, self.n = np.repeat(starts, sizes), np.repeat(sizes, sizes)
        self.rank = np.arange(total) - self.start  # each sorted row's place within its group
        dense = pd.factorize(codes)[0]
        self.size_of_row = np.bincount(dense)[dense]  # in the rows' own order

    def quantiles(self, values: np.ndarray, q: float) -> np.ndarray:
        """For each row, the q-quantile (linear) of the other rows of its group.

        NaN where a group has MIN_PEERS rows or fewer.
        """
        total, n, start, rank = len(values), self.n, self.start, self.rank
        if not values.any():  # a feature nobody has (0 throughout): every quantile is 0
            zeros: np.ndarray = np.where(self.size_of_row > MIN_PEERS, 0.0, np.nan)
            return zeros
        order = _by_code_then_value(values, self.codes)
        s = values[order]
        h = q * (n - 2)
        lo = np.floor(h).astype(np.int64)
        hi = np.minimum(lo + 1, n - 2)
        frac = h - lo

        def at(k: np.ndarray) -> np.ndarray:
            # Index k among the others: skip the row's own place in the sorted order.
            place = np.where(k < rank, k, np.minimum(k + 1, n - 1))
            picked: np.ndarray = s[np.clip(start + place, 0, max(total - 1, 0))]
            return picked

        sorted_result = np.where(n > MIN_PEERS, at(lo) * (1 - frac) + at(hi) * frac, np.nan)
        out = np.empty(total)
        out[order] = sorted_result
        return out


@dataclass(frozen=True)
class _PeerLevel:
    """The rows one level of peer groups is worked out over, and which of them it decides."""

    rows: np.ndarray  # every row of each group that holds a row still without a bar
    decides: np.ndarray  # of those rows, the ones still without a bar
    groups: _Groups


def _peer_levels(levels: dict[str, np.ndarray]) -> list[_PeerLevel]:
    """Team, then site, then role: each level only where the narrower ones had too few peers.

    A row has no bar at a level when its group there has MIN_PEERS rows or
    fewer; that depends on the groups, not on a feature's values, so the plan
    is made once for every feature. A wider level takes the whole of every
    group it is needed for, so its numbers are the same as over all rows.
    """
    plan = []
    missing = np.ones(len(next(iter(levels.values()), [])), dtype=bool)
    for codes in levels.values():
        if not missing.any():
            break
        rows = np.flatnonzero(np.isin(codes, np.unique(codes[missing])))
        groups = _Groups(codes[rows])
        plan.append(_PeerLevel(rows, missing[rows], groups))
        # Rows outside these groups have their bar already; inside, whole groups are here.
        missing[rows] &= groups.size_of_row <= MIN_PEERS
    return plan


def _narrowest_p95(values: np.ndarray, plan: list[_PeerLevel]) -> np.ndarray:
    """Each row's peers' 95th percentile at the narrowest level with enough of them.

    ``values`` are counts (never NaN), so a bar is missing exactly where the
    plan (:func:`_peer_levels`) says its group is too small.
    """
    out = np.full(len(values), np.nan)
    for level in plan:
        bar = level.groups.quantiles(values[level.rows], 0.95)
        out[level.rows[level.decides]] = bar[level.decides]
    return out


def _leave_one_out_quantiles(values: np.ndarray, codes: np.ndarray, q: float) -> np.ndarray:
    """For each row, the q-quantile (linear) of the other rows with its code.

    The same numbers as sorting each group's values and skipping the row's own
    place, group by group, from one sort of all the rows: a loop over 100,000
    (group, day) pairs took minutes. NaN where a group has MIN_PEERS rows or fewer.
    """
    return _Groups(codes).quantiles(values, q)


def _by_code_then_value(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The rows in order of code, then value (ties in any order: they are equal values).

    Counts are whole and small, so one integer key of both sorts four times
    faster than a lexsort of two keys; anything else is lexsorted.
    """
    if not len(values):
        return np.array([], dtype=np.int64)
    whole = bool(np.all(values >= 0) & np.all(np.floor(values) == values))
    if whole and codes.min() >= 0:
        span = float(values.max()) + 1.0
        if (float(codes.max()) + 1.0) * span < 2.0**62:
            key = codes.astype(np.int64) * int(span) + values.astype(np.int64)
            result: np.ndarray = np.argsort(key)
            return result
    return np.lexsort((values, codes))


def run(frame: Frame, rules: Iterable[Callable[[Frame], list[Finding]]] = ()) -> list[Finding]:
    """Every built-in detector, then the extra rules, over the frame."""
    found: list[Finding] = []
    for detector in BUILT_IN:
        found += detector(frame)
    for rule in rules:
        found += rule(frame)
    return found


def _date(day: object) -> str:
    """A day as explanations write it: 3 May 2026."""
    d = _day(day)
    return f"{d.day} {d:%b %Y}"


def _day(value: object) -> dt.date:
    """A pandas timestamp (or a date) as a date."""
    stamp = pd.Timestamp(value)
    return dt.date(int(stamp.year), int(stamp.month), int(stamp.day))


def _volume(n: float) -> float:
    """How much a count weighs: 1 for one, 2 for ten, 3 for a hundred, at most 4."""
    return float(min(4.0, 1.0 + np.log10(max(1.0, n))))


def _simple(detector: Detector, column: str, words: str) -> Callable[[Frame], list[Finding]]:
    def check(frame: Frame) -> list[Finding]:
        rows = frame.data[frame.data[column] > 0]
        return [
            Finding(
                detector,
                r.person,
                _day(r.day),
                f"{int(getattr(r, column))} {words} on {_date(r.day)}",
                _volume(getattr(r, column)),
            )
            for r in rows.itertuples()
        ]

    check.__name__ = detector.id
    return check


def _baseline_surge(
    detector: Detector, column: str, words: str, factor: float = 3.0
) -> Callable[[Frame], list[Finding]]:
    floor = BASELINE_FEATURES[column]

    def check(frame: Frame) -> list[Finding]:
        d = frame.data
        own = d[f"{column}_own"]
        peers = d[f"{column}_peers"]
        value = d[column]
        over_own = own.isna() | (value > np.maximum(factor * own, own + floor))
        over_peers = peers.isna() | (value > np.maximum(1.5 * peers, peers + floor))
        hits = d[(value >= floor) & over_own & over_peers & ~(own.isna() & peers.isna())]
        found = []
        for r in hits.itertuples():
            own_v, peer_v = getattr(r, f"{column}_own"), getattr(r, f"{column}_peers")
            bar = max(x for x in (own_v, peer_v, 1.0) if not pd.isna(x))
            text = words.format(n=int(getattr(r, column))) + f" on {_date(r.day)}"
            text += "; own median " + ("n/a" if pd.isna(own_v) else f"{own_v:g}")
            text += "; peers' 95th percentile " + ("n/a" if pd.isna(peer_v) else f"{peer_v:g}")
            weight = float(min(5.0, max(1.0, np.log2(getattr(r, column) / bar))))
            found.append(Finding(detector, r.person, _day(r.day), text, weight))
        return found

    check.__name__ = detector.id
    return check


def _person_rows(frame: Frame) -> pd.DataFrame:
    return frame.data[~frame.data["person"].isin(frame.accounts)]


def _off_premises(frame: Frame) -> list[Finding]:
    rows = frame.data[frame.data["off_premises"] > 0]
    return [
        Finding(
            OFF_PREMISES,
            r.person,
            _day(r.day),
            f"{int(r.off_premises)} actions from outside the premises on {_date(r.day)}",
            _volume(r.off_premises),
        )
        for r in rows.itertuples()
    ]


def _takeover(frame: Frame) -> list[Finding]:
    """A new network (off the premises) and a password change within two days after."""
    d = frame.data
    found = []
    for person, rows in d[(d["new_networks"] > 0) | (d["password_changes"] > 0)].groupby("person"):
        new = rows[(rows["new_networks"] > 0) & (rows["off_premises"] > 0)]
        changes = rows[rows["password_changes"] > 0]
        for c in changes.itertuples():
            before = new[(new["day"] <= c.day) & (new["day"] >= c.day - pd.Timedelta(days=2))]
            if before.empty:
                continue
            first = before.iloc[0]
            text = (
                f"signed in from {int(first.new_networks)} network(s) never used before on {_date(first.day)}, "
                f"password changed on {_date(c.day)} ({int(c.signins_failed)} failed sign-ins that day)"
            )
            # On both days: the sign-in from outside is part of the takeover's window.
            for day in sorted({_day(first.day), _day(c.day)}):
                found.append(Finding(TAKEOVER, str(person), day, text))
    return found


def _concurrent(frame: Frame) -> list[Finding]:
    rows = frame.data[frame.data["concurrent_networks"] >= 2]
    rows = rows[rows["off_premises"] > 0]
    return [
        Finding(
            CONCURRENT,
            r.person,
            _day(r.day),
            f"used from {int(r.concurrent_networks)} networks within one hour on {_date(r.day)}, {int(r.off_premises)} actions off the premises",
        )
        for r in rows.itertuples()
    ]


_MOVES = (
    "customers_exported",
    "removable_files",
    "emails_out",
    "leak_site_visits",
    "device_connects",
)


def _after_notice(frame: Frame) -> list[Finding]:
    d = frame.data
    moved = sum((d[c] > 0).astype(int) for c in _MOVES)
    rows = d[(d["days_since_notice"] >= 0) & (moved > 0)]
    found = []
    for r in rows.itertuples():
        parts = [f"{int(getattr(r, c))} {c.replace('_', ' ')}" for c in _MOVES if getattr(r, c) > 0]
        text = f"{', '.join(parts)} on {_date(r.day)}, {int(r.days_since_notice)} days after giving notice"
        found.append(Finding(NOTICE_MOVE, r.person, _day(r.day), text))
    return found


def _removable_after_quiet(frame: Frame) -> list[Finding]:
    d = _person_rows(frame)
    used = (d["removable_files"] + d["device_connects"]) > 0
    before = used.groupby(d["person"]).cumsum() - used.astype(int)
    rows = d[used & (before == 0) & (d["history"] >= 7)]
    return [
        Finding(
            REMOVABLE,
            r.person,
            _day(r.day),
            f"removable media on {_date(r.day)} ({int(r.device_connects)} connections, {int(r.removable_files)} files) after {int(r.history)} active days without",
        )
        for r in rows.itertuples()
    ]


def _cert1(frame: Frame) -> list[Finding]:
    """After hours, a removable drive and a leak-site upload within three days (CERT scenario 1)."""
    found = []
    d = _person_rows(frame).reset_index(drop=True)
    # Window sums over each person's days, not a scan of the frame per candidate row
    # (which made the scenario rules quadratic in person-days).
    late, late_days = _trailing(d, "off_shift", 3), _trailing_days(d, "off_shift", 3)
    usb, usb_days = _trailing(d, "device_connects", 3), _trailing_days(d, "device_connects", 3)
    hits = (d["leak_site_visits"].to_numpy() > 0) & (late_days > 0) & (usb_days > 0)
    for i in np.flatnonzero(hits):
        r = d.iloc[i]
        text = (
            f"{int(r.leak_site_visits)} leak or file-sharing site visits on {_date(r.day)}, "
            f"{int(late[i])} after-hours actions and {int(usb[i])} "
            f"removable-drive connections in the three days to then"
        )
        found.append(Finding(CERT1, str(r.person), _day(r.day), text))
    return found


CERT2_MIN_FILES = 15  # files to removable media in a day that make a "markedly higher rate"
CERT2_MIN_JOB_VISITS = 10  # job-site visits in the 30 days before


def _cert2(frame: Frame) -> list[Finding]:
    """Job-search browsing (or mail to a competitor), then removable-file use far above own past."""
    found = []
    d = _person_rows(frame).reset_index(drop=True)
    own = d["removable_files_own"].fillna(0)
    surge = (d["removable_files"] >= np.maximum(3 * own, CERT2_MIN_FILES)).to_numpy()
    jobs = _trailing(d, "job_search", 30)
    rivals = _trailing(d, "emails_competitor", 60)
    rival_days = _trailing_days(d, "emails_competitor", 60)
    for i in np.flatnonzero(surge):
        r = d.iloc[i]
        visits = int(jobs[i])
        if visits < CERT2_MIN_JOB_VISITS and rival_days[i] == 0:
            continue
        own_v = 0.0 if pd.isna(r.removable_files_own) else float(r.removable_files_own)
        text = (
            f"{int(r.removable_files)} files to removable media on {_date(r.day)}; own median {own_v:g}; "
            f"{visits} job-search visits in the 30 days to then"
        )
        if rival_days[i] > 0:
            text += f", {int(rivals[i])} e-mails to competitors in the 60 days"
        weight = 2.0 if rival_days[i] > 0 and visits >= CERT2_MIN_JOB_VISITS else 1.0
        found.append(Finding(CERT2, r.person, _day(r.day), text, weight))
    return found


MASS_MAIL = 20  # recipients of one e-mail that make it a mass mail


def _cert3(frame: Frame) -> list[Finding]:
    """A keylogger site, then a logon to another's computer (and mass mail) within a week."""
    found = []
    d = _person_rows(frame).reset_index(drop=True)
    tools, tool_days = _trailing(d, "hacking_sites", 7), _trailing_days(d, "hacking_sites", 7)
    for i in np.flatnonzero((d["foreign_logons"].to_numpy() > 0) & (tool_days > 0)):
        r = d.iloc[i]
        text = (
            f"logged on to {int(r.foreign_logons)} computer(s) of someone else on {_date(r.day)}; "
            f"{int(tools[i])} keylogger or hacking-site visits in the week to then"
        )
        mass = r.max_recipients >= MASS_MAIL
        if mass:
            text += f"; an e-mail to {int(r.max_recipients)} recipients that day"
        found.append(Finding(CERT3, r.person, _day(r.day), text, 2.0 if mass else 1.0))
    return found


def _from_home(frame: Frame) -> list[Finding]:
    """A holder whose own home address a shared account they hold was signed into from."""
    d = _person_rows(frame)
    rows = d[d["shared_home_signins"] > 0]
    if rows.empty:
        return []
    held: dict[str, set[str]] = {}
    for account, person in frame.directory.holders:
        held.setdefault(person, set()).add(account)
    box = frame.data[frame.data["person"].isin(frame.accounts) & (frame.data["off_premises"] > 0)]
    outside = {(str(r.person), _day(r.day)) for r in box.itertuples()}
    found = []
    for r in rows.itertuples():
        day = _day(r.day)
        used = tuple(sorted(a for a in held.get(r.person, ()) if (a, day) in outside))
        address = ipaddress.IPv4Address(int(r.shared_home_address))
        minute = int(r.shared_home_minute)
        n, known = int(r.shared_home_signins), int(r.home_network_days)
        text = (
            f"{', '.join(used) or 'a shared account they hold'} signed in from {address} at "
            f"{minute // 60:02d}:{minute % 60:02d} UTC on {_date(day)}"
            f"{f' ({n} sign-ins from there)' if n > 1 else ''}; that network is {r.person}'s home: "
            f"{r.person}'s own account signed in from it on {known} day{'s' if known > 1 else ''}"
        )
        found.append(Finding(FROM_HOME, r.person, day, text, _volume(n), accounts=used))
    return found


CONTACT_WINDOW_DAYS = 7  # calls and contact reveals summed over the last seven days
CONTACT_MIN = 8  # contact reveals in the window before the rate means anything
OUTLIER_RATIO = 2.0  # peers this far above the rest are left out of the bar
CONTACT_RATIO = 3.0  # times the peers' rate; agents' own habits spread to about 2x
# Poisson tail against the peers' rate a window must pass: one shift of a ring member's
# calls reaches it; the weight grows with the evidence (1 at 1e-6).
CONTACT_P = 1e-6


def _trailing(d: pd.DataFrame, column: str, days: int) -> np.ndarray:
    """Each row's sum of the column over the person's rows in the last ``days`` days.

    ``d`` is sorted by person and day, with a plain 0..n-1 index.
    """
    out = np.zeros(len(d))
    when = d["day"].to_numpy(dtype="datetime64[D]")
    values = d[column].to_numpy(dtype=float)
    for index in d.groupby("person").indices.values():
        total = np.cumsum(values[index])
        start = np.searchsorted(when[index], when[index] - np.timedelta64(days - 1, "D"))
        out[index] = total - np.where(start > 0, total[np.maximum(start - 1, 0)], 0.0)
    return out


def _trailing_days(d: pd.DataFrame, column: str, days: int) -> np.ndarray:
    """Each row's count of the person's days with the column above 0 in the last ``days`` days."""
    return _trailing(d.assign(_used=(d[column] > 0).astype(int)), "_used", days)


def _peer_rate(d: pd.DataFrame, groups: list[str]) -> pd.Series:
    """Each row's peers' contact-reveal rate over the window, the row left out.

    The peers' pooled rate, leaving out those far above the rest themselves
    (twice the others' median rate, and CONTACT_MIN reveals): a ring of
    several in one team must not raise the bar its members are measured
    against. NaN with MIN_PEERS or fewer others.
    """
    c = d["c7"].to_numpy(dtype=float)
    n = d["n7"].to_numpy(dtype=float)
    # Every (group, day) at once: a loop over them took most of this detector's time.
    codes = pd.factorize(_group_codes(pd.Series(groups, index=d.index), d["day"]))[0]
    size = np.bincount(codes)[codes]
    # Who is far above the rest is judged by the others' median: a ring inflates a mean.
    median = _leave_one_out_quantiles(np.divide(c, np.maximum(n, 1.0)), codes, 0.5)
    kept = ~((c >= CONTACT_MIN) & (c >= OUTLIER_RATIO * n * median))
    # Sums of whole numbers: exact in any order.
    peer_c = np.bincount(codes, weights=c * kept)[codes] - c * kept
    peer_n = np.bincount(codes, weights=n * kept)[codes] - n * kept
    rate = np.divide(peer_c, peer_n, out=np.full(len(d), np.nan), where=peer_n > 0)
    return pd.Series(np.where(size > MIN_PEERS, rate, np.nan), index=d.index)


def _contact_rate(frame: Frame) -> list[Finding]:
    """Contact fields revealed on far more of one's calls than peers over the last week.

    The guard masks phone numbers and e-mail addresses; an agent who wants to
    ring a caller later has to reveal them. Peers are the same team (else
    site) over the same seven days, the person left out; the person's own rate
    before the window is reported, and doubles the weight when passed too.
    """
    from scipy.stats import poisson  # type: ignore[import-untyped]  # slow import: at use

    d = _person_rows(frame)[["person", "day", "contact_reveals", "interactions"]]
    d = d.sort_values(["person", "day"])
    if d.empty or d["contact_reveals"].sum() == 0:
        return []
    d = d.reset_index(drop=True)
    d = d.assign(
        c7=_trailing(d, "contact_reveals", CONTACT_WINDOW_DAYS),
        n7=_trailing(d, "interactions", CONTACT_WINDOW_DAYS),
    )
    cum = d.groupby("person")[["contact_reveals", "interactions"]].cumsum()
    d = d.assign(c_all=cum["contact_reveals"], n_all=cum["interactions"])
    people = frame.directory.by_id()
    rate = pd.Series(np.nan, index=d.index)
    # The narrowest peer group with enough others active that day: team, site, role.
    for level in ("team", "site", "role"):
        rate = rate.fillna(_peer_rate(d, [_peer_at(people.get(p), level) for p in d["person"]]))
    expected = d["n7"] * rate
    hits = d[(d["c7"] >= CONTACT_MIN) & (d["c7"] >= CONTACT_RATIO * expected) & rate.notna()]
    found = []
    for i, r in zip(hits.index, hits.itertuples(), strict=True):
        tail = float(poisson.sf(r.c7 - 1, max(expected[i], 0.5)))
        if tail >= CONTACT_P:
            continue
        before_c, before_n = r.c_all - r.c7, r.n_all - r.n7
        own = before_c / before_n if before_n >= 50 else None
        text = (
            f"revealed phone or e-mail on {int(r.c7)} of {int(r.n7)} calls in the 7 days to "
            f"{_date(r.day)} ({r.c7 / max(r.n7, 1):.0%}); peers {rate[i]:.1%}, "
            f"{expected[i]:.1f} expected" + ("" if own is None else f"; own rate before {own:.1%}")
        )
        weight = min(4.0, -np.log10(max(tail, 1e-300)) / 6)
        if own is not None and r.c7 / max(r.n7, 1) >= 2 * own:
            weight *= 1.5  # far above their own past as well
        found.append(Finding(CONTACT_RATE, r.person, _day(r.day), text, min(5.0, weight)))
    return found


BUILT_IN: tuple[Callable[[Frame], list[Finding]], ...] = (
    _simple(CANARY, "canary_hits", "requests for canary customers"),
    _simple(AFTER_LEAVING, "after_leaving", "actions after the leaving date"),
    _off_premises,
    _simple(NO_INTERACTION, "reveals_no_interaction", "reveals with no open interaction"),
    _baseline_surge(BULK, "customers_viewed", "viewed {n} distinct customers"),
    _baseline_surge(
        REVEAL_SURGE, "customers_revealed", "revealed {n} distinct customers in the clear"
    ),
    _takeover,
    _concurrent,
    _after_notice,
    _removable_after_quiet,
    _cert1,
    _cert2,
    _cert3,
    _from_home,
    _contact_rate,
)
