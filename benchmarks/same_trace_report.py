"""Fingerprints of the leak report, to compare two versions of the stages after matching.

    python benchmarks/same_trace_report.py --home WS [--first-seen DATE] DUMP [DUMP ...]
    PYTHONPATH=/tmp/old/src python benchmarks/same_trace_report.py --home WS DUMP ...

For each dump and each set of options (the defaults; refused requests left out;
and, with ``--first-seen``, that date with either) prints the SHA-256 of the whole
``leak_document`` JSON, and how many suspects, proofs and canary hits it holds.
Run it with the old code (``git archive COMMIT src | tar -x -C /tmp/old``) and the
new one and compare the lines: a change that keeps every report prints the same.
Only reads the workspace (the trace's caches are built if missing: point
``--home`` at a copy or a view, never at a world others read).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
from pathlib import Path

from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.trace.leak import LeakOptions, trace_leak
from bpoguard.trace.report import leak_document
from bpoguard.workspace import Workspace


def _options(first_seen: dt.date | None) -> list[tuple[str, LeakOptions]]:
    found = [("default", LeakOptions()), ("allowed-only", LeakOptions(include_denied=False))]
    if first_seen is not None:
        found += [
            (f"first-seen {first_seen}", LeakOptions(first_seen=first_seen)),
            (f"first-seen {first_seen} allowed-only",
             LeakOptions(first_seen=first_seen, include_denied=False)),
        ]  # fmt: skip
    return found


def main() -> None:
    """Print the fingerprint of each dump's report under each set of options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--first-seen", type=dt.date.fromisoformat, default=None)
    parser.add_argument("dumps", type=Path, nargs="+")
    args = parser.parse_args()
    with Workspace.open(args.home) as ws:
        vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
        for dump in args.dumps:
            for name, options in _options(args.first_seen):
                document = leak_document(trace_leak(ws, vault, dump, options))
                text = json.dumps(document, sort_keys=True, default=str)
                digest = hashlib.sha256(text.encode()).hexdigest()
                counts = {
                    "suspects": len(document.get("suspects") or []),
                    "proofs": len((document.get("ledger") or {}).get("proofs") or {}),
                    "canary_hits": len(document.get("canary_hits") or []),
                }
                print(f"{dump.name} [{name}]: report {digest[:16]} {counts}")


if __name__ == "__main__":
    main()
