"""Benchmark the trace's lake caches: each build's time and peak memory, and the two access stages.

Each build runs in a fresh child process (this script again, with ``--child``)
into a scratch cache folder, so that its peak RSS (``ru_maxrss`` of the
children) is the build's alone:

    python benchmarks/bench_trace_caches.py build --home W --out /tmp/c summary
    python benchmarks/bench_trace_caches.py build --home W --out /tmp/c dump rows firsts counts
    python benchmarks/bench_trace_caches.py stages --home W --dump mixed-10000.csv --runs 3
    python benchmarks/bench_trace_caches.py compare /tmp/c-old /tmp/c-new
    python benchmarks/bench_trace_caches.py document --home W --dump mixed-10000.csv

``build`` prints, per cache, wall and CPU seconds and the child's peak RSS.
``dump`` needs the pair summary in ``--out`` (built there first, or linked
from ``W/cache/trace``), ``counts`` the firsts. ``stages`` traces the dump once
(matching is not measured here) and then times, in fresh child processes,
the two access stages of ``trace_leak`` the way it calls them: the dump's
pairs and volumes (``dump_accesses``) and the five shown people's rows
(``accesses_of``). ``compare`` checks two cache folders file kind by file
kind: the bytes, or, where the bytes legitimately differ (DuckDB's parallel
writers order the rows of equal sort keys freely), the rows sorted.
``document`` prints a digest of the dump's leak_document JSON (old vs new).

To compare with older code, run the same script with ``PYTHONPATH`` pointing
at an older ``src`` (``git archive COMMIT src | tar -x -C /tmp/old``). The
machine is shared: wall figures are pessimistic; CPU and the ratios less so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

KINDS = ("summary", "dump", "rows", "firsts", "counts")


def _child_build(home: Path, out: Path, kind: str) -> None:
    """One build, in this process (the parent measures it)."""
    from bpoguard.trace import accesses, bycustomer, firsts

    lake = home / "lake"
    out.mkdir(parents=True, exist_ok=True)
    if kind == "summary":
        accesses.pair_summary(lake, out)
    elif kind == "dump":
        accesses.dump_caches(lake, out)
    elif kind == "rows":
        bycustomer.bucket_files(lake, out, [0])
    elif kind == "firsts":
        firsts.firsts_file(lake, out / "firsts")
    elif kind == "counts":
        _child_counts(home, out)
    else:
        raise SystemExit(f"unknown cache {kind!r}")


def _child_counts(home: Path, out: Path) -> None:
    from bpoguard.trace import complaints, firsts
    from bpoguard.workspace import Workspace

    with Workspace.open(home) as ws, ws.store.engine.connect() as conn:
        held = complaints._Held(
            {}, (), complaints._client_sizes(conn), complaints._canaries(conn),
            complaints._staff(conn),
        )  # fmt: skip
        source = firsts.firsts_file(ws.settings.lake_dir, out / "firsts")
        assert source is not None
        firsts.counts_file(source, out / "firsts", firsts.staff_labels(held.staff),
                           held.fingerprint, lambda: complaints._customers(conn))  # fmt: skip


def build(home: Path, out: Path, kinds: list[str]) -> None:
    """Each build in a fresh child: wall, CPU and peak RSS."""
    for kind in kinds:
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", kind, "--home", str(home), "--out", str(out)]
        )
        # wait4 gives this child's own usage: its peak RSS, not the largest child's so far.
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if child.returncode:
            raise SystemExit(f"the {kind} build failed ({child.returncode})")
        cpu = usage.ru_utime + usage.ru_stime
        print(f"{kind:8s} wall {wall:7.1f} s  CPU {cpu:7.1f} s  peak RSS {usage.ru_maxrss / 1024:7.0f} MiB"
              f"  load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip


def _child_stages(home: Path, prepared: Path) -> None:
    from bpoguard.trace.accesses import accesses_of, dump_accesses

    d = pickle.loads(prepared.read_bytes())  # noqa: S301 (our own file, 0600, written above)
    lake, cache = home / "lake", home / "cache" / "trace"
    figures = {}
    start, cpu = time.perf_counter(), time.process_time()
    read = dump_accesses(lake, d["leaked"], d["window_end"], True, cache)
    figures["access index"] = (time.perf_counter() - start, time.process_time() - cpu)
    assert read is not None
    start, cpu = time.perf_counter(), time.process_time()
    rows = accesses_of(lake, d["wanted"], d["window_end"], True, cache, people=d["people"])
    figures["accesses (rows)"] = (time.perf_counter() - start, time.process_time() - cpu)
    index, relevant = read
    digest = hashlib.sha256(repr((index.people, index.customers.tolist(), index.indptr.tolist(),
                                  index.accessors.tolist(), index.person_size.tolist(),
                                  sorted((c, sorted(p)) for c, p in relevant.items()),
                                  [tuple(vars(a).values()) if hasattr(a, "__dict__") else tuple(
                                      getattr(a, f) for f in a.__slots__) for a in rows]
                                  )).encode()).hexdigest()[:16]  # fmt: skip
    print(json.dumps({"figures": figures, "digest": digest, "rows": len(rows)}))


def stages(home: Path, dump: Path, runs: int, prepared: Path) -> None:
    """The two access stages in fresh processes (the dump matched once, beforehand)."""
    if not prepared.is_file():
        from bpoguard.guard.keys import KeyfileProvider
        from bpoguard.guard.vault import Vault
        from bpoguard.trace.leak import EVIDENCE_FOR, _leaked, trace_leak
        from bpoguard.workspace import Workspace

        with Workspace.open(home) as ws:
            trace = trace_leak(ws, Vault(KeyfileProvider.from_dir(ws.settings.keys_dir)), dump)
        shown = trace.attribution.ranking[:EVIDENCE_FOR]
        prepared.write_bytes(pickle.dumps({
            "leaked": _leaked(trace.records), "window_end": trace.window_end,
            "wanted": {c for s in shown for c in s.records}, "people": {s.person for s in shown},
        }))  # fmt: skip
        os.chmod(prepared, 0o600)
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, __file__, "--child", "stages", "--home", str(home),
             "--out", str(prepared)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        doc = json.loads(done.stdout)
        for stage, (wall, cpu) in doc["figures"].items():
            walls.setdefault(stage, []).append(wall)
            cpus.setdefault(stage, []).append(cpu)
        print(f"  run: {doc['figures']} digest {doc['digest']} rows {doc['rows']}", flush=True)
    for stage in walls:
        print(f"{stage:16s} median wall {statistics.median(walls[stage]):.3f} s "
              f"(max {max(walls[stage]):.3f})  median CPU {statistics.median(cpus[stage]):.3f} s")  # fmt: skip


def document(home: Path, dump: Path) -> None:
    """The SHA-256 of the dump's leak_document JSON: run it with old and new code, compare."""
    from bpoguard.guard.keys import KeyfileProvider
    from bpoguard.guard.vault import Vault
    from bpoguard.trace.leak import trace_leak
    from bpoguard.trace.report import leak_document
    from bpoguard.workspace import Workspace

    with Workspace.open(home) as ws:
        trace = trace_leak(ws, Vault(KeyfileProvider.from_dir(ws.settings.keys_dir)), dump)
        text = json.dumps(leak_document(trace), indent=2, sort_keys=True)
    print(hashlib.sha256(text.encode()).hexdigest(), len(text))


def _rows(path: Path) -> list[tuple[Any, ...]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.suffix == ".arrow":
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
    else:
        table = pq.read_table(path)
    columns = [table.column(n).to_pylist() for n in table.column_names]
    return sorted(zip(*columns, strict=True), key=repr)


def compare(old: Path, new: Path) -> int:
    """Every cache file of ``old`` against ``new``: bytes, else the rows sorted."""
    failures = 0
    for kind, pattern in (("summary", "pairs-v*.parquet"), ("totals", "dump/people-v*.parquet"),
                          ("pair index", "dump/bycustomer-v*.arrow"),
                          ("firsts", "firsts/firsts-v*.parquet"),
                          ("counts", "firsts/counts-v*.parquet")):  # fmt: skip
        a, b = sorted(old.glob(pattern)), sorted(new.glob(pattern))
        if not a or not b:
            continue
        if [p.name for p in a] != [p.name for p in b]:
            print(f"{kind}: different names {a} {b}")
            failures += 1
        elif a[0].read_bytes() == b[0].read_bytes():
            print(f"{kind}: the same bytes ({a[0].stat().st_size:,})")
        elif _rows(a[0]) == _rows(b[0]):
            print(f"{kind}: the same rows (the bytes differ)")
        else:
            print(f"{kind}: DIFFERENT")
            failures += 1
    rows_a = sorted(old.glob("rows-v*/")), sorted(new.glob("rows-v*/"))
    if rows_a[0] and rows_a[1]:
        for sub in ("", "people/"):
            got = [_rows_of(r, sub) for r in rows_a]
            same = got[0] == got[1]
            print(f"rows cache {sub or 'by customer'}: {'the same rows' if same else 'DIFFERENT'}"
                  f" in every bucket ({len(got[0])} buckets)")  # fmt: skip
            failures += not same
    return failures


def _rows_of(folders: list[Path], sub: str) -> dict[str, str]:
    """Bucket -> a digest of its rows sorted (every segment together)."""
    import duckdb

    found: dict[str, list[Path]] = {}
    for folder in folders:
        for bucket in sorted((folder / sub).glob("bucket=*")):
            found.setdefault(bucket.name, []).extend(sorted(bucket.glob("*.parquet")))
    con = duckdb.connect()
    digests = {}
    for bucket, files in found.items():
        rows = con.execute(
            "SELECT * REPLACE (epoch_us(time) AS time) FROM read_parquet(?, union_by_name = true) "
            "ORDER BY ALL",
            [[str(f) for f in files]],
        ).fetchall()
        digests[bucket] = hashlib.sha256(repr(rows).encode()).hexdigest()
    con.close()
    return digests


def main() -> None:
    """Parse the arguments and run one of the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--dump", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("what", nargs="*")
    args = parser.parse_intermixed_args()
    if args.child == "stages":
        _child_stages(args.home, args.out)
    elif args.child:
        _child_build(args.home, args.out, args.child)
    elif args.what[:1] == ["build"]:
        build(args.home, args.out, args.what[1:] or list(KINDS))
    elif args.what[:1] == ["stages"]:
        stages(args.home, args.dump, args.runs, args.out or Path("/tmp/bench-trace-stages.pkl"))
    elif args.what[:1] == ["document"]:
        document(args.home, args.dump)
    elif args.what[:1] == ["compare"] and len(args.what) == 3:
        sys.exit(1 if compare(Path(args.what[1]), Path(args.what[2])) else 0)
    else:
        parser.error("build KIND..., stages or compare OLD NEW")


if __name__ == "__main__":
    main()
