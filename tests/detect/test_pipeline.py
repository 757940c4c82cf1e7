"""Detection end to end over a workspace: alerts, evidence, triage kept, incremental runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bpoguard import workspace
from bpoguard.detect import alerts, pipeline
from bpoguard.detect.rules import RuleFileError
from bpoguard.workspace import Workspace

from ._lake import DAY0, DIRECTORY, at, ev, story, write_lake

TODAY = DAY0 + dt.timedelta(days=5)
pytestmark = pytest.mark.slow  # each test runs detection whole: a few seconds apiece


@pytest.fixture
def ws(home: Path) -> Workspace:
    workspace.init(home)
    opened = Workspace.open(home)
    write_lake(opened.settings.lake_dir, story())
    return opened


def _run(ws: Workspace, **kwargs: object) -> pipeline.DetectSummary:
    return pipeline.run(ws, today=TODAY, directory=DIRECTORY, **kwargs)  # type: ignore[arg-type]


def _alerts(ws: Workspace) -> list[alerts.Alert]:
    with ws.store.engine.connect() as conn:
        return alerts.list_alerts(conn, limit=1000)


def test_story_culprits_rank_first_with_reasons_in_numbers(ws: Workspace) -> None:
    summary = _run(ws)
    assert summary.alerts_new == summary.alerts_total > 0
    with ws.store.engine.connect() as conn:
        ranked = pipeline.top(conn, 10)
    names = [r["person"] for r in ranked]
    assert set(names[:3]) == {"alice", "bob", "carol"}
    alice = next(r for r in ranked if r["person"] == "alice")
    assert any("revealed 50 distinct customers" in reason for reason in alice["reasons"])
    assert "box@client.example" not in names  # shared accounts pass risk to their holders
    # The box was signed into from carol's home: its findings are hers, not bob's too.
    carol = next(r for r in ranked if r["person"] == "carol")
    assert any("that network is carol's home" in r for r in carol["reasons"])
    assert any("via shared account box@client.example (used from the home network of carol)" in r
               for r in carol["reasons"])  # fmt: skip
    bob = next(r for r in ranked if r["person"] == "bob")
    assert not any("via shared account" in r for r in bob["reasons"])


def test_alert_links_the_events_behind_it(ws: Workspace) -> None:
    _run(ws)
    canary = next(a for a in _alerts(ws) if a.person == "alice" and a.detector == "canary-touched")
    with ws.store.engine.connect() as conn:
        shown = alerts.get(conn, canary.id)
    assert len(shown.evidence) == 1  # exactly the one reveal of the canary
    assert shown.evidence[0][0].startswith("t-")


def test_one_story_one_alert_the_rest_folded_into_it(ws: Workspace) -> None:
    _run(ws)
    mine = [a for a in _alerts(ws) if a.person == "alice"]
    detectors = {a.detector for a in mine}
    assert "canary-touched" in detectors
    # bulk harvest and off-shift reveals that night are in the canary alert's explanation
    assert "bulk-harvest" not in detectors
    top = next(a for a in mine if a.detector == "canary-touched")
    assert "also " in top.explanation


def test_rerun_keeps_triage_and_adds_nothing(ws: Workspace) -> None:
    _run(ws)
    first = _alerts(ws)
    target = first[0]
    with ws.store.engine.begin() as conn:
        alerts.triage(
            conn, target.id, "dismissed", "lead", "known test pattern", dt.datetime.now(dt.UTC)
        )
    again = _run(ws)
    assert again.up_to_date and again.alerts_new == 0
    after = {a.id: a for a in _alerts(ws)}
    assert after[target.id].status == "dismissed"
    assert after[target.id].status_reason == "known test pattern"
    assert len(after) == len(first)


def test_new_day_recomputes_only_from_that_day(ws: Workspace) -> None:
    _run(ws)
    extra = [
        ev(at(5, 10), "record.view", "carol", customer_id=1, interaction_id=9, src_ip="10.1.0.5")
    ]
    write_lake(ws.settings.lake_dir, extra)
    summary = _run(ws)
    assert not summary.up_to_date
    assert summary.days_recomputed == 1
    assert summary.person_days > 0


def test_dismissing_needs_a_reason(ws: Workspace) -> None:
    _run(ws)
    target = _alerts(ws)[0]
    with ws.store.engine.begin() as conn, pytest.raises(alerts.AlertError, match="needs --reason"):
        alerts.triage(conn, target.id, "dismissed", "lead", " ", dt.datetime.now(dt.UTC))


def test_allow_list_entry_suppresses_until_it_expires(ws: Workspace, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[allow]]\nperson = "alice"\ndetector = "*"\nowner = "lead@x.example"\n'
        f'reason = "approved test"\nexpires = {TODAY.isoformat()}\n'
    )
    summary = _run(ws, rules_path=rules)
    assert summary.suppressed > 0
    assert not [a for a in _alerts(ws) if a.person == "alice"]
    expired = pipeline.run(ws, today=TODAY + dt.timedelta(days=1), directory=DIRECTORY,
                           rules_path=rules, since=DAY0)  # fmt: skip
    assert expired.expired_allow and expired.suppressed == 0
    assert [a for a in _alerts(ws) if a.person == "alice"]


def test_user_rule_from_the_rule_file_raises_its_own_alert(ws: Workspace, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nid = "desk-hopping"\nfeature = "foreign_logons"\nabove = 0\ndays = 2\n'
        'severity = "low"\ndescription = "Logged on to a colleague\'s computer"\n'
    )
    _run(ws, rules_path=rules)
    mine = [a for a in _alerts(ws) if a.detector == "desk-hopping"]
    assert [a.person for a in mine] == ["carol"]
    assert "logons to someone else's computer: 1 over the 2 days to" in mine[0].explanation


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[[rule]]\nid = "x1"\nfeature = "nope"\nabove = 1\nseverity = "low"\ndescription = "d"\n',
            "unknown feature 'nope'",
        ),
        (
            '[[rule]]\nid = "x1"\nfeature = "searches"\nabove = 1\nseverity = "dire"\ndescription = "d"\n',
            "severity must be one of",
        ),
        (
            '[[rule]]\nid = "canary-touched"\nfeature = "searches"\nabove = 1\nseverity = "low"\ndescription = "d"\n',
            "already taken",
        ),
        ('[[allow]]\nperson = "a"\ndetector = "*"\nowner = "o"\nreason = "r"\n', "needs expires"),
        ("[[rule]\n", "rule file"),
    ],
)
def test_bad_rule_file_says_what_and_where(
    ws: Workspace, tmp_path: Path, text: str, message: str
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(text)
    with pytest.raises(RuleFileError, match=message):
        _run(ws, rules_path=rules)


@pytest.mark.postgres
def test_detection_and_triage_on_postgresql(home: Path, pg_db: str) -> None:
    workspace.init(home, db=pg_db)
    with Workspace.open(home, pg_db) as ws:
        write_lake(ws.settings.lake_dir, story())
        first = _run(ws)
        target = _alerts(ws)[0]
        with ws.store.engine.begin() as conn:
            alerts.triage(conn, target.id, "escalated", "lead", None, dt.datetime.now(dt.UTC))
        again = _run(ws)
        assert first.alerts_total == again.alerts_total > 0 and again.alerts_new == 0
        assert {a.id: a.status for a in _alerts(ws)}[target.id] == "escalated"
        with ws.store.engine.connect() as conn:
            assert pipeline.top(conn, 1)[0]["person"] in {"alice", "bob"}
