"""Daily insider-risk features per person, written once as Ibis expressions.

The same expressions run on DuckDB and on Spark (:mod:`bpoguard.detect.engine`);
the result is one row per person and UTC day with the counts in
:data:`FEATURES`. Shared accounts (a client's mailbox) are "persons" here too,
keyed by the account name, so that their sign-ins can be compared with their
own past; risk later passes them on to the people they were given to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import ibis  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.compute as pc
from ibis import _

from bpoguard.detect import domains
from bpoguard.detect.engine import Engine
from bpoguard.detect.people import DEFAULT_SHIFT_MINUTES, DEFAULT_SHIFT_START, Directory
from bpoguard.events.schema import Action

# Minutes either side of a shift that still count as in it (logging on early, finishing a call).
SHIFT_GRACE = 30

# What each feature counts, in the words explanations use.
FEATURES: dict[str, str] = {
    "events": "events",
    "customers_viewed": "distinct customers viewed",
    "customers_revealed": "distinct customers revealed",
    "reveals_no_interaction": "reveals with no open interaction",
    "records_no_interaction": "record requests with no open interaction",
    "customers_exported": "distinct customers exported",
    "searches": "customer searches",
    "denials": "requests the guard denied",
    "canary_hits": "requests for canary customers",
    "off_shift": "actions outside the shift",
    "off_premises": "actions from outside the premises",
    "new_devices": "devices never used before",
    "new_networks": "networks never used before",
    "signins_ok": "successful sign-ins",
    "signins_failed": "failed sign-ins",
    "password_changes": "password changes or resets",
    "concurrent_networks": "networks one account was used from in one hour",
    "foreign_logons": "logons to someone else's computer",
    "device_connects": "removable devices connected",
    "removable_files": "files copied to or from removable media",
    "emails_sent": "e-mails sent",
    "emails_out": "e-mails with attachments to personal or competitor addresses",
    "emails_competitor": "e-mails to competitors' addresses",
    "max_recipients": "recipients of the widest e-mail sent",
    "leak_site_visits": "visits and uploads to file-sharing or leak sites",
    "job_search": "visits to job-search sites",
    "hacking_sites": "visits to keylogger or hacking-tool sites",
    "days_since_notice": "days since notice was given (-1: none)",
    "after_leaving": "actions after the leaving date",
    "interactions": "calls and tickets served",
    "contact_reveals": "phone numbers and e-mail addresses revealed",
    "shared_home_signins": "sign-ins to a shared account held, from the person's own home network",
    "home_network_days": "days the person's own account signed in from that network",
    # Labels, not counts: which address and when, for the explanation (0 when none).
    "shared_home_address": "that network's address (IPv4 as a number)",
    "shared_home_minute": "UTC minute of the day of the first such sign-in",
}
# Features that name something rather than count it: no model should weigh them.
LABELS = ("shared_home_address", "shared_home_minute")
KEYS = ("person", "day")

_ACTIVITY_PREFIXES = (
    "record.",
    "file.",
    "email.send",
    "web.",
    "device.connect",
    "auth.",
    "mailbox.",
    "account.",
)
_SIGNINS = (Action.MAILBOX_SIGNIN.value, Action.SIGNIN.value, Action.LOGON.value)
_CONTACT_FIELDS = ("phone", "email")
# A network more staff's own accounts use than this is no one's home: a carrier's
# shared mobile address, an office, a café. Two allows a household of colleagues.
HOME_MAX_USERS = 2
_PASSWORDS = (Action.PASSWORD_CHANGE.value, Action.PASSWORD_RESET.value)


@dataclass(frozen=True)
class Domains:
    """The domain lists the web and e-mail features match (shipped lists plus the rule file's)."""

    personal: tuple[str, ...] = domains.PERSONAL_MAIL
    competitors: tuple[str, ...] = ()
    file_sharing: tuple[str, ...] = domains.FILE_SHARING
    job_search: tuple[str, ...] = domains.JOB_SEARCH
    hacking: tuple[str, ...] = domains.HACKING


@dataclass(frozen=True)
class FeatureSpec:
    """What the features are computed over: days from ``since``, with this directory."""

    directory: Directory = field(default_factory=Directory)
    domains: Domains = field(default_factory=Domains)
    since: dt.date | None = None
    until: dt.date | None = None


def daily(engine: Engine, events: ir.Table, spec: FeatureSpec) -> ir.Table:
    """The daily feature table: one row per person and day, every feature a count.

    Each part reads only the columns it needs straight from the lake, with the
    day as an integer (days since 1970) until the last step: the parts share no
    wide intermediate table that the engine would have to materialise, and the
    calendar work is done on the person-day rows, not on every event.
    """
    lake = _Lake(engine, events, spec)
    counts = _counts(lake)
    first_day = counts.group_by("person").aggregate(pfirst=counts.eday.min())
    parts = [_records(lake)] if engine.distinct_pass else []
    parts += [
        _first_seen(
            lake.events_with("device_id").rename(value="device_id"), first_day, "new_devices"
        ),
        _first_seen(lake.networks(), first_day, "new_networks"),
        _concurrent(lake),
        _foreign_logons(lake),
        _shared_from_home(lake),
    ]
    table = counts
    for part in parts:
        table = table.left_join(part, ["person", "eday"]).drop("person_right", "eday_right")
    table = _hr(counts, table)
    fill = {name: 0 for name in FEATURES if name != "days_since_notice"}
    table = table.fill_null(fill).mutate(day=(_.eday * 86400).as_timestamp("s").date())
    if spec.since is not None:
        table = table.filter(table.eday >= _epoch_day(spec.since))
    if spec.until is not None:
        table = table.filter(table.eday <= _epoch_day(spec.until))
    return table.select(*KEYS, *FEATURES).order_by(list(KEYS))


def collect(engine: Engine, events: ir.Table, spec: FeatureSpec) -> pa.Table:
    """Run :func:`daily` on the engine; features as int64 columns, days as dates."""
    table = engine.to_arrow(daily(engine, events, spec))
    return table.cast(FEATURE_SCHEMA)


FEATURE_SCHEMA = pa.schema(
    [("person", pa.string()), ("day", pa.date32())] + [(n, pa.int64()) for n in FEATURES]
)


def _epoch_day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


class _Lake:
    """Narrow views of the events, each with the person, epoch day and minute of the day.

    Every view is its own projection of the lake's files (the engine reads only
    those columns), so no part pays for another part's columns.
    """

    def __init__(self, engine: Engine, events: ir.Table, spec: FeatureSpec) -> None:
        self.engine = engine
        self.events = events
        self.spec = spec
        self.network_table = spec.directory.network_table()
        self.accounts = _accounts(spec)

    def events_with(self, *columns: str, minute: bool = False) -> ir.Table:
        """Person, epoch day (and minute of the day) and these columns of every event."""
        # The filter on the actor is each view's own: a filter shared by every view
        # would be one common table, which DuckDB materialises whole.
        e = self.events
        seconds = self.engine.epoch_seconds(e.time)
        eday = seconds // 86400
        derived: dict[str, ir.Value] = {"person": e.actor, "eday": eday}
        if minute:
            derived["minute"] = seconds // 60 - eday * 1440
        view = e.select(**derived, **{c: e[c] for c in columns})
        return view.filter(view.person.notnull())

    def with_networks(self, t: ir.Table) -> ir.Table:
        """``t`` (with ``src_ip``) plus its /24, the premises it is in and its network label."""
        t = t.mutate(net24=t.src_ip.re_extract(r"^(\d+\.\d+\.\d+)\.\d+$", 1).nullif(""))
        if self.network_table.num_rows == 0:
            # No premises known: nothing to join, every network is its /24.
            return t.mutate(premises=ibis.null(str), netlabel=t.net24)
        networks = self.engine.table(self.network_table)
        t = t.left_join(networks, "net24").drop("net24_right")
        return t.mutate(netlabel=t.premises.fill_null(t.net24))

    def networks(self) -> ir.Table:
        """Person, epoch day and network label of every event from a known address."""
        t = self.events_with("src_ip")
        t = self.with_networks(t.filter(t.src_ip.notnull()))
        return t.filter(t.netlabel.notnull()).select("person", "eday", value=t.netlabel)

    def has_premises(self) -> bool:
        """Whether any premises network is known (else nothing is off the premises)."""
        return bool(self.network_table.num_rows > 0)

    def is_shared(self, person: ir.StringValue) -> ir.BooleanValue:
        """Whether the person column names a shared account."""
        return person.isin(self.accounts) if self.accounts else ibis.literal(False)

    def outside(self, t: ir.Table) -> ir.BooleanValue:
        """Whether a row of :meth:`with_networks` came from outside every premises."""
        return (
            t.net24.notnull() & t.premises.isnull() if self.has_premises() else ibis.literal(False)
        )

    def shifts(self, t: ir.Table) -> ir.Table:
        """``t`` with each person's shift start and length (the default when unknown)."""
        start, minutes = DEFAULT_SHIFT_START, DEFAULT_SHIFT_MINUTES
        people = self.spec.directory.people_table()
        usual = pc.and_(
            pc.equal(people["shift_start"], start), pc.equal(people["shift_minutes"], minutes)
        )
        odd = people.filter(pc.invert(usual)).select(["person", "shift_start", "shift_minutes"])
        if odd.num_rows == 0:
            # Everyone keeps the default shift (CERT data): no join over every event for it.
            return t.mutate(shift_start=ibis.literal(start), shift_minutes=ibis.literal(minutes))
        t = t.left_join(self.engine.table(odd), "person").drop("person_right")
        return t.mutate(
            shift_start=t.shift_start.fill_null(start),
            shift_minutes=t.shift_minutes.fill_null(minutes),
        )


def _accounts(spec: FeatureSpec) -> list[str]:
    return sorted({account for account, _ in spec.directory.holders})


def _matches(column: ir.StringValue, names: tuple[str, ...]) -> ir.BooleanValue:
    return column.notnull() & column.re_search(domains.pattern(names))


def _destinations(lake: _Lake) -> ir.Table:
    """Each distinct destination of a web request or sent e-mail, with the lists it is on.

    The lists are regular expressions over the lower-cased URL or addresses; a lake
    has some thousands of distinct URLs among millions of visits, so matching each
    once and joining is far cheaper than matching every row.
    """
    e = lake.events
    wanted = (
        e.actor.notnull()
        & e.dest.notnull()
        & (e.action.startswith("web.") | (e.action == Action.EMAIL_SEND.value))
    )
    d = e.filter(wanted).select("dest").distinct()
    low = d.dest.lower()
    lists = lake.spec.domains
    return d.select(
        d_dest=d.dest,
        d_out=_matches(low, lists.personal + lists.competitors),
        d_competitor=_matches(low, lists.competitors),
        d_sharing=_matches(low, lists.file_sharing),
        d_jobs=_matches(low, lists.job_search),
        d_hacking=_matches(low, lists.hacking),
    )


def _counts(lake: _Lake) -> ir.Table:
    """Every per-day count that needs one look at each event, in one pass."""
    e = lake.events_with(
        "action", "customer_id", "outcome", "interaction_id", "fields", "attachments",
        "removable", "canary", "dest", "src_ip", minute=True,
    )  # fmt: skip
    e = lake.shifts(e)
    if lake.has_premises():
        e = lake.with_networks(e)
    dests = _destinations(lake)
    e = e.left_join(dests, e.dest == dests.d_dest)
    action = e.action
    activity = ibis.or_(*[action.startswith(p) for p in _ACTIVITY_PREFIXES])
    # A phone's Outlook or Teams signing in to the person's own account from home is
    # how a BYOD workforce looks every evening, not work done off the premises or
    # out of hours; it still counts as a sign-in and as a network.
    own_cloud = (action == Action.SIGNIN.value) & ~lake.is_shared(e.person)
    counted = activity & ~own_cloud
    offset = (e.minute - e.shift_start + 1440) % 1440
    off_shift = counted & (offset >= e.shift_minutes + SHIFT_GRACE) & (offset < 1440 - SHIFT_GRACE)
    off_premises = counted & lake.outside(e) if lake.has_premises() else ibis.literal(False)
    no_interaction = e.interaction_id.isnull()
    is_web = action.startswith("web.")
    send = action == Action.EMAIL_SEND.value
    # Recipients of a sent e-mail: the commas in its comma-separated list, plus one.
    recipients = ibis.ifelse(
        send & e.dest.notnull(), e.dest.length() - e.dest.replace(",", "").length() + 1, 0
    ).cast("int64")
    distinct = {} if lake.engine.distinct_pass else _distinct_counts(e)
    return e.group_by(["person", "eday"]).aggregate(
        **distinct,
        events=e.count(),
        reveals_no_interaction=e.count(
            where=(action == Action.RECORD_REVEAL.value) & no_interaction
        ),
        records_no_interaction=e.count(
            where=action.isin(
                [Action.RECORD_VIEW.value, Action.RECORD_REVEAL.value, Action.RECORD_VERIFY.value]
            )
            & no_interaction
        ),
        searches=e.count(where=action == Action.RECORD_SEARCH.value),
        denials=e.count(where=e.outcome == "denied"),
        canary_hits=e.count(where=e.canary.fill_null(False)),
        off_shift=e.count(where=off_shift),
        off_premises=e.count(where=off_premises),
        signins_ok=e.count(where=action.isin(_SIGNINS) & (e.outcome == "success")),
        signins_failed=e.count(where=action.isin(_SIGNINS) & (e.outcome == "failure")),
        password_changes=e.count(where=action.isin(_PASSWORDS)),
        # Removable devices only: a laptop joining the network is a device.connect too.
        device_connects=e.count(
            where=(action == Action.DEVICE_CONNECT.value) & e.removable.fill_null(False)
        ),
        removable_files=e.count(where=action.startswith("file.") & e.removable.fill_null(False)),
        emails_sent=e.count(where=send),
        emails_out=e.count(
            where=send & (e.attachments.fill_null(0) > 0) & e.d_out.fill_null(False)
        ),
        emails_competitor=e.count(where=send & e.d_competitor.fill_null(False)),
        max_recipients=recipients.max(),
        leak_site_visits=e.count(where=is_web & e.d_sharing.fill_null(False)),
        job_search=e.count(where=is_web & e.d_jobs.fill_null(False)),
        hacking_sites=e.count(where=is_web & e.d_hacking.fill_null(False)),
        after_leaving=ibis.literal(0).cast("int64"),  # filled in by _hr
        contact_reveals=e.count(
            where=(action == Action.RECORD_REVEAL.value)
            & (e.outcome != "denied")
            & ibis.or_(*[e.fields.contains(f) for f in _CONTACT_FIELDS])
        ),
        # For _hr: the day's activity, and notice or leaving recorded that day.
        active=e.count(where=activity),
        notice_eday=e.eday.min(where=action == Action.HR_NOTICE.value),
        leave_eday=e.eday.min(where=action == Action.HR_LEAVE.value),
    )


def _distinct_counts(t: ir.Table) -> dict[str, ir.Value]:
    """Distinct customers and interactions of the day's record requests, as aggregates."""
    record = t.action.startswith("record.")
    return {
        "customers_viewed": t.customer_id.nunique(where=record),
        "customers_revealed": t.customer_id.nunique(where=t.action == Action.RECORD_REVEAL.value),
        "customers_exported": t.customer_id.nunique(where=t.action == Action.RECORD_EXPORT.value),
        "interactions": t.interaction_id.nunique(where=record),
    }


def _records(lake: _Lake) -> ir.Table:
    """The distinct counts in a pass of their own over the record requests' columns.

    For engines with :attr:`Engine.distinct_pass` (Spark): inside the day-count
    pass it expands every row once per filtered distinct count.
    """
    t = lake.events_with("action", "customer_id", "interaction_id")
    r = t.filter(t.action.startswith("record."))
    return r.group_by(["person", "eday"]).aggregate(**_distinct_counts(r))


def _first_seen(used: ir.Table, first_day: ir.Table, name: str) -> ir.Table:
    """How many values a person used for the first time that day.

    ``used`` has person, eday and value; a person's first day in the lake
    (``first_day``: person, pfirst) has nothing to compare with, so it counts none.
    """
    used = used.filter(used.value.notnull())
    first = used.group_by(["person", "value"]).aggregate(first=used.eday.min())
    joined = first.join(first_day, "person")
    fresh = joined.filter(joined.first > joined.pfirst)
    return fresh.group_by(["person", fresh.first.name("eday")]).aggregate(**{name: fresh.count()})


def _signins(lake: _Lake, *columns: str, minute: bool = False) -> ir.Table:
    """Successful sign-ins (logons, cloud and mailbox sign-ins) with their networks."""
    t = lake.events_with("action", "outcome", "src_ip", *columns, minute=minute)
    t = t.filter(t.action.isin(_SIGNINS) & (t.outcome == "success"))
    return lake.with_networks(t)


def _concurrent(lake: _Lake) -> ir.Table:
    """The most networks one account signed in from within one clock hour that day."""
    t = _signins(lake, minute=True)
    signins = t.filter(t.netlabel.notnull()).mutate(hour=t.minute // 60)
    hourly = signins.group_by(["person", "eday", "hour"]).aggregate(n=signins.netlabel.nunique())
    return hourly.group_by(["person", "eday"]).aggregate(concurrent_networks=hourly.n.max())


def _foreign_logons(lake: _Lake) -> ir.Table:
    """Computers logged on to that belong to someone else (whoever logs on to them most)."""
    t = lake.events_with("action", "device_id")
    logons = t.filter((t.action == Action.LOGON.value) & t.device_id.notnull())
    per = logons.group_by(["device_id", "person"]).aggregate(n=logons.count())
    ranked = per.mutate(
        rank=ibis.row_number().over(group_by=per.device_id, order_by=[ibis.desc(per.n), per.person])
    )
    owners = ranked.filter(ranked["rank"] == 0).select(device_id=_.device_id, owner=_.person)
    days = logons.select("person", "eday", "device_id").distinct()
    joined = days.join(owners, "device_id")
    foreign = joined.filter(joined.owner != joined.person)
    return foreign.group_by(["person", "eday"]).aggregate(
        foreign_logons=foreign.device_id.nunique()
    )


def _shared_from_home(lake: _Lake) -> ir.Table:
    """Off-premises sign-ins to shared accounts a person holds, from that person's home.

    A network is the person's home when their own account signed in from that
    very address (on that day or before) and at most HOME_MAX_USERS people's own
    accounts ever did. The exact address, not its /24: neighbours share an
    ISP's /24, and a carrier's mobile address serves thousands.
    """
    spec = lake.spec
    holders = lake.engine.table(
        pa.table(
            {
                "h_account": [a for a, _ in spec.directory.holders],
                "holder": [p for _, p in spec.directory.holders],
            },
            schema=pa.schema([("h_account", pa.string()), ("holder", pa.string())]),
        )
    )
    e = _signins(lake, "event_id", minute=True)
    e = e.filter(e.src_ip.notnull() & lake.outside(e))
    is_shared = lake.is_shared(e.person)
    shared = e.filter(is_shared).select(
        s_id=e.event_id, s_account=e.person, s_ip=e.src_ip, s_eday=e.eday, s_minute=e.minute,
    )  # fmt: skip
    own = e.filter(~is_shared & (e.action == Action.SIGNIN.value))
    own_days = own.select(o_holder=own.person, o_ip=own.src_ip, o_eday=own.eday).distinct()
    users = own_days.group_by("o_ip").aggregate(o_users=own_days.o_holder.nunique())
    homes = own_days.join(users, "o_ip").filter(_.o_users <= HOME_MAX_USERS)
    held = shared.join(holders, shared.s_account == holders.h_account)
    matched = held.join(
        homes,
        [held.holder == homes.o_holder, held.s_ip == homes.o_ip, homes.o_eday <= held.s_eday],
    )
    # The address as a number, and the minute before it, so that min() picks both
    # of the day's first such sign-in at once on every engine.
    octets = [
        matched.s_ip.re_extract(r"^(\d+)\.(\d+)\.(\d+)\.(\d+)$", i).cast("int64")
        for i in range(1, 5)
    ]
    number = ((octets[0] * 256 + octets[1]) * 256 + octets[2]) * 256 + octets[3]
    per = matched.group_by(["holder", "s_eday", "s_id"]).aggregate(
        known_days=matched.o_eday.nunique(),
        key=(matched.s_minute * 4_294_967_296 + number).min(),
    )
    daily = per.group_by(["holder", "s_eday"]).aggregate(
        shared_home_signins=per.count(),
        home_network_days=per.known_days.max(),
        first_key=per.key.min(),
    )
    return daily.select(
        person=daily.holder,
        eday=daily.s_eday,
        shared_home_signins=daily.shared_home_signins,
        home_network_days=daily.home_network_days,
        shared_home_address=daily.first_key % 4_294_967_296,
        shared_home_minute=daily.first_key // 4_294_967_296,
    )


def _hr(counts: ir.Table, table: ir.Table) -> ir.Table:
    """Days since notice, and the person's actions on days after their leaving date.

    The dates come from ``counts`` (the day's first notice and leaving events), not
    from ``table``: the same joins twice in one plan would run twice.
    """
    dates = counts.group_by("person").aggregate(
        notice=counts.notice_eday.min(), leave=counts.leave_eday.min()
    )
    t = table.drop("notice_eday", "leave_eday").left_join(dates, "person").drop("person_right")
    since_notice = ibis.ifelse(t.notice.notnull() & (t.eday >= t.notice), t.eday - t.notice, -1)
    after = ibis.ifelse(t.leave.notnull() & (t.eday > t.leave), t.active, 0)
    return t.mutate(days_since_notice=since_notice.cast("int64"), after_leaving=after.cast("int64"))
