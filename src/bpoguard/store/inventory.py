"""Counting what the store holds, for `bpoguard info` and the demo summary."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bpoguard.store import models

COUNTED = {
    "organisations": models.Organisation,
    "sites": models.Site,
    "contracts": models.Contract,
    "staff": models.Staff,
    "devices": models.Device,
    "customers": models.Customer,
    "interactions": models.Interaction,
}


def counts(session: Session) -> dict[str, int]:
    """Rows per domain table."""
    return {
        name: session.scalar(select(func.count()).select_from(model)) or 0
        for name, model in COUNTED.items()
    }
