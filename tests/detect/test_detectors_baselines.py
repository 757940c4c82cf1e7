"""The vectorised baselines give exactly the numbers of their plain, group-by-group definitions.

Each reference below is the straightforward formulation the detectors used
before they were made to scale (a loop per group, a rolling window per
person); the fast versions must agree with them bit for bit, since findings,
alerts and risk scores are compared across versions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from bpoguard.detect import anomaly, detectors
from bpoguard.detect.detectors import HISTORY_DAYS, MIN_HISTORY, MIN_PEERS


def _loo_quantile(a: np.ndarray, q: float) -> np.ndarray:
    """For each element, the q-quantile (linear) of the others: sort, skip its own place."""
    order = np.argsort(a, kind="stable")
    s = a[order]
    rank = np.empty(len(a), dtype=np.int64)
    rank[order] = np.arange(len(a))
    h = q * (len(a) - 2)
    lo = int(np.floor(h))
    hi = min(lo + 1, len(a) - 2)
    frac = h - lo

    def at(k: int) -> np.ndarray:
        return np.where(k < rank, s[k], s[np.minimum(k + 1, len(a) - 1)])

    result: np.ndarray = at(lo) * (1 - frac) + at(hi) * frac
    return result


def _loo_by_group(values: np.ndarray, codes: np.ndarray, q: float) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for code in np.unique(codes):
        index = np.flatnonzero(codes == code)
        if len(index) > MIN_PEERS:
            out[index] = _loo_quantile(values[index], q)
    return out


def _narrowest_reference(values: np.ndarray, levels: dict[str, np.ndarray]) -> np.ndarray:
    peers = pd.Series(np.nan, index=range(len(values)))
    for codes in levels.values():
        peers = peers.fillna(pd.Series(_loo_by_group(values, codes, 0.95)))
    return peers.to_numpy()


def _own_reference(data: pd.DataFrame, name: str) -> np.ndarray:
    shifted = data.groupby("person")[name].shift(1)
    rolled = (
        shifted.groupby(data["person"])
        .rolling(HISTORY_DAYS, min_periods=MIN_HISTORY)
        .median()
        .reset_index(level=0, drop=True)
    )
    return rolled.sort_index().to_numpy()


def _peer_rate_reference(d: pd.DataFrame, groups: list[str]) -> np.ndarray:
    out = np.full(len(d), np.nan)
    c, n = d["c7"].to_numpy(dtype=float), d["n7"].to_numpy(dtype=float)
    keys = pd.MultiIndex.from_arrays([groups, d["day"]])
    for index in pd.Series(range(len(d))).groupby(keys).indices.values():
        if len(index) <= MIN_PEERS:
            continue
        ci, ni = c[index], n[index]
        median = _loo_quantile(np.divide(ci, np.maximum(ni, 1.0)), 0.5)
        kept = ~((ci >= detectors.CONTACT_MIN) & (ci >= detectors.OUTLIER_RATIO * ni * median))
        peer_c = (ci * kept).sum() - ci * kept
        peer_n = (ni * kept).sum() - ni * kept
        out[index] = np.divide(peer_c, peer_n, out=np.full(len(index), np.nan), where=peer_n > 0)
    return out


counts = st.lists(st.integers(0, 60), min_size=0, max_size=250)


@settings(max_examples=60, deadline=None)
@given(counts, st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_own_medians_are_the_rolling_median_of_each_persons_earlier_days(
    values: list[int], people: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    persons = np.sort(rng.integers(0, people, len(values))).astype(str)
    data = pd.DataFrame({"person": persons, "a": values, "b": [v * v for v in values]})
    fast = detectors._own_medians(data, ["a", "b"])
    for name in ("a", "b"):
        assert np.array_equal(fast[name].to_numpy(), _own_reference(data, name), equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(counts, st.integers(1, 30), st.integers(0, 2**32 - 1), st.booleans())
def test_peer_bars_equal_the_narrowest_level_worked_out_group_by_group(
    values: list[int], groups: int, seed: int, fractional: bool
) -> None:
    rng = np.random.default_rng(seed)
    n = len(values)
    array = np.array(values, dtype=float) / (7.0 if fractional else 1.0)  # lexsort path too
    if seed % 5 == 0:
        array[:] = 0.0  # a feature nobody has
    levels = {
        "team": rng.integers(0, groups, n),
        "site": rng.integers(0, max(1, groups // 4), n),
        "role": np.zeros(n, dtype=np.int64),
    }
    assert np.array_equal(
        detectors._narrowest_p95(array, detectors._peer_levels(levels)),
        _narrowest_reference(array, levels),
        equal_nan=True,
    )


def test_peer_bar_leaves_the_person_out_and_needs_more_than_min_peers() -> None:
    values = np.array([1.0, 2, 3, 4, 5, 6, 100, 7, 8])
    codes = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1])
    bars = detectors._leave_one_out_quantiles(values, codes, 0.95)
    # The harvester's (100) bar is the others' 95th percentile, not raised by itself.
    assert bars[6] == np.quantile([1, 2, 3, 4, 5, 6], 0.95)
    assert bars[0] == np.quantile([2, 3, 4, 5, 6, 100], 0.95)
    assert np.isnan(bars[7:]).all()  # two in their group: no bar


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 300), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_contact_peer_rate_equals_the_loop_over_groups_and_days(
    rows: int, teams: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n7 = rng.poisson(rng.uniform(1, 80), rows).astype(float)
    c7 = np.minimum(n7, rng.poisson(rng.uniform(0.1, 25), rows)).astype(float)
    day = pd.to_datetime("2026-03-01") + pd.to_timedelta(rng.integers(0, 4, rows), unit="D")
    d = pd.DataFrame({"day": day, "c7": c7, "n7": n7})
    groups = [f"team:{g}" for g in rng.integers(0, teams, rows)]
    fast = detectors._peer_rate(d, groups).to_numpy()
    assert np.array_equal(fast, _peer_rate_reference(d, groups), equal_nan=True)


def test_forest_built_and_scored_on_threads_equals_one_thread() -> None:
    from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

    rng = np.random.default_rng(5)
    x = np.log1p(rng.poisson(3, (3 * anomaly.SCORE_BLOCK_MIN, 6)).astype(float))
    model = IsolationForest(n_estimators=20, random_state=0).fit(x)
    threaded = IsolationForest(n_estimators=20, random_state=0, n_jobs=2).fit(x)
    assert np.array_equal(anomaly._score_samples(threaded, x), model.score_samples(x))
