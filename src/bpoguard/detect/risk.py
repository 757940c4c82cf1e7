"""A risk score per person that accumulates with decay, explained by its top contributions.

Each finding adds its score on its day; older days count less, halving every
``half_life`` days, so a slow harvest over weeks climbs as surely as a burst
and an old blip fades. A person's ``score`` is the highest their accumulated
risk reached in the period (on ``peak_day``), so that someone who struck in
February and left is not forgotten by May; ``current`` is where it stands on
the last day. Findings on a shared account (a client mailbox) count
for every person it was given to, marked as seen through that account.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from bpoguard.detect.findings import EPISODE_GAP_DAYS, Finding
from bpoguard.detect.people import Directory

HALF_LIFE_DAYS = 14.0
TOP_REASONS = 3


@dataclass(frozen=True)
class Contribution:
    """What one finding added to a person's risk, after decay."""

    detector: str
    day: dt.date
    points: float
    explanation: str


@dataclass
class Risk:
    """One person's risk, with the contributions that make it up (largest first)."""

    person: str
    score: float = 0.0
    contributions: list[Contribution] = field(default_factory=list)
    current: float = 0.0
    peak_day: dt.date | None = None

    @property
    def reasons(self) -> list[str]:
        """The top contributions, in words."""
        seen: dict[str, Contribution] = {}
        for c in self.contributions:
            seen.setdefault(c.detector, c)  # one reason per detector: its largest
        return [c.explanation for c in list(seen.values())[:TOP_REASONS]]

    def as_json(self) -> dict[str, object]:
        """The risk as a JSON document."""
        return {
            "person": self.person,
            "score": round(self.score, 3),
            "current": round(self.current, 3),
            "peak_day": self.peak_day.isoformat() if self.peak_day else None,
            "reasons": self.reasons,
            "contributions": [
                {
                    "detector": c.detector,
                    "day": c.day.isoformat(),
                    "points": round(c.points, 3),
                    "explanation": c.explanation,
                }
                for c in self.contributions[:10]
            ],
        }


def to_people(findings: Iterable[Finding], directory: Directory) -> list[Finding]:
    """Findings on shared accounts passed on to each person the account was given to.

    The account's finding is shared out among its holders (any one of them
    may be the culprit), and one person holding several accounts that fired
    on the same day for the same detector counts it once. When a finding pins
    the account's use on some holders (it was signed into from their home)
    within an episode's gap of that day, it goes to those holders only.
    """
    findings = list(findings)
    holders: dict[str, list[str]] = defaultdict(list)
    for account, person in directory.holders:
        holders[account].append(person)
    pinned: dict[str, list[tuple[dt.date, str]]] = defaultdict(list)
    for f in findings:
        for account in f.accounts:
            pinned[account].append((f.day, f.person))
    out: list[Finding] = []
    passed: dict[tuple[str, str, dt.date], Finding] = {}
    for f in findings:
        if f.person not in holders:
            out.append(f)
            continue
        near = sorted(
            {p for d, p in pinned.get(f.person, []) if abs((f.day - d).days) <= EPISODE_GAP_DAYS}
        )
        targets = near or holders[f.person]
        share = 1.0 / len(targets)
        via = f"via shared account {f.person}"
        if near:
            via += f" (used from the home network of {', '.join(near)})"
        for person in targets:
            text = f"{via}: {f.explanation}"
            moved = replace(
                f, person=person, via=f.person, explanation=text, weight=f.weight * share
            )
            key = (person, f.detector.id, f.day)
            if key not in passed or moved.score > passed[key].score:
                passed[key] = moved
    return out + list(passed.values())


def score(
    findings: Iterable[Finding],
    persons: Iterable[str],
    as_of: dt.date,
    half_life: float = HALF_LIFE_DAYS,
) -> list[Risk]:
    """Every person's risk (its peak in the period), highest first (ties by person id)."""
    by_person: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_person[f.person].append(f)
    risks = {p: Risk(p) for p in persons}
    for person, found in by_person.items():
        risks[person] = _one(person, found, as_of, half_life)
    return sorted(risks.values(), key=lambda r: (-r.score, r.person))


def _decayed(found: list[Finding], on: dt.date, half_life: float) -> list[Contribution]:
    return [
        Contribution(
            f.detector.id, f.day, f.score * 0.5 ** ((on - f.day).days / half_life), f.explanation
        )
        for f in found
        if f.day <= on
    ]


def _one(person: str, found: list[Finding], as_of: dt.date, half_life: float) -> Risk:
    best: tuple[float, dt.date] | None = None
    for day in sorted({f.day for f in found}):
        total = sum(c.points for c in _decayed(found, day, half_life))
        if best is None or total > best[0]:
            best = (total, day)
    assert best is not None  # found is never empty here
    contributions = sorted(
        _decayed(found, best[1], half_life), key=lambda c: (-c.points, c.day, c.detector)
    )
    current = sum(c.points for c in _decayed(found, max(as_of, best[1]), half_life))
    return Risk(person, best[0], contributions, current, best[1])
