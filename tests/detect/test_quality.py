"""Detection on a small simulated BPO: the mailbox insider and the ring stand out.

The simulator writes what real logs would hold (everyone's own sign-ins,
everyone's reveals); the detectors never see the ground truth, which is only
read here to check them.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bpoguard import workspace
from bpoguard.detect import alerts, pipeline
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.workspace import Workspace

# Big enough that the ring's team has peers to be measured against, small enough to be quick.
CONFIG = SimConfig(agents=96, customers=3_000, days=6, seed=1, scenarios="mailbox,ring")
pytestmark = pytest.mark.slow  # a world simulated and detected: some 30-60 s on two cores


@dataclass(frozen=True)
class Detected:
    home: Path
    truth: dict[str, Any]
    risks: dict[str, dict[str, Any]]
    alerts: list[alerts.Alert]

    def scenario(self, name: str) -> dict[str, Any]:
        return next(s for s in self.truth["scenarios"] if s["scenario"] == name)


@pytest.fixture(scope="module")
def detected(tmp_path_factory: pytest.TempPathFactory) -> Detected:
    home = tmp_path_factory.mktemp("quality") / "ws"
    workspace.init(home)
    with Workspace.open(home) as ws:
        simulate(ws, CONFIG)
        pipeline.run(ws)
        with ws.store.engine.connect() as conn:
            risks = {r["person"]: r for r in pipeline.top(conn, 10_000)}
            found = alerts.list_alerts(conn, limit=10_000)
    truth = json.loads((home / "sim" / "truth.json").read_text(encoding="utf-8"))
    return Detected(home, truth, risks, found)


def test_mailbox_used_from_home_is_pinned_on_the_insider_not_the_other_holders(
    detected: Detected,
) -> None:
    mailbox = detected.scenario("mailbox")
    (insider,) = mailbox["persons"]
    others = [h for h in mailbox["holders"] if h != insider]
    assert len(others) == 4
    home = [a for a in detected.alerts if a.detector == "shared-account-from-home"]
    assert {a.person for a in home} == {insider}
    assert f"that network is {insider}'s home: {insider}'s own account signed in" in (
        home[0].explanation
    )
    assert any(box in home[0].explanation for box in mailbox["accounts"])
    # The takeover that followed is passed to the insider alone, not shared out.
    mine = detected.risks[insider]
    assert any(f"home network of {insider}" in r for r in mine["reasons"])
    for other in others:
        theirs = detected.risks[other]
        assert not any("via shared account" in r for r in theirs["reasons"]), theirs
        assert theirs["score"] < mine["score"] / 10


def test_ring_members_rank_above_every_peer_at_their_site(detected: Detected) -> None:
    ring = detected.scenario("ring")
    members = set(ring["persons"])
    site = {m.split("-")[0] for m in members}
    assert len(site) == 1
    peers = [p for p in detected.risks if p.split("-")[0] in site and p not in members]
    assert len(peers) >= 15
    lowest_member = min(detected.risks[m]["score"] for m in members)
    assert lowest_member > max(detected.risks[p]["score"] for p in peers)
    flagged = {a.person for a in detected.alerts if a.detector == "contact-reveal-rate"}
    assert members <= flagged
    reason = next(r for r in detected.risks[min(members)]["reasons"] if "phone or e-mail" in r)
    assert "calls in the 7 days to" in reason and "peers" in reason


def test_no_alert_or_reason_carries_a_customer_phone_or_email(detected: Detected) -> None:
    values: set[str] = set()
    for path in (detected.home / "sim").glob("customers-*.csv"):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                values.update(v for v in (row.get("phone"), row.get("email")) if v)
    assert len(values) > 1_000
    texts = [a.explanation for a in detected.alerts] + [
        r for risk in detected.risks.values() for r in risk["reasons"]
    ]
    assert texts
    assert not [v for v in values if any(v in t for t in texts)]
