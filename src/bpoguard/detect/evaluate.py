"""How good detection is against a ground truth: ranks, recall at a budget, AUC, delay.

Truth comes from the simulator (``sim/truth.json``: per scenario its persons
and first act) or from CERT's ``answers/insiders.csv`` (dataset, scenario,
details, user, start, end). Ranks are pessimistic: a culprit tied with others
is counted last among them, so a tie never flatters the result.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpoguard.detect.alerts import Alert
from bpoguard.errors import InputError

SHIFT_HOURS = 9.0


class TruthError(InputError):
    """The truth file cannot be read."""


@dataclass(frozen=True)
class Culprit:
    """One insider the truth names, with when their malicious activity began."""

    person: str
    scenario: str
    first_act: dt.datetime | None


def load_truth(path: Path) -> list[Culprit]:
    """Culprits from a simulator truth.json or a CERT insiders.csv."""
    if not path.exists():
        raise TruthError(f"truth file {path} not found")
    if path.suffix == ".json":
        return _sim_truth(path)
    return _cert_truth(path)


def _sim_truth(path: Path) -> list[Culprit]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        scenarios = doc["scenarios"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise TruthError(f"truth file {path} is not a simulator truth.json") from None
    out = []
    for s in scenarios:
        # A scenario of several people may say when each of them began (the ring does).
        own = s.get("first_acts") or {}
        for p in s.get("persons", []):
            first = own.get(p) or s.get("first_act")
            when = dt.datetime.fromisoformat(first) if first else None
            out.append(Culprit(str(p), str(s["scenario"]), when))
    return out


def _cert_truth(path: Path) -> list[Culprit]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "user" not in reader.fieldnames:
            raise TruthError(f"truth file {path} has no 'user' column (CERT answers/insiders.csv)")
        rows = list(reader)
    out = []
    for n, row in enumerate(rows, start=2):
        start = (row.get("start") or "").strip()
        try:
            first = (
                dt.datetime.strptime(start, "%m/%d/%Y %H:%M:%S").replace(tzinfo=dt.UTC)
                if start
                else None
            )
        except ValueError:
            raise TruthError(
                f"truth file {path} line {n}: start {start!r} is not MM/DD/YYYY HH:MM:SS"
            ) from None
        out.append(Culprit(row["user"].strip(), f"scenario {row.get('scenario', '?')}", first))
    return out


def evaluate(
    culprits: list[Culprit],
    risks: list[dict[str, Any]],
    alerts: list[Alert],
    holders: dict[str, list[str]],
    days: int,
) -> dict[str, Any]:
    """The quality figures: each culprit's rank, recall at 1% and 5%, AUC, delay, alert rate."""
    scores = {str(r["person"]): float(r["score"]) for r in risks}
    n = len(scores)
    guilty = {c.person for c in culprits}
    rows = []
    for c in culprits:
        score = scores.get(c.person)
        rank = _pessimistic_rank(score, scores) if score is not None else None
        alert_at = _first_alert(alerts, holders, c)
        delay = (
            (alert_at - c.first_act).total_seconds() / 3600 if alert_at and c.first_act else None
        )
        rows.append(
            {
                "person": c.person,
                "scenario": c.scenario,
                "rank": rank,
                "score": score,
                "first_act": c.first_act.isoformat() if c.first_act else None,
                "first_alert": alert_at.isoformat() if alert_at else None,
                "hours_to_first_alert": None if delay is None else round(delay, 2),
                "within_one_shift": delay is not None and delay <= SHIFT_HOURS,
            }
        )
    labels = [1 if p in guilty else 0 for p in scores]
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]  # slow import: at use

    auc = roc_auc_score(labels, list(scores.values())) if 0 < sum(labels) < n else None
    return {
        "persons": n,
        "culprits": len(culprits),
        "insiders": rows,
        "recall_at_1pct": _recall(rows, n, 0.01),
        "recall_at_5pct": _recall(rows, n, 0.05),
        "budget_1pct": _budget(n, 0.01),
        "budget_5pct": _budget(n, 0.05),
        "roc_auc": None if auc is None else round(float(auc), 4),
        "alerts": len(alerts),
        "days": days,
        "alerts_per_100_staff_per_day": round(100 * len(alerts) / max(1, n) / max(1, days), 3),
    }


def _pessimistic_rank(score: float, scores: dict[str, float]) -> int:
    return sum(1 for s in scores.values() if s >= score)


def _budget(n: int, share: float) -> int:
    return max(1, math.ceil(share * n))


def _recall(rows: list[dict[str, Any]], n: int, share: float) -> float | None:
    if not rows:
        return None
    k = _budget(n, share)
    return round(sum(1 for r in rows if r["rank"] is not None and r["rank"] <= k) / len(rows), 4)


def _first_alert(
    alerts: list[Alert], holders: dict[str, list[str]], culprit: Culprit
) -> dt.datetime | None:
    """The culprit's first alert on or after their first act (one on a shared account they held counts).

    Alerts on days before the first act, or raised before it, are false alarms
    (or other stories), not early detection.
    """
    first: dt.datetime | None = None
    for a in alerts:
        if culprit.person not in holders.get(a.person, [a.person]):
            continue
        at = a.detected_at if a.detected_at.tzinfo else a.detected_at.replace(tzinfo=dt.UTC)
        if culprit.first_act is not None and (
            a.window_end < culprit.first_act.date() or at < culprit.first_act
        ):
            continue
        if first is None or at < first:
            first = at
    return first
