"""Daily features over a hand-made lake: each value is the one the story implies."""

from __future__ import annotations

import datetime as dt
import ipaddress
import warnings
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from bpoguard.detect import features
from bpoguard.detect.engine import DuckDBEngine, Engine, SparkEngine
from bpoguard.detect.lakefiles import lake_files
from bpoguard.detect.people import Directory, Person

from ._lake import CARRIER_IP, DAY0, DIRECTORY, HOME_IP, at, ev, story, write_lake

RIVALS = features.Domains(competitors=("rival.example",))


def _features(engine: Engine, lake: Path, **spec: Any) -> pa.Table:
    events = engine.read_parquet(lake_files(lake))
    spec.setdefault("domains", RIVALS)
    return features.collect(engine, events, features.FeatureSpec(directory=DIRECTORY, **spec))


def _row(table: pa.Table, person: str, day: int) -> dict[str, Any]:
    rows = [
        r
        for r in table.to_pylist()
        if r["person"] == person and r["day"] == DAY0 + dt.timedelta(days=day)
    ]
    assert len(rows) == 1, (person, day)
    return rows[0]


@pytest.fixture
def table(lake: Path) -> pa.Table:
    engine = DuckDBEngine()
    try:
        return _features(engine, lake)
    finally:
        engine.close()


def test_harvest_night_counts_customers_reveals_canary_and_off_shift(table: pa.Table) -> None:
    row = _row(table, "alice", 4)
    assert row["customers_viewed"] == 60  # ten calls and fifty harvested
    assert row["customers_revealed"] == 50
    assert row["reveals_no_interaction"] == 50
    assert row["records_no_interaction"] == 100
    assert row["canary_hits"] == 1
    assert row["off_shift"] == 100  # 02:00 UTC; the shift is 09:00-18:00
    assert row["new_devices"] == 1  # the laptop
    assert row["off_premises"] == 0
    assert _row(table, "alice", 3)["customers_viewed"] == 10
    assert _row(table, "alice", 3)["off_shift"] == 0


def test_mailbox_takeover_counts_new_networks_concurrency_and_password_change(
    table: pa.Table,
) -> None:
    row = _row(table, "box@client.example", 3)
    assert row["new_networks"] == 2  # home and rival
    assert row["off_premises"] == 3  # two sign-ins and the password change
    assert row["concurrent_networks"] == 2  # home and rival within the 20:00 hour
    assert row["password_changes"] == 1
    assert row["signins_ok"] == 3
    after = _row(table, "box@client.example", 4)
    assert after["signins_failed"] == 1
    assert after["new_networks"] == 0
    assert _row(table, "box@client.example", 0)["new_networks"] == 0  # first day: no history


def test_leaver_data_movement_notice_and_after_leaving(table: pa.Table) -> None:
    day2 = _row(table, "bob", 2)
    assert day2["days_since_notice"] == 1
    assert day2["device_connects"] == 1
    assert day2["removable_files"] == 3
    assert day2["emails_sent"] == 3
    assert day2["emails_out"] == 1  # the gmail one, whatever its case
    assert day2["max_recipients"] == 3
    assert day2["emails_competitor"] == 1  # rival.example is a competitor in this test
    assert day2["leak_site_visits"] == 1
    assert day2["job_search"] == 1
    assert day2["after_leaving"] == 0  # the leaving day itself
    day4 = _row(table, "bob", 4)
    assert day4["after_leaving"] == 4
    assert day4["off_premises"] == 4
    assert day4["new_networks"] == 1
    assert _row(table, "bob", 0)["days_since_notice"] == -1


def test_logon_to_someone_elses_computer(table: pa.Table) -> None:
    assert _row(table, "carol", 4)["foreign_logons"] == 1
    assert _row(table, "alice", 4)["foreign_logons"] == 0


def test_since_keeps_history_but_returns_only_later_days(lake: Path) -> None:
    engine = DuckDBEngine()
    part = _features(engine, lake, since=DAY0 + dt.timedelta(days=4))
    assert {r["day"] for r in part.to_pylist()} == {DAY0 + dt.timedelta(days=4)}
    # new devices still know the earlier days: alice's desk is not new on day 4
    assert _row(part, "alice", 4)["new_devices"] == 1


def test_no_premises_networks_means_nothing_is_off_premises(lake: Path) -> None:
    engine = DuckDBEngine()
    events = engine.read_parquet(lake_files(lake))
    bare = features.FeatureSpec(directory=type(DIRECTORY)(people=DIRECTORY.people))
    table = features.collect(engine, events, bare)
    assert sum(table.column("off_premises").to_pylist()) == 0


@pytest.mark.slow
def test_duckdb_and_spark_give_identical_feature_tables(lake: Path, spark: Any) -> None:
    duck = _features(DuckDBEngine(), lake)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pyspark: pandas 3 "not fully supported"
        sparked = _features(SparkEngine(session=spark), lake)
    assert duck.num_rows == sparked.num_rows >= 19
    assert duck.equals(sparked), [
        name for name in duck.column_names if duck.column(name) != sparked.column(name)
    ]


def test_shared_account_signin_from_a_holders_home_counts_for_that_holder_only(
    table: pa.Table,
) -> None:
    carol = _row(table, "carol", 3)
    assert carol["shared_home_signins"] == 1  # the box from her home; the rival's is no one's
    assert carol["home_network_days"] == 2  # her own account used it on days 1 and 2
    assert carol["shared_home_address"] == int(ipaddress.IPv4Address(HOME_IP))
    assert carol["shared_home_minute"] == 20 * 60 + 6
    assert sum(r["shared_home_signins"] for r in table.to_pylist() if r["person"] == "bob") == 0
    assert _row(table, "carol", 2)["shared_home_signins"] == 0
    # a phone signing in to its owner's account from home is not work off the premises
    assert _row(table, "carol", 1)["off_premises"] == 0
    assert _row(table, "carol", 1)["off_shift"] == 0
    assert _row(table, "carol", 1)["signins_ok"] == 3  # the logon and two from her phone


def test_a_carriers_shared_address_is_no_ones_home(tmp_path: Path) -> None:
    box = "box@client.example"
    extra = [ev(at(2, 21.0), "mailbox.signin", box, account=box, src_ip=CARRIER_IP)]
    lake = write_lake(tmp_path / "lake", story() + extra)
    table = _features(DuckDBEngine(), lake)
    assert _row(table, box, 2)["off_premises"] == 1
    # alice, bob and carol all signed in from it: it names none of them
    assert all(_row(table, who, 2)["shared_home_signins"] == 0 for who in ("bob", "carol"))


def test_contact_reveals_count_phone_and_email_served_not_denied(tmp_path: Path) -> None:
    def reveal(i: int, fields: list[str], outcome: str = "allowed") -> Any:
        return ev(at(0, 10 + i / 10), "record.reveal", "alice", customer_id=i, fields=fields,
                  interaction_id=100 + i, outcome=outcome, src_ip="10.1.0.5")  # fmt: skip

    events = [
        reveal(1, ["phone"]),
        reveal(2, ["email"]),
        reveal(3, ["balance"]),
        reveal(4, ["phone"], "denied"),
        ev(at(0, 11), "record.view", "alice", customer_id=5, interaction_id=105),
    ]
    table = _features(DuckDBEngine(), write_lake(tmp_path / "lake", events))
    row = _row(table, "alice", 0)
    assert row["contact_reveals"] == 2
    assert row["interactions"] == 5


def test_duckdb_epoch_seconds_round_down_around_midnight_and_before_1970() -> None:
    utc = dt.UTC
    times = [
        dt.datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=utc),
        dt.datetime(1970, 1, 1, tzinfo=utc),
        dt.datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=utc),
        dt.datetime(2024, 3, 1, tzinfo=utc),
    ]
    engine = DuckDBEngine()
    try:
        t = engine.table(pa.table({"time": pa.array(times, pa.timestamp("us", tz="UTC"))}))
        got = engine.to_arrow(t.select(s=engine.epoch_seconds(t.time))).column("s").to_pylist()
    finally:
        engine.close()
    epoch = dt.datetime(1970, 1, 1, tzinfo=utc)
    assert got == [(when - epoch) // dt.timedelta(seconds=1) for when in times]
    assert got == [-1, 0, 1_709_251_199, 1_709_251_200]


def test_default_shifts_count_outside_seven_to_nineteen_utc_with_the_grace(tmp_path: Path) -> None:
    # CERT's directory: everyone on the default shift, so no shift join is made.
    plain = Directory(people=(Person("dan"),))
    minutes = {"06:29": 6 + 29 / 60, "06:31": 6 + 31 / 60, "19:29": 19 + 29 / 60, "19:31": 19.52}
    events = [ev(at(0, h), "web.visit", who, dest="http://a.example/") for h in minutes.values()
              for who in ("dan", "erin")]  # fmt: skip
    lake = write_lake(tmp_path / "lake", events)
    engine = DuckDBEngine()
    try:
        table = features.collect(
            engine, engine.read_parquet(lake_files(lake)), features.FeatureSpec(directory=plain)
        )
    finally:
        engine.close()
    # 06:29 and 19:31 are more than 30 minutes outside 07:00-19:00; erin is not in the
    # directory at all and gets the same default shift.
    assert _row(table, "dan", 0)["off_shift"] == 2
    assert _row(table, "erin", 0)["off_shift"] == 2


def test_domain_lists_count_every_visit_of_a_destination_whatever_its_case(
    tmp_path: Path,
) -> None:
    url = "https://WWW.DropBox.com/s/list.xlsx"
    events = [ev(at(0, 10 + i / 10), "web.upload", "alice", dest=url) for i in range(3)]
    events += [
        ev(at(0, 11), "web.visit", "alice", dest="https://www.dropbox.com/s/list.xlsx"),
        # The same text as a copied file's destination is no web visit.
        ev(at(0, 11.1), "file.copy", "alice", dest=url, removable=True),
        ev(at(0, 11.2), "email.send", "alice", dest="Me@Gmail.com", attachments=1),
        ev(at(0, 11.3), "email.send", "alice", dest="Me@Gmail.com"),  # no attachment
        ev(at(0, 11.4), "email.send", "alice", dest="x@rival.example,me@gmail.com"),
        ev(at(0, 11.5), "web.visit", "alice", dest="https://rival.example/keylogger-pro"),
    ]
    table = _features(DuckDBEngine(), write_lake(tmp_path / "lake", events))
    row = _row(table, "alice", 0)
    assert row["leak_site_visits"] == 4
    assert row["emails_out"] == 1
    assert row["emails_competitor"] == 1
    assert row["hacking_sites"] == 1
    assert row["removable_files"] == 1
    assert row["max_recipients"] == 2


def test_feature_query_reads_only_narrow_columns_and_no_calendar_per_event(lake: Path) -> None:
    # Where the CPU went at 30 M events: the wide raw column carried through a shared
    # table, and a time-zone calendar conversion of every event's timestamp.
    engine = DuckDBEngine()
    try:
        expr = features.daily(
            engine, engine.read_parquet(lake_files(lake)), features.FeatureSpec(DIRECTORY)
        )
        sql = str(engine.backend.compile(expr))
    finally:
        engine.close()
    assert '"raw"' not in sql
    assert "AS TIMESTAMP)" not in sql
    assert "EPOCH_US" in sql


def test_distinct_counts_in_a_pass_of_their_own_give_the_same_table(lake: Path) -> None:
    # Spark runs them apart (Engine.distinct_pass); the reference engine does too here.
    class Apart(DuckDBEngine):
        distinct_pass = True

    together, apart = _features(DuckDBEngine(), lake), _features(Apart(), lake)
    assert sum(together.column("customers_viewed").to_pylist()) > 0
    assert together.equals(apart)
