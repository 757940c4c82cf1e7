"""Analysts' own rules and allow-list entries, in a TOML file; no code to touch.

The format (docs/detect.md has it in full)::

    [domains]                      # added to the shipped lists
    competitors = ["vantage-bpo.example"]

    [[rule]]
    id = "many-searches"           # letters, digits and dashes
    feature = "searches"           # any daily feature (bpoguard.detect.features.FEATURES)
    above = 200                    # fires when the feature's sum is above this
    days = 1                       # summed per person over this many days (1: the day)
    severity = "medium"            # low, medium, high, critical
    description = "More than 200 customer searches in a day"

    [[allow]]                      # a known-good pattern, suppressed until it expires
    person = "DEL1-A00018"         # or "*"
    detector = "bulk-harvest"      # or "*"
    owner = "security-lead@meridian.example"
    reason = "Night data-cleansing project, change CHG-1234"
    expires = 2026-04-01
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bpoguard.detect.detectors import DETECTORS, Frame, _date, _day
from bpoguard.detect.features import FEATURES, Domains
from bpoguard.detect.findings import Detector, Finding, Severity
from bpoguard.errors import InputError

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
MAX_DAYS = 90


class RuleFileError(InputError):
    """The rule file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class ThresholdRule:
    """A feature's sum over a window of days above a threshold, per person."""

    detector: Detector
    feature: str
    above: float
    days: int = 1

    def __call__(self, frame: Frame) -> list[Finding]:
        """The person-days on which the rule fires."""
        d = frame.data
        series = d.groupby("person")[self.feature].transform(
            lambda s: s.rolling(self.days, min_periods=1).sum()
        )
        hits = d[series > self.above]
        span = "" if self.days == 1 else f" over the {self.days} days to"
        return [
            Finding(
                self.detector,
                r.person,
                _day(r.day),
                f"{FEATURES[self.feature]}: {int(series[i])}{span} on {_date(r.day)} (rule: above {self.above:g})",
            )
            for i, r in zip(hits.index, hits.itertuples(), strict=True)
        ]


@dataclass(frozen=True)
class Allow:
    """A known-good pattern: findings of a detector for a person, suppressed until expiry."""

    person: str
    detector: str
    owner: str
    reason: str
    expires: dt.date

    def covers(self, finding: Finding, today: dt.date) -> bool:
        """Whether this entry suppresses the finding (an expired entry suppresses nothing)."""
        if today > self.expires:
            return False
        return self.person in ("*", finding.person, finding.via) and self.detector in (
            "*",
            finding.detector.id,
        )


@dataclass(frozen=True)
class RuleSet:
    """What a rule file gives detection: extra rules, allow-list entries, domains."""

    rules: tuple[ThresholdRule, ...] = ()
    allow: tuple[Allow, ...] = ()
    domains: Domains = field(default_factory=Domains)

    @property
    def detectors(self) -> tuple[Callable[[Frame], list[Finding]], ...]:
        """The rules as detectors."""
        return self.rules

    def suppress(self, findings: list[Finding], today: dt.date) -> tuple[list[Finding], int]:
        """Findings no live allow-list entry covers, and how many were suppressed."""
        kept = [f for f in findings if not any(a.covers(f, today) for a in self.allow)]
        return kept, len(findings) - len(kept)

    def expired(self, today: dt.date) -> list[Allow]:
        """Allow-list entries past their expiry (kept in the file, suppressing nothing)."""
        return [a for a in self.allow if today > a.expires]


def load(path: Path) -> RuleSet:
    """Read and check a rule file; every mistake is reported with where it is."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuleFileError(f"rule file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleFileError(f"rule file {path}: {exc}") from None
    unknown = set(doc) - {"domains", "rule", "allow"}
    if unknown:
        raise RuleFileError(f"rule file {path}: unknown section {sorted(unknown)[0]!r}")
    rules = tuple(_rule(path, i, r) for i, r in enumerate(doc.get("rule", []), start=1))
    ids = [r.detector.id for r in rules]
    clash = {i for i in ids if ids.count(i) > 1 or i in {d.id for d in DETECTORS}}
    if clash:
        raise RuleFileError(f"rule file {path}: rule id {sorted(clash)[0]!r} is already taken")
    allow = tuple(_allow(path, i, a) for i, a in enumerate(doc.get("allow", []), start=1))
    return RuleSet(rules, allow, _domains(path, doc.get("domains", {})))


def _need(path: Path, where: str, entry: dict[str, Any], key: str, kind: type) -> Any:
    value = entry.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise RuleFileError(f"rule file {path}: {where} needs {key} ({kind.__name__})")
    return value


def _rule(path: Path, n: int, entry: dict[str, Any]) -> ThresholdRule:
    where = f"rule {n}"
    rule_id = _need(path, where, entry, "id", str)
    if not _ID.match(rule_id):
        raise RuleFileError(
            f"rule file {path}: {where} id {rule_id!r} must be lower-case letters, digits and dashes"
        )
    feature = _need(path, where, entry, "feature", str)
    if feature not in FEATURES:
        raise RuleFileError(
            f"rule file {path}: {where} ({rule_id}) has unknown feature {feature!r}"
        )
    above = entry.get("above")
    if not isinstance(above, int | float) or isinstance(above, bool):
        raise RuleFileError(f"rule file {path}: {where} ({rule_id}) needs above (a number)")
    days = entry.get("days", 1)
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise RuleFileError(f"rule file {path}: {where} ({rule_id}) days must be 1 to {MAX_DAYS}")
    try:
        severity = Severity(_need(path, where, entry, "severity", str))
    except ValueError:
        raise RuleFileError(
            f"rule file {path}: {where} ({rule_id}) severity must be one of {', '.join(Severity)}"
        ) from None
    description = _need(path, where, entry, "description", str)
    return ThresholdRule(Detector(rule_id, severity, description), feature, float(above), days)


def _allow(path: Path, n: int, entry: dict[str, Any]) -> Allow:
    where = f"allow entry {n}"
    expires = entry.get("expires")
    if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
        raise RuleFileError(f"rule file {path}: {where} needs expires (a date, e.g. 2026-04-01)")
    owner = _need(path, where, entry, "owner", str).strip()
    reason = _need(path, where, entry, "reason", str).strip()
    if not owner or not reason:
        raise RuleFileError(f"rule file {path}: {where} needs a non-empty owner and reason")
    return Allow(
        person=_need(path, where, entry, "person", str),
        detector=_need(path, where, entry, "detector", str),
        owner=owner,
        reason=reason,
        expires=expires,
    )


def _domains(path: Path, section: dict[str, Any]) -> Domains:
    base = Domains()
    extra: dict[str, tuple[str, ...]] = {}
    for key, value in section.items():
        if key not in base.__dataclass_fields__:
            raise RuleFileError(f"rule file {path}: [domains] has no list {key!r}")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RuleFileError(f"rule file {path}: [domains] {key} must be a list of names")
        extra[key] = tuple(getattr(base, key)) + tuple(v.lower() for v in value)
    return replace(base, **extra)
