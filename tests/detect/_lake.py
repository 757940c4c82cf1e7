"""A small hand-made lake whose every feature value is known in advance."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

from bpoguard.detect.people import Directory, Person
from bpoguard.events.lake import LakeWriter
from bpoguard.events.schema import Event

DAY0 = dt.date(2026, 5, 1)
PREMISES_IP = "10.1.0.5"
HOME_IP = "203.0.113.9"
RIVAL_IP = "198.51.100.7"
CARRIER_IP = "100.64.0.9"  # a mobile carrier's shared address: many subscribers behind it

DIRECTORY = Directory(
    people=(
        Person("alice", role="agent", team="t1", site="S1", shift_start=9 * 60, shift_minutes=540),
        Person("bob", role="agent", team="t1", site="S1", shift_start=9 * 60, shift_minutes=540),
        Person("carol", role="agent", team="t1", site="S1", shift_start=9 * 60, shift_minutes=540),
    ),
    premises=(("S1", "10.1.0.0/16"),),
    holders=(("box@client.example", "bob"), ("box@client.example", "carol")),
)

_ids = itertools.count(1)


def at(day: int, hour: float) -> dt.datetime:
    """A time on DAY0 + day at a UTC hour."""
    base = dt.datetime.combine(DAY0 + dt.timedelta(days=day), dt.time(0), tzinfo=dt.UTC)
    return base + dt.timedelta(hours=hour)


def ev(when: dt.datetime, action: str, actor: str, **fields: Any) -> Event:
    """One event with defaults for the columns a test does not care about."""
    fields.setdefault("outcome", "allowed" if action.startswith("record.") else "success")
    fields.setdefault("source", "test")
    return Event(event_id=f"t-{next(_ids)}", time=when, action=action, actor=actor, **fields)


def normal_day(day: int, who: str, customers: range) -> list[Event]:
    """An ordinary shift: logon, a call per customer with a view, logoff."""
    events = [ev(at(day, 8.9), "auth.logon", who, src_ip=PREMISES_IP, device_id=f"D-{who}")]
    for i, c in enumerate(customers):
        t = at(day, 9.5 + i * 0.05)
        events.append(ev(t, "record.view", who, customer_id=c, interaction_id=1000 * day + c,
                         src_ip=PREMISES_IP, device_id=f"D-{who}"))  # fmt: skip
    events.append(ev(at(day, 18.0), "auth.logoff", who, src_ip=PREMISES_IP, device_id=f"D-{who}"))
    return events


def story() -> list[Event]:
    """Five days: alice harvests on day 4; a mailbox is taken over; bob leaves and copies."""
    events: list[Event] = []
    for day in range(5):
        for who in ("alice", "bob", "carol"):
            if who == "bob" and day > 2:
                continue
            events += normal_day(day, who, range(10 * day, 10 * day + 10))
    # alice, day 4, 02:00 UTC (off shift): 50 customers viewed and revealed with no interaction,
    # one of them a canary, from a laptop never used before.
    for i in range(50):
        t = at(4, 2.0 + i / 60)
        common = {"customer_id": 500 + i, "src_ip": PREMISES_IP, "device_id": "LT-new"}
        events.append(ev(t, "record.view", "alice", **common))
        events.append(ev(t, "record.reveal", "alice", canary=(i == 7), **common))
    # The shared mailbox: office sign-ins, then home and rival at once on day 3, password changed.
    box = "box@client.example"
    for day in range(5):
        events.append(ev(at(day, 10), "mailbox.signin", box, account=box, src_ip=PREMISES_IP))
    events.append(ev(at(3, 20.1), "mailbox.signin", box, account=box, src_ip=HOME_IP))
    # carol's phone signs in to her own account from that home on days 1 and 2; everyone's
    # phone on day 1 from the carrier's shared address (no one's home).
    for day in (1, 2):
        events.append(ev(at(day, 19.5), "auth.signin", "carol", account="carol@p.example",
                         src_ip=HOME_IP))  # fmt: skip
    for who in ("alice", "bob", "carol"):
        events.append(ev(at(1, 8.0), "auth.signin", who, account=f"{who}@p.example",
                         src_ip=CARRIER_IP))  # fmt: skip
    events.append(ev(at(3, 20.4), "mailbox.signin", box, account=box, src_ip=RIVAL_IP))
    events.append(ev(at(3, 20.5), "account.password_change", box, account=box, src_ip=RIVAL_IP))
    events.append(ev(at(4, 10.2), "mailbox.signin", box, account=box, src_ip=PREMISES_IP,
                     outcome="failure"))  # fmt: skip
    # bob gives notice on day 1, leaves on day 2; on day 2 copies files, mails, uploads;
    # on day 4 he is still reading from home.
    events.append(ev(at(1, 10), "hr.notice", "bob"))
    events.append(ev(at(2, 12), "hr.leave", "bob"))
    events.append(ev(at(2, 11), "device.connect", "bob", device_id="D-bob", removable=True))
    for i in range(3):
        events.append(ev(at(2, 11.1), "file.copy", "bob", removable=True, dest=f"E:/list{i}.xlsx"))
    events.append(ev(at(2, 11.2), "email.send", "bob", dest="bob.private@GMAIL.com", attachments=2))
    events.append(ev(at(2, 11.3), "email.send", "bob", dest="colleague@meridian.example",
                     attachments=1))  # fmt: skip
    events.append(ev(at(2, 11.35), "email.send", "bob",
                     dest="hr@rival.example,a@meridian.example,b@meridian.example"))  # fmt: skip
    events.append(ev(at(2, 11.4), "web.upload", "bob", dest="https://www.dropbox.com/upload"))
    events.append(ev(at(2, 11.5), "web.visit", "bob", dest="https://www.indeed.com/jobs?q=agent"))
    for i in range(4):
        events.append(ev(at(4, 15 + i / 60), "record.view", "bob", customer_id=900 + i,
                         src_ip=HOME_IP, device_id="D-bob"))  # fmt: skip
    # carol logs on to alice's computer on day 4.
    events.append(ev(at(4, 12), "auth.logon", "carol", src_ip=PREMISES_IP, device_id="D-alice"))
    return events


def write_lake(lake_dir: Path, events: list[Event] | None = None) -> Path:
    """Write the events (the story by default) into a lake; returns the lake folder."""
    with LakeWriter(lake_dir, source="test") as writer:
        for event in events if events is not None else story():
            writer.write(event)
    return lake_dir
