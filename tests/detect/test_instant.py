"""Instant rules: raised inside the decision's own transaction, one alert per episode."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, func, select

from bpoguard.access import Verb
from bpoguard.audit import DecisionRecord
from bpoguard.detect import alerts
from bpoguard.detect._tables import detect_alerts, detect_evidence
from bpoguard.detect.instant import InstantRules
from bpoguard.fields import FieldType
from bpoguard.guard.directory import Directory, SiteInfo, StaffInfo
from bpoguard.store import models as m

LEFT = dt.date(2026, 3, 10)
DIRECTORY = Directory(
    staff={
        "A1": StaffInfo("A1", m.StaffRole.AGENT, "S1", "day-09", None, None),
        "L1": StaffInfo("L1", m.StaffRole.AGENT, "S1", "day-09", LEFT - dt.timedelta(14), LEFT),
    },
    devices={},
    sites={"S1": SiteInfo("S1", ZoneInfo("UTC"), (ipaddress.ip_network("10.1.0.0/16"),), {})},
    contracts={},
)
AT = dt.datetime(2026, 3, 12, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = create_engine("sqlite://")
    with eng.begin() as conn:
        detect_alerts.create(conn)
        detect_evidence.create(conn)
    yield eng
    eng.dispose()


def _record(staff: str = "A1", **changes: object) -> DecisionRecord:
    base: dict[str, object] = {
        "at": AT,
        "staff_id": staff,
        "verb": Verb.VIEW,
        "customer_id": 42,
        "fields": (FieldType.NAME,),
        "source_ip": "10.1.2.3",
        "device_id": "D1",
        "interaction_id": 7,
        "allowed": True,
        "reasons": ("allowed",),
    }
    base.update(changes)
    return DecisionRecord(**base)  # type: ignore[arg-type]


def _detectors(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(detect_alerts.c.person, detect_alerts.c.detector, detect_alerts.c.firings)
        )
        return sorted((r.person, r.detector, r.firings) for r in rows)


def test_an_ordinary_decision_raises_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        InstantRules(DIRECTORY).on_decision(conn, _record(), 1)
    assert _detectors(engine) == []


def test_each_instant_rule_raises_its_alert_with_the_ledger_entry(engine: Engine) -> None:
    rules = InstantRules(DIRECTORY)
    with engine.begin() as conn:
        rules.on_decision(conn, _record(canary=True), 10)
        rules.on_decision(conn, _record(verb=Verb.REVEAL, interaction_id=None), 11)
        rules.on_decision(conn, _record("L1"), 12)
        rules.on_decision(conn, _record(source_ip="203.0.113.9"), 13)
    assert _detectors(engine) == [
        ("A1", "canary-touched", 1),
        ("A1", "off-premises", 1),
        ("A1", "reveal-without-interaction", 1),
        ("L1", "after-leaving", 1),
    ]
    with engine.connect() as conn:
        leaver = next(a for a in alerts.list_alerts(conn) if a.detector == "after-leaving")
        shown = alerts.get(conn, leaver.id)
    assert shown.evidence == (("ledger-12", 12),)
    assert shown.detected_at.replace(tzinfo=dt.UTC) == AT  # the decision's own time
    assert "left 2026-03-10" in shown.explanation


def test_the_alert_rolls_back_with_the_decision(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        InstantRules(DIRECTORY).on_decision(conn, _record(canary=True), 10)
        raise RuntimeError("the decision's transaction failed")
    assert _detectors(engine) == []


def test_repeats_extend_one_alert_and_a_later_episode_gets_its_own(engine: Engine) -> None:
    rules = InstantRules(DIRECTORY)
    reveal = {"verb": Verb.REVEAL, "interaction_id": None}
    with engine.begin() as conn:
        for i in range(3):
            rules.on_decision(conn, _record(at=AT + dt.timedelta(minutes=i), **reveal), 20 + i)
        rules.on_decision(conn, _record(at=AT + dt.timedelta(days=2), **reveal), 30)
        rules.on_decision(conn, _record(at=AT + dt.timedelta(days=9), **reveal), 31)
    assert _detectors(engine) == [
        ("A1", "reveal-without-interaction", 1),
        ("A1", "reveal-without-interaction", 4),
    ]
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(detect_evidence)) == 5


def test_a_new_critical_alert_is_logged_once(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    rules = InstantRules(DIRECTORY)
    with caplog.at_level(logging.CRITICAL, "bpoguard.detect"), engine.begin() as conn:
        rules.on_decision(conn, _record(canary=True), 10)
        rules.on_decision(conn, _record(canary=True, customer_id=43), 11)
    lines = [r.getMessage() for r in caplog.records if r.name == "bpoguard.detect"]
    assert len(lines) == 1 and "canary-touched" in lines[0]
