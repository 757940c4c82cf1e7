"""The one normalised security-event schema every source is mapped into.

Documented for analysts in docs/events.md, with its mapping to OCSF classes.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

import pyarrow as pa


class Action(enum.StrEnum):
    """What happened. Dotted names group by object; the set grows with importers."""

    RECORD_VIEW = "record.view"
    RECORD_REVEAL = "record.reveal"
    RECORD_VERIFY = "record.verify"
    RECORD_SEARCH = "record.search"
    RECORD_EXPORT = "record.export"
    INTERACTION_OPEN = "interaction.open"
    INTERACTION_CLOSE = "interaction.close"
    LOGON = "auth.logon"
    LOGOFF = "auth.logoff"
    SIGNIN = "auth.signin"  # to a cloud identity (Entra ID), not a workstation
    MAILBOX_SIGNIN = "mailbox.signin"
    MAILBOX_ACCESS = "mailbox.access"  # mail items read (M365 MailItemsAccessed)
    MAILBOX_CHANGE = "mailbox.change"  # settings, forwarding, permissions (Set-Mailbox, ...)
    PASSWORD_CHANGE = "account.password_change"  # noqa: S105 - an action name
    PASSWORD_RESET = "account.password_reset"  # noqa: S105 - an action name
    DEVICE_CONNECT = "device.connect"
    DEVICE_DISCONNECT = "device.disconnect"
    FILE_OPEN = "file.open"
    FILE_WRITE = "file.write"
    FILE_COPY = "file.copy"
    FILE_DELETE = "file.delete"
    EMAIL_SEND = "email.send"
    EMAIL_VIEW = "email.view"
    WEB_VISIT = "web.visit"
    WEB_UPLOAD = "web.upload"
    WEB_DOWNLOAD = "web.download"
    HR_JOIN = "hr.join"
    HR_NOTICE = "hr.notice"
    HR_LEAVE = "hr.leave"
    ASSET_ISSUE = "asset.issue"
    ASSET_RETURN = "asset.return"
    ASSET_LOST = "asset.lost"


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    ALLOWED = "allowed"
    DENIED = "denied"


SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("action", pa.string(), nullable=False),
        pa.field("actor", pa.string()),
        pa.field("account", pa.string()),
        pa.field("target", pa.string()),
        pa.field("customer_id", pa.int64()),
        pa.field("src_ip", pa.string()),
        pa.field("device_id", pa.string()),
        pa.field("site_id", pa.string()),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("reasons", pa.list_(pa.string())),
        pa.field("interaction_id", pa.int64()),
        pa.field("purpose", pa.string()),
        pa.field("fields", pa.list_(pa.string())),
        pa.field("bytes", pa.int64()),
        pa.field("dest", pa.string()),
        pa.field("attachments", pa.int64()),
        pa.field("removable", pa.bool_()),
        pa.field("canary", pa.bool_()),
        pa.field("ledger_index", pa.int64()),
        pa.field("raw", pa.string()),
    ]
)

COLUMNS = tuple(SCHEMA.names)


@dataclass(slots=True)
class Event:
    """One normalised event; ``time`` is timezone-aware UTC."""

    event_id: str
    time: dt.datetime
    source: str
    action: str
    outcome: str
    actor: str | None = None
    account: str | None = None
    target: str | None = None
    customer_id: int | None = None
    src_ip: str | None = None
    device_id: str | None = None
    site_id: str | None = None
    reasons: list[str] = field(default_factory=list)
    interaction_id: int | None = None
    purpose: str | None = None
    fields: list[str] = field(default_factory=list)
    bytes: int | None = None
    dest: str | None = None  # where data went: recipients, a URL, a file path
    attachments: int | None = None  # e-mail attachments
    removable: bool | None = None  # a file to or from removable media
    canary: bool | None = None  # the customer concerned is a canary (guard decisions)
    ledger_index: int | None = None
    raw: str | None = None
