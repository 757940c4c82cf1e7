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
from ibis import _

from bpoguard.detect import domains
from bpoguard.detect.engine import Engine
from bpoguard.detect.people import Directory
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
    """The daily feature table: one row per person and day, every feature a count."""
    e = _prepared(engine, events, spec)
    counts = _counts(e, spec)
    parts = [
        _first_seen(e, e.device_id, "new_devices"),
        _first_seen(e, e.netlabel, "new_networks"),
        _concurrent(e),
        _foreign_logons(e),
        _shared_from_home(engine, e, spec),
    ]
    table = counts
    for part in parts:
        table = table.left_join(part, list(KEYS)).drop("person_right", "day_right")
    table = _hr(e, table)
    fill = {name: 0 for name in FEATURES if name != "days_since_notice"}
    table = table.fill_null(fill)
    if spec.since is not None:
        table = table.filter(table.day >= spec.since)
    if spec.until is not None:
        table = table.filter(table.day <= spec.until)
    return table.select(*KEYS, *FEATURES).order_by(list(KEYS))


def collect(engine: Engine, events: ir.Table, spec: FeatureSpec) -> pa.Table:
    """Run :func:`daily` on the engine; features as int64 columns, days as dates."""
    table = engine.to_arrow(daily(engine, events, spec))
    return table.cast(FEATURE_SCHEMA)


FEATURE_SCHEMA = pa.schema(
    [("person", pa.string()), ("day", pa.date32())] + [(n, pa.int64()) for n in FEATURES]
)


def _prepared(engine: Engine, events: ir.Table, spec: FeatureSpec) -> ir.Table:
    """Events with the person, day, minute of the day, network and shift columns added."""
    people = engine.table(spec.directory.people_table()).select(
        "person", "shift_start", "shift_minutes"
    )
    networks = engine.table(spec.directory.network_table())
    has_premises = spec.directory.network_table().num_rows > 0
    e = events.filter(events.actor.notnull()).mutate(
        person=_.actor,
        day=_.time.date(),
        eday=(_.time.epoch_seconds() // 86400).cast("int64"),
        minute=(_.time.hour() * 60 + _.time.minute()).cast("int64"),
        net24=_.src_ip.re_extract(r"^(\d+\.\d+\.\d+)\.\d+$", 1),
        dest_l=_.dest.lower(),
        # Recipients of a sent e-mail: the commas in its comma-separated list, plus one.
        recipients=ibis.ifelse(
            (_.action == Action.EMAIL_SEND.value) & _.dest.notnull(),
            _.dest.length() - _.dest.replace(",", "").length() + 1,
            0,
        ).cast("int64"),
    )
    e = e.mutate(net24=ibis.ifelse(e.net24 == "", ibis.null(str), e.net24))
    e = e.left_join(people, "person").drop("person_right")
    e = e.left_join(networks, "net24").drop("net24_right")
    start = e.shift_start.fill_null(7 * 60)
    length = e.shift_minutes.fill_null(12 * 60)
    offset = (e.minute - start + 1440) % 1440
    activity = ibis.or_(*[e.action.startswith(p) for p in _ACTIVITY_PREFIXES])
    outside = e.net24.notnull() & e.premises.isnull() if has_premises else ibis.literal(False)
    accounts = _accounts(spec)
    shared = e.person.isin(accounts) if accounts else ibis.literal(False)
    # A phone's Outlook or Teams signing in to the person's own account from home is
    # how a BYOD workforce looks every evening, not work done off the premises or
    # out of hours; it still counts as a sign-in and as a network.
    own_cloud = (e.action == Action.SIGNIN.value) & ~shared
    counted = activity & ~own_cloud
    off_shift = counted & (offset >= length + SHIFT_GRACE) & (offset < 1440 - SHIFT_GRACE)
    return e.mutate(
        activity=activity,
        is_off_shift=off_shift,
        is_off_premises=counted & outside,
        is_outside=outside,
        is_shared=shared,
        netlabel=ibis.ifelse(e.net24.isnull(), ibis.null(str), e.premises.fill_null(e.net24)),
    )


def _accounts(spec: FeatureSpec) -> list[str]:
    return sorted({account for account, _ in spec.directory.holders})


def _matches(column: ir.StringValue, names: tuple[str, ...]) -> ir.BooleanValue:
    return column.notnull() & column.re_search(domains.pattern(names))


def _counts(e: ir.Table, spec: FeatureSpec) -> ir.Table:
    is_record = e.action.startswith("record.")
    no_interaction = e.interaction_id.isnull()
    is_web = e.action.startswith("web.")
    mail_out = (
        (e.action == Action.EMAIL_SEND.value)
        & (e.attachments.fill_null(0) > 0)
        & _matches(e.dest_l, spec.domains.personal + spec.domains.competitors)
    )
    return e.group_by(list(KEYS)).aggregate(
        events=e.count(),
        customers_viewed=e.customer_id.nunique(where=is_record),
        customers_revealed=e.customer_id.nunique(where=e.action == Action.RECORD_REVEAL.value),
        reveals_no_interaction=e.count(
            where=(e.action == Action.RECORD_REVEAL.value) & no_interaction
        ),
        records_no_interaction=e.count(
            where=e.action.isin(
                [Action.RECORD_VIEW.value, Action.RECORD_REVEAL.value, Action.RECORD_VERIFY.value]
            )
            & no_interaction
        ),
        customers_exported=e.customer_id.nunique(where=e.action == Action.RECORD_EXPORT.value),
        searches=e.count(where=e.action == Action.RECORD_SEARCH.value),
        denials=e.count(where=e.outcome == "denied"),
        canary_hits=e.count(where=e.canary.fill_null(False)),
        off_shift=e.count(where=e.is_off_shift),
        off_premises=e.count(where=e.is_off_premises),
        signins_ok=e.count(where=e.action.isin(_SIGNINS) & (e.outcome == "success")),
        signins_failed=e.count(where=e.action.isin(_SIGNINS) & (e.outcome == "failure")),
        password_changes=e.count(where=e.action.isin(_PASSWORDS)),
        # Removable devices only: a laptop joining the network is a device.connect too.
        device_connects=e.count(
            where=(e.action == Action.DEVICE_CONNECT.value) & e.removable.fill_null(False)
        ),
        removable_files=e.count(where=e.action.startswith("file.") & e.removable.fill_null(False)),
        emails_sent=e.count(where=e.action == Action.EMAIL_SEND.value),
        emails_out=e.count(where=mail_out),
        emails_competitor=e.count(
            where=(e.action == Action.EMAIL_SEND.value)
            & _matches(e.dest_l, spec.domains.competitors)
        ),
        max_recipients=e.recipients.max(),
        leak_site_visits=e.count(where=is_web & _matches(e.dest_l, spec.domains.file_sharing)),
        job_search=e.count(where=is_web & _matches(e.dest_l, spec.domains.job_search)),
        hacking_sites=e.count(where=is_web & _matches(e.dest_l, spec.domains.hacking)),
        after_leaving=ibis.literal(0).cast("int64"),  # filled in by _hr
        interactions=e.interaction_id.nunique(where=is_record),
        contact_reveals=e.count(
            where=(e.action == Action.RECORD_REVEAL.value)
            & (e.outcome != "denied")
            & ibis.or_(*[e.fields.contains(f) for f in _CONTACT_FIELDS])
        ),
        first_eday=e.eday.min(),
    )


def _first_seen(e: ir.Table, column: ir.StringValue, name: str) -> ir.Table:
    """How many values of ``column`` a person used for the first time that day.

    A person's first day in the lake has nothing to compare with, so it counts none.
    """
    used = e.filter(column.notnull()).select(person=e.person, day=e.day, eday=e.eday, value=column)
    # The day of a value's first use is the day of its smallest epoch day.
    first = used.group_by(["person", "value"]).aggregate(first=used.eday.min(), day=used.day.min())
    person_first = e.group_by("person").aggregate(pfirst=e.eday.min())
    joined = first.join(person_first, "person")
    fresh = joined.filter(joined.first > joined.pfirst)
    return fresh.group_by(list(KEYS)).aggregate(**{name: fresh.count()})


def _concurrent(e: ir.Table) -> ir.Table:
    """The most networks one account signed in from within one clock hour that day."""
    signins = e.filter(
        e.action.isin(_SIGNINS) & (e.outcome == "success") & e.netlabel.notnull()
    ).mutate(hour=e.time.hour())
    hourly = signins.group_by(["person", "day", "hour"]).aggregate(n=signins.netlabel.nunique())
    return hourly.group_by(list(KEYS)).aggregate(concurrent_networks=hourly.n.max())


def _foreign_logons(e: ir.Table) -> ir.Table:
    """Computers logged on to that belong to someone else (whoever logs on to them most)."""
    logons = e.filter((e.action == Action.LOGON.value) & e.device_id.notnull())
    per = logons.group_by(["device_id", "person"]).aggregate(n=logons.count())
    ranked = per.mutate(
        rank=ibis.row_number().over(group_by=per.device_id, order_by=[ibis.desc(per.n), per.person])
    )
    owners = ranked.filter(ranked["rank"] == 0).select(device_id=_.device_id, owner=_.person)
    days = logons.select("person", "day", "device_id").distinct()
    joined = days.join(owners, "device_id")
    foreign = joined.filter(joined.owner != joined.person)
    return foreign.group_by(list(KEYS)).aggregate(foreign_logons=foreign.device_id.nunique())


def _shared_from_home(engine: Engine, e: ir.Table, spec: FeatureSpec) -> ir.Table:
    """Off-premises sign-ins to shared accounts a person holds, from that person's home.

    A network is the person's home when their own account signed in from that
    very address (on that day or before) and at most HOME_MAX_USERS people's own
    accounts ever did. The exact address, not its /24: neighbours share an
    ISP's /24, and a carrier's mobile address serves thousands.
    """
    holders = engine.table(
        pa.table(
            {
                "h_account": [a for a, _ in spec.directory.holders],
                "holder": [p for _, p in spec.directory.holders],
            },
            schema=pa.schema([("h_account", pa.string()), ("holder", pa.string())]),
        )
    )
    ok = e.action.isin(_SIGNINS) & (e.outcome == "success") & e.src_ip.notnull() & e.is_outside
    shared = e.filter(ok & e.is_shared).select(
        s_id=e.event_id, s_account=e.person, s_ip=e.src_ip, s_eday=e.eday, day=e.day,
        s_minute=e.minute,
    )  # fmt: skip
    own = e.filter(ok & ~e.is_shared & (e.action == Action.SIGNIN.value))
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
    per = matched.group_by(["holder", "day", "s_id"]).aggregate(
        known_days=matched.o_eday.nunique(),
        key=(matched.s_minute * 4_294_967_296 + number).min(),
    )
    daily = per.group_by(["holder", "day"]).aggregate(
        shared_home_signins=per.count(),
        home_network_days=per.known_days.max(),
        first_key=per.key.min(),
    )
    return daily.select(
        person=daily.holder,
        day=daily.day,
        shared_home_signins=daily.shared_home_signins,
        home_network_days=daily.home_network_days,
        shared_home_address=daily.first_key % 4_294_967_296,
        shared_home_minute=daily.first_key // 4_294_967_296,
    )


def _hr(e: ir.Table, table: ir.Table) -> ir.Table:
    """Days since notice, and the person's actions on days after their leaving date."""
    notice = (
        e.filter(e.action == Action.HR_NOTICE.value)
        .group_by("person")
        .aggregate(notice_eday=_.eday.min())
    )
    leave = (
        e.filter(e.action == Action.HR_LEAVE.value)
        .group_by("person")
        .aggregate(leave_eday=_.eday.min())
    )
    active = e.filter(e.activity).group_by(list(KEYS)).aggregate(active=_.count())
    t = (
        table.left_join(notice, "person")
        .drop("person_right")
        .left_join(leave, "person")
        .drop("person_right")
        .left_join(active, list(KEYS))
        .drop("person_right", "day_right")
    )
    since_notice = ibis.ifelse(
        t.notice_eday.notnull() & (t.first_eday >= t.notice_eday),
        t.first_eday - t.notice_eday,
        -1,
    )
    after = ibis.ifelse(
        t.leave_eday.notnull() & (t.first_eday > t.leave_eday), t.active.fill_null(0), 0
    )
    return t.mutate(days_since_notice=since_notice.cast("int64"), after_leaving=after.cast("int64"))
