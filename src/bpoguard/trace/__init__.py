"""trace: who leaked a dump of customer records, and the common point behind fraud reports.

    trace = trace_leak(ws, vault, Path("dump.csv"), LeakOptions(first_seen=date(2026, 3, 9)))
    document = leak_document(trace)            # the suspect report as JSON
    html = leak_html(document)                 # the same, as a self-contained page
    result = trace_complaints(ws, Path("complaints.csv"))

Values in a dump are found with the guard's own validators and matched through
the vault's blind indexes; suspects are scored against chance from the lake's
guard decisions and each access is proved from the ledger.
"""

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
