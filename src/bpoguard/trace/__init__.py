"""trace: who leaked a dump of customer records, and the common point behind fraud reports.

    trace = trace_leak(ws, vault, Path("dump.csv"), LeakOptions(first_seen=date(2026, 3, 9)))
    document = leak_document(trace)            # the suspect report as JSON
    html = leak_html(document)                 # the same, as a self-contained page
    result = trace_complaints(ws, Path("complaints.csv"))

Values in a dump are found with the guard's own validators and matched through
the vault's blind indexes; suspects are scored against chance from the lake's
guard decisions and each access is proved from the ledger.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bpoguard.trace.complaints import (
        ComplaintsError,
        ComplaintsTrace,
        complaints_document,
        rank_groups,
        trace_complaints,
    )
    from bpoguard.trace.dump import Cells, DumpError, ReadStats, read_dump
    from bpoguard.trace.dumps import DumpSpec, MadeDump, make_dump
    from bpoguard.trace.leak import LeakOptions, LeakTrace, trace_leak
    from bpoguard.trace.matcher import Matcher, RecordMatch
    from bpoguard.trace.report import complaints_html, leak_document, leak_html
    from bpoguard.trace.scoring import AccessIndex, Attribution, Suspect, attribute
    from bpoguard.trace.values import Found, Partial, Sighting, recognise

# Each name is imported from its module on first use: `bpoguard trace leak` then loads
# neither the complaints' statistics nor the dump simulator (start-up time of a command).
_WHERE = {
    "AccessIndex": "bpoguard.trace.scoring",
    "Attribution": "bpoguard.trace.scoring",
    "Cells": "bpoguard.trace.dump",
    "ComplaintsError": "bpoguard.trace.complaints",
    "ComplaintsTrace": "bpoguard.trace.complaints",
    "DumpError": "bpoguard.trace.dump",
    "DumpSpec": "bpoguard.trace.dumps",
    "Found": "bpoguard.trace.values",
    "LeakOptions": "bpoguard.trace.leak",
    "LeakTrace": "bpoguard.trace.leak",
    "MadeDump": "bpoguard.trace.dumps",
    "Matcher": "bpoguard.trace.matcher",
    "Partial": "bpoguard.trace.values",
    "ReadStats": "bpoguard.trace.dump",
    "RecordMatch": "bpoguard.trace.matcher",
    "Sighting": "bpoguard.trace.values",
    "Suspect": "bpoguard.trace.scoring",
    "attribute": "bpoguard.trace.scoring",
    "complaints_document": "bpoguard.trace.complaints",
    "complaints_html": "bpoguard.trace.report",
    "leak_document": "bpoguard.trace.report",
    "leak_html": "bpoguard.trace.report",
    "make_dump": "bpoguard.trace.dumps",
    "rank_groups": "bpoguard.trace.complaints",
    "read_dump": "bpoguard.trace.dump",
    "recognise": "bpoguard.trace.values",
    "trace_complaints": "bpoguard.trace.complaints",
    "trace_leak": "bpoguard.trace.leak",
}

__all__ = [
    "AccessIndex",
    "Attribution",
    "Cells",
    "ComplaintsError",
    "ComplaintsTrace",
    "DumpError",
    "DumpSpec",
    "Found",
    "LeakOptions",
    "LeakTrace",
    "MadeDump",
    "Matcher",
    "Partial",
    "ReadStats",
    "RecordMatch",
    "Sighting",
    "Suspect",
    "attribute",
    "complaints_document",
    "complaints_html",
    "leak_document",
    "leak_html",
    "make_dump",
    "rank_groups",
    "read_dump",
    "recognise",
    "trace_complaints",
    "trace_leak",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module when it is first asked for (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
