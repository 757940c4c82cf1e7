"""Fingerprints of what matching decides, to compare two versions of the code.

    python benchmarks/same_trace_match.py --home WS DUMP [DUMP ...]
    PYTHONPATH=/tmp/old/src python benchmarks/same_trace_match.py --home WS DUMP ...

For each dump prints two SHA-256 digests: of every :class:`RecordMatch` the
matcher returns (every field, in order) and of the whole ``leak_document`` JSON
(``trace_leak`` with default options), plus the counts by status. Run it with
the old code (``git archive COMMIT src | tar -x -C /tmp/old``) and the new one
and compare the lines: a change to matching that keeps every answer prints the
same. Only reads the workspace (the trace's caches are built if missing: point
``--home`` at a copy or a view, never at a world others read).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import astuple
from pathlib import Path

from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.trace.dump import ReadStats, read_dump
from bpoguard.trace.leak import trace_leak
from bpoguard.trace.matcher import Matcher, clients
from bpoguard.trace.report import leak_document
from bpoguard.workspace import Workspace


def _records_digest(ws: Workspace, vault: Vault, dump: Path) -> tuple[str, dict[str, int]]:
    digest = hashlib.sha256()
    with ws.store.engine.connect() as conn:
        matcher = Matcher(conn, vault, clients(conn))
        for record in matcher.match_all(read_dump(dump, ReadStats())):
            digest.update(repr(astuple(record)).encode())
        return digest.hexdigest(), dict(sorted(matcher.stats.by_status.items()))


def main() -> None:
    """Print the fingerprints of each dump's matching and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("dumps", type=Path, nargs="+")
    args = parser.parse_args()
    with Workspace.open(args.home) as ws:
        vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
        for dump in args.dumps:
            records, counts = _records_digest(ws, vault, dump)
            document = leak_document(trace_leak(ws, vault, dump))
            text = json.dumps(document, sort_keys=True, default=str)
            report = hashlib.sha256(text.encode()).hexdigest()
            print(f"{dump.name}: records {records[:16]} report {report[:16]} {counts}")


if __name__ == "__main__":
    main()
