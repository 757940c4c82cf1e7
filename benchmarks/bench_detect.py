"""Benchmark detection: features + scoring over CERT-format events, DuckDB vs Spark vs pandas.

For each scale it writes a CERT-format dataset (`bpoguard simulate cert`),
imports it (`bpoguard import cert`), then times, each in a fresh child process
so that peak RSS is that engine's own:

- duckdb: the Ibis feature expressions on DuckDB, then the detectors and risk;
- spark:  the same expressions on Spark in local mode (local[*]);
- pandas: a straightforward pandas implementation of the same daily features
  (whole lake read into one DataFrame, groupby per feature), checked equal
  to the Ibis table, then the same scoring.

With ``--home DIR`` (repeatable) it skips generating and importing and
times workspaces already imported (``bench_import.py --keep``), e.g. the
30,000,000-event one. ``--end-to-end`` adds what ``bpoguard detect`` does
whole: the feature cache removed, features, detectors, alerts with their
evidence, risk, timed by stage. ``--features-only`` times the feature query
alone (no scoring), the part that grows with the events. Each child reports
wall and CPU seconds and the load average around it: the machine is shared,
so quote CPU too (for Spark, the Python driver's only: the JVM is not counted).

Usage:
    .venv/bin/python benchmarks/bench_detect.py [--users 200 600] [--days 120]
        [--engines duckdb spark pandas] [--home DIR ...] [--end-to-end] [--features-only] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent / "bpoguard"
ENGINES = ("duckdb", "spark", "pandas")


def prepare(root: Path, users: int, days: int) -> tuple[Path, int, float]:
    """A workspace holding an imported CERT-format dataset; returns (home, events, seconds)."""
    data, home = root / f"cert-{users}", root / f"ws-{users}"
    start = time.perf_counter()
    subprocess.run([BIN, "simulate", "cert", "--out", data, "--users", str(users),
                    "--days", str(days), "--insiders", "6", "--json"], check=True, capture_output=True)  # fmt: skip
    subprocess.run([BIN, "init", "--home", home], check=True, capture_output=True)
    subprocess.run([BIN, "import", "cert", data, "--home", home, "--json"], check=True, capture_output=True)  # fmt: skip
    seconds = time.perf_counter() - start
    from bpoguard.events.lake import count

    return home, count(home / "lake"), seconds


def child(engine: str, home: Path, score: bool = True) -> dict[str, Any]:
    """In the child: time features (and scoring) on one engine; report peak RSS."""
    import pandas as pd

    from bpoguard.detect import features, pipeline
    from bpoguard.detect.engine import open_engine
    from bpoguard.detect.lakefiles import lake_files
    from bpoguard.detect.people import directory_for
    from bpoguard.detect.rules import RuleSet
    from bpoguard.workspace import Workspace

    ws = Workspace.open(home)
    with ws.store.engine.connect() as conn:
        directory = directory_for(conn, ws.settings.lake_dir)
    files = lake_files(ws.settings.lake_dir)
    spec = features.FeatureSpec(directory=directory)
    load, cpu = os.getloadavg()[0], _cpu()
    start = time.perf_counter()
    if engine == "pandas":
        table = pandas_features(files, spec)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eng = open_engine(engine)
            table = features.collect(eng, eng.read_parquet(files), spec)
            eng.close()
    featured = time.perf_counter()
    found = (
        pipeline._detect(table, directory, RuleSet(), table.column("day")[-1].as_py())[0]
        if score
        else []
    )
    scored = time.perf_counter()
    frame = table.to_pandas().sort_values(["person", "day"]).reset_index(drop=True)
    return {
        "features_s": featured - start,
        "scoring_s": scored - featured,
        "total_s": scored - start,
        "cpu_s": _cpu() - cpu,
        "load": [load, os.getloadavg()[0]],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "person_days": table.num_rows,
        "findings": len(found),
        "digest": pd.util.hash_pandas_object(frame, index=False).sum().item(),
    }


def end_to_end(home: Path) -> dict[str, Any]:
    """In the child: ``bpoguard detect`` from scratch on DuckDB, timed by stage."""
    from bpoguard.detect import pipeline
    from bpoguard.workspace import Workspace

    # From scratch: no feature cache, no spill left over (alerts already stored stay).
    folder = pipeline.detect_dir(Workspace.open(home))
    (folder / pipeline.FEATURES_FILE).unlink(missing_ok=True)
    shutil.rmtree(folder / pipeline.SPILL_DIR, ignore_errors=True)
    marks: dict[str, float] = {}
    load, cpu = os.getloadavg()[0], _cpu()
    start = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        marks[f"{stage} {'done' if done == total else 'start'}"] = time.perf_counter() - start

    with Workspace.open(home) as ws:
        summary = pipeline.run(ws, "duckdb", progress=progress)
    total = time.perf_counter() - start
    features_s = marks["features done"]
    scoring_s = marks["detectors done"] - marks["detectors start"]
    return {
        "features_s": features_s,
        "scoring_s": scoring_s,
        "alerts_risk_s": total - marks["detectors done"],
        "total_s": total,
        "cpu_s": _cpu() - cpu,
        "load": [load, os.getloadavg()[0]],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "person_days": summary.person_days,
        "findings": summary.findings,
        "alerts": summary.alerts_total,
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pandas_features(files: list[Path], spec: Any) -> Any:
    """The daily features with pandas, as someone would write them without Ibis."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bpoguard.detect import domains as dom
    from bpoguard.detect.features import _ACTIVITY_PREFIXES, FEATURE_SCHEMA, SHIFT_GRACE

    cols = ["event_id", "time", "action", "actor", "customer_id", "src_ip", "device_id", "outcome",
            "interaction_id", "dest", "attachments", "removable", "canary", "fields"]  # fmt: skip
    e = pd.concat([pq.read_table(f, columns=cols).to_pandas() for f in files], ignore_index=True)
    e = e[e["actor"].notna()].copy()
    e["person"] = e["actor"]
    e["day"] = e["time"].dt.date
    e["eday"] = e["time"].astype("int64") // 86_400_000_000
    minute = e["time"].dt.hour * 60 + e["time"].dt.minute
    people = {p.person: p for p in spec.directory.people}
    start = e["person"].map(lambda p: people[p].shift_start if p in people else 420)
    length = e["person"].map(lambda p: people[p].shift_minutes if p in people else 720)
    offset = (minute - start + 1440) % 1440
    action = e["action"]
    activity = action.str.startswith(_ACTIVITY_PREFIXES)
    # The person's own cloud sign-ins (a phone at home) count as neither off shift nor off site.
    accounts = {a for a, _ in spec.directory.holders}
    counted = activity & ~((action == "auth.signin") & ~e["person"].isin(accounts))
    nets = dict(
        zip(
            *[spec.directory.network_table().column(c).to_pylist() for c in ("net24", "premises")],
            strict=True,
        )
    )
    e["net24"] = e["src_ip"].str.extract(r"^(\d+\.\d+\.\d+)\.\d+$")[0]
    premises = e["net24"].map(nets)
    e["netlabel"] = premises.astype(object).fillna(e["net24"])
    dest = e["dest"].str.lower()
    d = spec.domains

    def has(names: tuple[str, ...]) -> Any:
        return dest.str.contains(dom.pattern(names).replace("(", "(?:", 1), regex=True, na=False)

    rec = action.str.startswith("record.")
    noi = e["interaction_id"].isna()
    web = action.str.startswith("web.")
    send = action == "email.send"
    signin = action.isin(["mailbox.signin", "auth.signin", "auth.logon"])
    flags = pd.DataFrame({
        "person": e["person"], "day": e["day"],
        "reveals_no_interaction": (action == "record.reveal") & noi,
        "records_no_interaction": action.isin(["record.view", "record.reveal", "record.verify"]) & noi,
        "searches": action == "record.search",
        "denials": e["outcome"] == "denied",
        "canary_hits": e["canary"].fillna(False).astype(bool),
        "off_shift": counted & (offset >= length + SHIFT_GRACE) & (offset < 1440 - SHIFT_GRACE),
        "off_premises": (counted & e["net24"].notna() & premises.isna()) if nets else False,
        "signins_ok": signin & (e["outcome"] == "success"),
        "signins_failed": signin & (e["outcome"] == "failure"),
        "password_changes": action.isin(["account.password_change", "account.password_reset"]),
        "device_connects": (action == "device.connect") & e["removable"].fillna(False).astype(bool),
        "removable_files": action.str.startswith("file.") & e["removable"].fillna(False).astype(bool),
        "emails_sent": send,
        "emails_out": send & (e["attachments"].fillna(0) > 0) & has(d.personal + d.competitors),
        "emails_competitor": send & has(d.competitors),
        "leak_site_visits": web & has(d.file_sharing),
        "job_search": web & has(d.job_search),
        "hacking_sites": web & has(d.hacking),
    })  # fmt: skip
    keys = ["person", "day"]
    out = flags.groupby(keys).sum()
    out["events"] = e.groupby(keys).size()

    def distinct(mask: Any, column: str) -> Any:
        return e[mask].groupby(keys)[column].nunique()

    out["customers_viewed"] = distinct(rec, "customer_id")
    out["customers_revealed"] = distinct(action == "record.reveal", "customer_id")
    out["customers_exported"] = distinct(action == "record.export", "customer_id")
    out["interactions"] = distinct(rec, "interaction_id")
    contact = e["fields"].map(lambda f: f is not None and ("phone" in f or "email" in f))
    out["contact_reveals"] = (
        ((action == "record.reveal") & (e["outcome"] != "denied") & contact)
        .groupby([e["person"], e["day"]])
        .sum()
    )
    recipients = np.where(send & e["dest"].notna(), e["dest"].fillna("").str.count(",") + 1, 0)
    out["max_recipients"] = (
        pd.Series(recipients, index=e.index).groupby([e["person"], e["day"]]).max()
    )
    pfirst = e.groupby("person")["eday"].transform("min")
    for column, name in (("device_id", "new_devices"), ("netlabel", "new_networks")):
        used = e[e[column].notna()]
        first = used.groupby(["person", column])["eday"].transform("min")
        fresh = used[(first == used["eday"]) & (used["eday"] > pfirst[used.index])]
        out[name] = fresh.groupby(keys)[column].nunique()
    ok = e[signin & (e["outcome"] == "success") & e["netlabel"].notna()]
    hourly = ok.groupby([ok["person"], ok["day"], ok["time"].dt.hour])["netlabel"].nunique()
    out["concurrent_networks"] = hourly.groupby(level=[0, 1]).max()
    logons = e[(action == "auth.logon") & e["device_id"].notna()]
    counts = logons.groupby(["device_id", "person"]).size().reset_index(name="n")
    owner = (
        counts.sort_values(["device_id", "n", "person"], ascending=[True, False, True])
        .drop_duplicates("device_id")
        .set_index("device_id")["person"]
    )
    days = logons[["person", "day", "device_id"]].drop_duplicates()
    foreign = days[days["device_id"].map(owner) != days["person"]]
    out["foreign_logons"] = foreign.groupby(keys)["device_id"].nunique()
    notice = e[action == "hr.notice"].groupby("person")["eday"].min()
    leave = e[action == "hr.leave"].groupby("person")["eday"].min()
    active = e[activity].groupby(keys).size()
    for name, values in _shared_from_home(e, spec, signin, premises, nets).items():
        out[name] = values
    out = out.fillna(0).reset_index()
    first_eday = e.groupby(keys)["eday"].min().values
    n_day = out["person"].map(notice)
    l_day = out["person"].map(leave)
    out["days_since_notice"] = np.where(
        n_day.notna() & (first_eday >= n_day), first_eday - n_day.fillna(0), -1
    )
    act = out.set_index(keys).index.map(active.to_dict()).fillna(0).to_numpy() if len(active) else 0
    out["after_leaving"] = np.where(l_day.notna() & (first_eday > l_day), act, 0)
    out = out.sort_values(keys)
    return pa.Table.from_pandas(out[FEATURE_SCHEMA.names], preserve_index=False).cast(
        FEATURE_SCHEMA
    )


def _shared_from_home(e: Any, spec: Any, signin: Any, premises: Any, nets: Any) -> dict[str, Any]:
    """Sign-ins to a held shared account from the holder's own home address (pandas)."""
    import pandas as pd

    from bpoguard.detect.features import HOME_MAX_USERS

    holders = pd.DataFrame(spec.directory.holders, columns=["account", "holder"])
    outside = (e["net24"].notna() & premises.isna()) if nets else False
    ok = signin & (e["outcome"] == "success") & e["src_ip"].notna() & outside
    shared = e["person"].isin(holders["account"])
    s = e[ok & shared][["event_id", "person", "src_ip", "eday", "day", "time"]]
    own = e[ok & ~shared & (e["action"] == "auth.signin")]
    days = own[["person", "src_ip", "eday"]].drop_duplicates()
    users = days.groupby("src_ip")["person"].nunique()
    homes = days[days["src_ip"].map(users) <= HOME_MAX_USERS]
    held = s.merge(holders, left_on="person", right_on="account")
    matched = held.merge(homes, left_on=["holder", "src_ip"], right_on=["person", "src_ip"])
    matched = matched[matched["eday_y"] <= matched["eday_x"]]
    if matched.empty:
        return dict.fromkeys(
            (
                "shared_home_signins",
                "home_network_days",
                "shared_home_address",
                "shared_home_minute",
            ),
            0,
        )
    octets = matched["src_ip"].str.split(".", expand=True).astype("int64")
    number = ((octets[0] * 256 + octets[1]) * 256 + octets[2]) * 256 + octets[3]
    minute = (matched["time"].dt.hour * 60 + matched["time"].dt.minute).astype("int64")
    matched = matched.assign(key=minute * 4_294_967_296 + number)
    per = matched.groupby(["holder", "day", "event_id"]).agg(
        known=("eday_y", "nunique"), key=("key", "min")
    )
    daily = per.groupby(level=[0, 1]).agg(
        n=("key", "size"), known=("known", "max"), key=("key", "min")
    )
    daily.index.names = ["person", "day"]
    return {
        "shared_home_signins": daily["n"],
        "home_network_days": daily["known"],
        "shared_home_address": daily["key"] % 4_294_967_296,
        "shared_home_minute": daily["key"] // 4_294_967_296,
    }


def run_child(engine: str, home: Path, features_only: bool = False) -> dict[str, Any]:
    flags = ["--features-only"] if features_only else []
    done = subprocess.run([sys.executable, __file__, "--child", engine, "--home", str(home), *flags],
                          check=True, capture_output=True, text=True)  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[200, 600])
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--home", type=Path, action="append", help="an imported workspace")
    parser.add_argument("--end-to-end", action="store_true", help="also time bpoguard detect")
    parser.add_argument("--features-only", action="store_true", help="time features, not scoring")
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        home = args.home[0]
        if args.child == "e2e":
            result = end_to_end(home)
        else:
            result = child(args.child, home, score=not args.features_only)
        print(json.dumps(result))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        plan = [(h, 0) for h in args.home] if args.home else [(None, u) for u in args.users]
        for given, users in plan:
            if given is None:
                home, events, prep = prepare(Path(tmp), users, args.days)
            else:
                from bpoguard.events.lake import count

                home, events, prep = given, count(given / "lake"), 0.0
            row: dict[str, Any] = {
                "users": users if given is None else str(given),
                "days": args.days if given is None else None,
                "events": events,
                "generate_import_s": prep,
            }
            for engine in args.engines:
                row[engine] = run_child(engine, home, args.features_only)
            digests = {row[e]["digest"] for e in args.engines}
            row["tables_identical"] = len(digests) == 1
            if args.end_to_end:
                row["end_to_end"] = run_child("e2e", home)
            rows.append(row)
            if not args.json:
                print(_line(row, args.engines), flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))


def _line(row: dict[str, Any], engines: list[str]) -> str:
    what = f"{row['users']} users x {row['days']} days" if row["days"] else row["users"]
    parts = [f"{row['events']:>10,} events ({what}):"]
    for e in engines:
        r = row[e]
        rate = row["events"] / r["total_s"]
        parts.append(f"{e} {r['total_s']:.1f} s (features {r['features_s']:.1f}, scoring {r['scoring_s']:.1f}; "
                     f"{rate:,.0f} events/s; CPU {r['cpu_s']:.1f} s; peak {r['peak_rss_mib']:.0f} MiB; "
                     f"load {r['load'][0]:.1f}-{r['load'][1]:.1f})")  # fmt: skip
    if "end_to_end" in row:
        r = row["end_to_end"]
        parts.append(f"bpoguard detect end to end {r['total_s']:.1f} s (features {r['features_s']:.1f}, "
                     f"scoring {r['scoring_s']:.1f}, alerts and risk {r['alerts_risk_s']:.1f}; CPU {r['cpu_s']:.1f} s; "
                     f"peak {r['peak_rss_mib']:.0f} MiB; {r['person_days']:,} person-days, {r['alerts']} alerts; "
                     f"load {r['load'][0]:.1f}-{r['load'][1]:.1f})")  # fmt: skip
    if "duckdb" in engines:
        for e in engines:
            if e != "duckdb":
                parts.append(f"{e}/duckdb {row[e]['total_s'] / row['duckdb']['total_s']:.1f}x")
    parts.append(f"identical feature tables: {row['tables_identical']}")
    return "\n  ".join(parts)


if __name__ == "__main__":
    main()
