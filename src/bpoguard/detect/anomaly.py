"""Anomaly scores: robust own and peer baselines, and an unsupervised model of days.

- Robust z-scores: a day's value against the person's own median and MAD, and
  against their peers' on that day. A day must stand out from both.
- An Isolation Forest (scikit-learn) over every person-day's feature vector
  (log-scaled). Plain Isolation Forest is weak at low false-positive rates,
  so it only adds a small contribution to risk for the most isolated days;
  the rules and the baselines carry the ranking.
"""

from __future__ import annotations

import numpy as np

from bpoguard.detect.detectors import ANOMALY, BASELINE_FEATURES, Frame, _date, _day
from bpoguard.detect.features import FEATURES, LABELS
from bpoguard.detect.findings import Detector, Finding, Severity

Z_BAR = 6.0  # robust z a day must pass against both its own and its peers' baseline
FOREST_SHARE = 0.005  # the most isolated half percent of person-days
FOREST = Detector(
    "isolated-day", Severity.LOW, "A day the unsupervised model finds among the most isolated"
)


def robust(frame: Frame) -> list[Finding]:
    """Days far outside both the person's own and their peers' robust spread."""
    d = frame.data
    best: dict[tuple[str, object], tuple[float, str]] = {}
    for name, floor in BASELINE_FEATURES.items():
        x = d[name].astype(float)
        own_med = x.groupby(d["person"]).transform("median")
        own_mad = (x - own_med).abs().groupby(d["person"]).transform("median")
        peer_med = x.groupby([d["peer_group"], d["day"]]).transform("median")
        peer_mad = (x - peer_med).abs().groupby([d["peer_group"], d["day"]]).transform("median")
        own_z = (x - own_med) / (1.4826 * own_mad + np.sqrt(own_med) + 1.0)
        peer_z = (x - peer_med) / (1.4826 * peer_mad + np.sqrt(peer_med) + 1.0)
        z = np.minimum(own_z, peer_z)
        hits = d[(z > Z_BAR) & (x >= floor)]
        for i in hits.index:
            key = (str(d.at[i, "person"]), d.at[i, "day"])
            text = (
                f"{FEATURES[name]}: {int(x[i])} on {_date(d.at[i, 'day'])}; own median "
                f"{own_med[i]:g}, peers' median {peer_med[i]:g} (robust z {z[i]:.1f})"
            )
            if key not in best or z[i] > best[key][0]:
                best[key] = (float(z[i]), text)
    return [
        Finding(ANOMALY, person, _day(day), text, weight=min(3.0, z / Z_BAR))
        for (person, day), (z, text) in best.items()
    ]


def forest(frame: Frame, seed: int = 0) -> list[Finding]:
    """The most isolated person-days by an Isolation Forest over log-scaled features."""
    d = frame.data
    columns = [c for c in FEATURES if c != "days_since_notice" and c not in LABELS]
    if len(d) < 50:
        return []
    # Imported here: scikit-learn takes over a second to import, and every bpoguard
    # command that merely reaches detect (the CLI, the simulator's instant rules) paid it.
    from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

    x = np.log1p(d[columns].clip(lower=0).to_numpy(dtype=float))
    model = IsolationForest(n_estimators=100, random_state=seed, contamination="auto")
    model.fit(x)
    score = -model.score_samples(x)
    bar = float(np.quantile(score, 1 - FOREST_SHARE))
    rows = d[score >= bar]
    # Each column's median once: taken per isolated row, it made this step quadratic
    # (13 of 15 minutes of scoring at 30 M events: 2,141 rows x 32 medians of 428,156).
    medians = np.median(x, axis=0)
    found = []
    for i in rows.index:
        top = max(
            columns,
            key=lambda c: (
                float(x[d.index.get_loc(i), columns.index(c)]) - float(medians[columns.index(c)])
            ),
        )
        text = (
            f"day {_date(d.at[i, 'day'])} among the {FOREST_SHARE:.1%} most isolated of all person-days "
            f"(isolation score {score[d.index.get_loc(i)]:.2f}); most unusual: {FEATURES[top]} {int(d.at[i, top])}"
        )
        found.append(Finding(FOREST, str(d.at[i, "person"]), _day(d.at[i, "day"]), text))
    return found
