"""Same seed, same world: compare `simulate` from two source trees, and time each per day.

Each tree runs in a child process (``PYTHONPATH=<tree>/src``) on a fresh
workspace; the runs alternate (old, new, old, new, ...) so the machine's load
falls on both alike. A run reports the CPU seconds of the simulated days alone
(process time from the end of the customer stage to the last day, which is
what grows with --days), then the two worlds are fingerprinted and compared:

- the ledger: every entry's bytes in index order, every stored node, the head,
  and each checkpoint's size and root (its note's time and signature are not
  compared: every workspace has its own signing key);
- the lake: every column of every row, each row hashed, the hashes sorted
  (file names carry the writer's random run id, so files are not compared);
- every other table of the store, all rows sorted, except the vault's
  (``vault_*``: values are encrypted under each workspace's own keys with
  random nonces) and ``alembic_version``; with --guard, the wall-clock times at
  which the instant rules raised their alerts (``detect_alerts``: first_seen,
  detected_at, updated_at);
- the sim/ files (truth.json, complaints.csv, the customer files), byte for byte.

Usage:

    .venv/bin/python benchmarks/bench_simulate_same.py OLD_TREE NEW_TREE
        [--agents 2000] [--customers 200000] [--days 2] [--seeds 7 11] [--repeat 1]
        [--guard] [--json]

OLD_TREE/NEW_TREE hold ``src/`` (e.g. ``git archive <commit> src | tar -x -C /tmp/old``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# Run in the child: simulate in process, CPU seconds per stage from the progress callback.
_CHILD = r"""
import json, sys, time, resource
from pathlib import Path
from bpoguard.workspace import Workspace
from bpoguard.simulate.run import SimConfig, simulate
home, agents, customers, days, seed, guard = sys.argv[1:7]
marks = {}
def progress(stage, done, total):
    if stage == "customers" and done == total:
        marks["customers"] = time.process_time()
    if stage == "days" and done == total:
        marks["days"] = time.process_time()
ws = Workspace.open(Path(home))
start = time.process_time()
summary = simulate(ws, SimConfig(agents=int(agents), customers=int(customers), days=int(days),
                                 seed=int(seed), guard=guard == "1"), progress)
end = time.process_time()
print(json.dumps({
    "cpu_total": end - start,
    "cpu_days": marks["days"] - marks["customers"],
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "requests": summary.requests, "events": summary.events, "interactions": summary.interactions,
}))
"""

SKIPPED_TABLES = ("alembic_version", "sqlite_sequence")
# When bpoguard itself raised an alert (--guard's instant rules): the run's wall clock.
WALL_CLOCK = {("detect_alerts", c) for c in ("first_seen", "detected_at", "updated_at")}
BIN = Path(sys.executable).parent / "bpoguard"


def run_tree(tree: Path, home: Path, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Initialise a workspace and simulate into it with the code in ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    subprocess.run([BIN, "init", "--home", home], check=True, capture_output=True, env=env)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(home), str(args.agents), str(args.customers),
         str(args.days), str(seed), "1" if args.guard else "0"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    if done.returncode:
        sys.exit(f"simulate with {tree} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _digest(items: list[bytes]) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(hashlib.sha256(item).digest())
    return h.hexdigest()


def fingerprint(home: Path) -> dict[str, str]:
    """A digest of everything the simulator wrote that the same seed must reproduce."""
    import pyarrow.parquet as pq

    prints: dict[str, str] = {}
    db = sqlite3.connect(home / "bpoguard.db")
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for table in sorted(tables):
        if table in SKIPPED_TABLES or table.startswith("vault_"):
            continue
        columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        if table == "ledger_checkpoints":
            columns = ["size", "root"]  # time and note: each workspace signs with its own key
        columns = [c for c in columns if (table, c) not in WALL_CLOCK]
        found = db.execute(f"SELECT {','.join(columns)} FROM {table}").fetchall()  # noqa: S608
        encoded = sorted(repr(row).encode() for row in found)
        prints[f"db:{table}"] = f"{len(found)}:{_digest(encoded)}"
    entries = [bytes(r[0]) for r in db.execute("SELECT entry FROM ledger_entries ORDER BY idx")]
    prints["ledger:entries-in-order"] = f"{len(entries)}:{_digest(entries)}"
    db.close()
    rows: list[bytes] = []
    for path in sorted((home / "lake").glob("day=*/*.parquet")):
        table = pq.read_table(path)
        day = path.parent.name
        for row in table.to_pylist():
            rows.append((day + repr(sorted(row.items()))).encode())
    rows.sort()
    prints["lake:rows"] = f"{len(rows)}:{_digest(rows)}"
    for path in sorted((home / "sim").iterdir()):
        prints[f"sim:{path.name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return prints


def main() -> None:
    """Alternate old and new runs, compare each pair's worlds, print CPU per simulated day."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tree per seed")
    parser.add_argument("--guard", action="store_true")
    parser.add_argument("--no-compare", action="store_true", help="time only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    timings: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    mismatches: list[str] = []
    for seed in args.seeds:
        for rep in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="sim-same-", dir=os.environ.get("TMPDIR")) as t:
                homes = {}
                for name, tree in (("old", args.old), ("new", args.new)):
                    homes[name] = Path(t) / name
                    result = run_tree(tree, homes[name], args, seed)
                    timings[name].append(result)
                    print(f"seed {seed} run {rep} {name}: {json.dumps(result)}", file=sys.stderr)
                if args.no_compare or rep:
                    continue
                old, new = fingerprint(homes["old"]), fingerprint(homes["new"])
                differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
                mismatches += [f"seed {seed}: {k}" for k in differ]
                print(f"seed {seed}: {len(old)} digests compared, {len(differ)} differ"
                      f"{': ' + ', '.join(differ) if differ else ''}", file=sys.stderr)  # fmt: skip
    summary = {
        name: {
            "cpu_days_median": statistics.median(r["cpu_days"] for r in runs),
            "cpu_per_day_median": statistics.median(r["cpu_days"] for r in runs) / args.days,
            "cpu_total_median": statistics.median(r["cpu_total"] for r in runs),
            "peak_rss_mib_max": max(r["peak_rss_mib"] for r in runs),
            "runs": len(runs),
        }
        for name, runs in timings.items()
    }
    ratio = summary["old"]["cpu_days_median"] / summary["new"]["cpu_days_median"]
    doc = {"config": vars(args) | {"old": str(args.old), "new": str(args.new)},
           "summary": summary, "speedup_days": ratio, "mismatches": mismatches}  # fmt: skip
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for name, row in summary.items():
            print(f"{name}: {row['cpu_per_day_median']:.2f} CPU-s per simulated day "
                  f"(total {row['cpu_total_median']:.1f} CPU-s, peak RSS "
                  f"{row['peak_rss_mib_max']:.0f} MiB, {row['runs']} runs)")  # fmt: skip
        print(
            f"speed-up per day (old/new): {ratio:.2f}x; "
            f"{'identical worlds' if not mismatches else 'MISMATCH: ' + '; '.join(mismatches)}"
        )
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
