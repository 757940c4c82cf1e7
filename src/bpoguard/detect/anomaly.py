"""Anomaly scores: robust own and peer baselines, and an unsupervised model of days.

- Robust z-scores: a day's value against the person's own median and MAD, and
  against their peers' on that day. A day must stand out from both.
- An Isolation Forest (scikit-learn) over every person-day's feature vector
  (log-scaled). Plain Isolation Forest is weak at low false-positive rates,
  so it only adds a small contribution to risk for the most isolated days;
  the rules and the baselines carry the ranking.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from bpoguard.detect.detectors import ANOMALY, BASELINE_FEATURES, Frame, _date, _day
from bpoguard.detect.features import FEATURES, LABELS
from bpoguard.detect.findings import Detector, Finding, Severity

Z_BAR = 6.0  # robust z a day must pass against both its own and its peers' baseline
FOREST_SHARE = 0.005  # the most isolated half percent of person-days
THREADS = 2  # the forest is built and scored on the machine's two cores; more only queue
SCORE_BLOCK_MIN = 10_000  # rows below which one thread is quicker than two
FOREST = Detector(
    "isolated-day", Severity.LOW, "A day the unsupervised model finds among the most isolated"
)


def robust(frame: Frame) -> list[Finding]:
    """Days far outside both the person's own and their peers' robust spread."""
    d = frame.data
    best: dict[tuple[str, object], tuple[float, str]] = {}
    # Every feature's medians in one grouping each: the groups are the same for all.
    xs = d[list(BASELINE_FEATURES)].astype(float)
    own, peer = [d["person"]], [d["peer_group"], d["day"]]
    own_meds = xs.groupby(own).transform("median")
    own_mads = (xs - own_meds).abs().groupby(own).transform("median")
    peer_meds = xs.groupby(peer).transform("median")
    peer_mads = (xs - peer_meds).abs().groupby(peer).transform("median")
    for name, floor in BASELINE_FEATURES.items():
        x = xs[name]
        own_med, own_mad = own_meds[name], own_mads[name]
        peer_med, peer_mad = peer_meds[name], peer_mads[name]
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
    # Built on threads: each tree's seed is drawn before any is built, so the trees are
    # the same whatever the number of threads (tested).
    model = IsolationForest(
        n_estimators=100, random_state=seed, contamination="auto", n_jobs=_threads()
    )
    model.fit(x)
    score = -_score_samples(model, x)
    bar = float(np.quantile(score, 1 - FOREST_SHARE))
    rows = np.flatnonzero(score >= bar)
    # Each column's median once: taken per isolated row, it made this step quadratic
    # (13 of 15 minutes of scoring at 30 M events: 2,141 rows x 32 medians of 428,156).
    # The first column furthest above its median, as max() over the columns picks it.
    tops = np.argmax(x[rows] - np.median(x, axis=0), axis=1)
    found = []
    for i, top in zip(rows.tolist(), tops.tolist(), strict=True):
        name = columns[top]
        day = d["day"].iat[i]
        text = (
            f"day {_date(day)} among the {FOREST_SHARE:.1%} most isolated of all person-days "
            f"(isolation score {score[i]:.2f}); most unusual: {FEATURES[name]} {int(d[name].iat[i])}"
        )
        found.append(Finding(FOREST, str(d["person"].iat[i]), _day(day), text))
    return found


def _threads() -> int:
    return max(1, min(THREADS, os.cpu_count() or 1))


def _score_samples(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's score of every row, blocks of rows scored on threads at once.

    A row's score is its own (each tree's depth for it, added in the trees'
    order), so blocks give the very numbers one call does; scikit-learn's
    own ``n_jobs`` splits the trees instead, which adds them in a varying order.
    The trees' descent releases the GIL.
    """
    workers = _threads()
    if workers == 1 or len(x) < 2 * SCORE_BLOCK_MIN:
        result: np.ndarray = model.score_samples(x)
        return result
    blocks = np.array_split(x, workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.concatenate(list(pool.map(model.score_samples, blocks)))
