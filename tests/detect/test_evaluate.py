"""Evaluation figures: pessimistic ranks, recall at a budget, AUC, delay, truth files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bpoguard.detect.alerts import Alert
from bpoguard.detect.evaluate import Culprit, TruthError, evaluate, load_truth

T0 = dt.datetime(2010, 3, 9, 22, 0, tzinfo=dt.UTC)


def _alert(person: str, at: dt.datetime) -> Alert:
    return Alert(
        1, person, "x", "high", at.date(), at.date(), 1.0, "s", "e", 1, at, at, "new", None, None
    )


def test_a_tie_counts_the_culprit_last_and_recall_uses_the_budget() -> None:
    risks = [{"person": f"p{i}", "score": 0.0} for i in range(98)]
    risks += [{"person": "bad", "score": 5.0}, {"person": "decoy", "score": 5.0}]
    report = evaluate([Culprit("bad", "1", T0)], risks, [], {}, days=10)
    assert report["insiders"][0]["rank"] == 2  # tied with decoy: counted second
    assert report["budget_1pct"] == 1 and report["recall_at_1pct"] == 0.0
    assert report["recall_at_5pct"] == 1.0
    assert report["roc_auc"] == pytest.approx(0.995, abs=1e-3)


def test_delay_counts_only_alerts_from_the_first_act_and_shared_accounts() -> None:
    risks = [{"person": "bad", "score": 1.0}, {"person": "ok", "score": 0.0}]
    early = _alert("bad", T0 - dt.timedelta(days=3))  # a false alarm before the act
    via_box = _alert("box@x", T0 + dt.timedelta(hours=2))
    report = evaluate([Culprit("bad", "1", T0)], risks, [early, via_box], {"box@x": ["bad"]}, 5)
    row = report["insiders"][0]
    assert row["hours_to_first_alert"] == 2.0 and row["within_one_shift"]
    assert report["alerts_per_100_staff_per_day"] == 20.0  # 2 alerts / 2 staff / 5 days


def test_cert_answers_file_is_read_and_bad_dates_named(tmp_path: Path) -> None:
    good = tmp_path / "insiders.csv"
    good.write_text(
        "dataset,scenario,details,user,start,end\n4.2,1,f.csv,ABC1234,03/09/2010 22:00:00,03/17/2010 23:20:51\n"
    )
    (culprit,) = load_truth(good)
    assert culprit.person == "ABC1234" and culprit.first_act == T0
    bad = tmp_path / "bad.csv"
    bad.write_text("dataset,scenario,details,user,start,end\n4.2,1,f.csv,X,2010-03-09,\n")
    with pytest.raises(TruthError, match="line 2"):
        load_truth(bad)
    with pytest.raises(TruthError, match="not found"):
        load_truth(tmp_path / "none.json")
