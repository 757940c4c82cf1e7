"""A risk score per person that accumulates with decay, explained by its top contributions.

Each finding adds its score on its day; older days count less, halving every
``half_life`` days, so a slow harvest over weeks climbs as surely as a burst
and an old blip fades. Findings on a shared account (a client mailbox) count
for every person it was given to, marked as seen through that account.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from bpoguard.detect.findings import Finding
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
    on the same day for the same detector counts it once.
    """
    holders: dict[str, list[str]] = defaultdict(list)
    for account, person in directory.holders:
        holders[account].append(person)
    out: list[Finding] = []
    passed: dict[tuple[str, str, dt.date], Finding] = {}
    for f in findings:
        if f.person not in holders:
            out.append(f)
            continue
        share = 1.0 / len(holders[f.person])
        for person in holders[f.person]:
            text = f"via shared account {f.person}: {f.explanation}"
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
    """Every person's risk as of a day, highest first (ties by person id)."""
    risks = {p: Risk(p) for p in persons}
    for f in findings:
        age = max(0, (as_of - f.day).days)
        points = f.score * 0.5 ** (age / half_life)
        risk = risks.setdefault(f.person, Risk(f.person))
        risk.score += points
        risk.contributions.append(Contribution(f.detector.id, f.day, points, f.explanation))
    for risk in risks.values():
        risk.contributions.sort(key=lambda c: (-c.points, c.day, c.detector))
    return sorted(risks.values(), key=lambda r: (-r.score, r.person))
