"""HTTP benchmark: 200 simulated agents viewing their callers' slices through `uvicorn` workers.

    .venv/bin/python benchmarks/bench_http.py [--home DIR] [--agents 200] [--workers 2]
        [--duration 15] [--threads 2] [--rate VIEWS_PER_S] [--group-limit 32]
        [--http auto|h11] [--db POSTGRESQL_URL] [--default-gc]

A simulated BPO (SQLite, customers in the vault) is built first unless --home
already holds one (not timed). A uvicorn server with --workers processes
serves the real app over it; the CRM opens one call per agent through the
API; then wrk (/usr/bin/wrk) drives --agents concurrent connections, each
request an agent's view of their own caller, with that agent's token,
enrolled device credential and premises address (sent as X-Forwarded-For
through the trusted "proxy" on loopback). Every view is decided by the
guard, written to the ledger and the lake, and served masked.

The one thing pinned is the clock: the workers' clock starts at the moment of
the simulated day when most agents are on shift, and runs in real time from
there, so the benchmark does not depend on the hour it is run at.

Figures: throughput, median and p99 latency, errors (non-200 and socket), the
ledger entries written (one per view), peak memory of each worker, and an
in-process figure for one decision on the same store for comparison.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bpoguard import workspace
from bpoguard.access import AccessRequest, Verb
from bpoguard.guard.directory import Directory, shift_window
from bpoguard.ledger import Ledger
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.store import models as m
from bpoguard.web import credentials
from bpoguard.web._protocol import HTTP_PROTOCOL
from bpoguard.workspace import Workspace

HERE = Path(__file__).parent
_H11 = "bpoguard.web._protocol:NoDelayH11Protocol"
WRK = Path("/usr/bin/wrk")


@dataclass
class Agent:
    staff: str
    device: str
    ip: str
    contract: str
    purpose: str
    customer: int
    token: str = ""
    device_credential: str = ""
    interaction: int = 0


# --- the server side: what each uvicorn worker imports ------------------------------------


def app_factory():  # type: ignore[no-untyped-def]
    """The app a worker builds: the real app, its clock pinned to the chosen moment."""
    from bpoguard import collector
    from bpoguard.web._client import parse_networks
    from bpoguard.web._settings import WebSettings
    from bpoguard.web.app import create_app

    pinned = dt.datetime.fromisoformat(os.environ["BENCH_AT"])
    started = float(os.environ["BENCH_T0"])

    def clock() -> dt.datetime:
        return pinned + dt.timedelta(seconds=time.time() - started)

    settings = WebSettings(
        home=Path(os.environ["BENCH_HOME"]),
        trusted_proxies=parse_networks(["127.0.0.1/32"]),
        clock=clock,
        group_limit=int(os.environ.get("BENCH_GROUP_LIMIT", "32")),
    )
    app = create_app(settings)
    if os.environ.get("BENCH_DEFAULT_GC") != "1":
        collector.tune()  # as bpoguard serve's workers do
    return app


# --- the world ----------------------------------------------------------------------------


def build(home: Path, agents: int, db: str | None = None) -> None:
    workspace.init(home, db)  # the workspace's config names the database from then on
    with Workspace.open(home) as ws:
        # About a quarter of a BPO's agents are on shift at its busiest moment.
        config = SimConfig(agents=agents, customers=5_000, days=1, scenarios="none", guard=True)
        simulate(ws, config)


def on_shift(home: Path, day: dt.date) -> tuple[dt.datetime, list[Agent]]:
    """The moment of the day with most agents on shift, and those agents."""
    with Workspace.open(home) as ws, ws.store.engine.connect() as conn:
        directory = Directory.load(conn)
        rows = conn.execute(
            select(m.Staff.id, m.Staff.site_id, m.Staff.shift, m.Device.id)
            .join(m.Device, m.Device.holder_id == m.Staff.id)
            .where(
                m.Staff.role == m.StaffRole.AGENT,
                m.Device.kind == m.DeviceKind.DESKTOP,
                m.Device.status == m.DeviceStatus.ISSUED,
                m.Staff.left.is_(None),
                m.Staff.notice_given.is_(None),
            )
            .order_by(m.Staff.id)
        ).all()
        contracts = conn.execute(select(m.Contract.id, m.Contract.client_id,
                                        m.Contract.allowed_sites)).all()  # fmt: skip
        purposes = {p.contract_id: p.name for p in conn.execute(select(m.Purpose))}
        customers = {c.client_id: [] for c in contracts}  # type: dict[str, list[int]]
        for cid, client in conn.execute(
            select(m.Customer.id, m.Customer.client_id).where(m.Customer.is_canary.is_(False))
        ):
            customers[client].append(cid)
    best: tuple[dt.datetime, list[Agent]] = (dt.datetime.now(dt.UTC), [])
    for step in range(48):
        # Half past, plus an hour's margin before any shift ends during the run.
        at = dt.datetime.combine(day, dt.time(0, 15), tzinfo=dt.UTC) + dt.timedelta(
            minutes=30 * step
        )
        chosen = []
        used = {c: 0 for c in customers}
        for staff, site_id, shift, device in rows:
            site = directory.site(site_id)
            window = shift_window(site, shift, at) if site else None
            if site is None or window is None or window.end - at < dt.timedelta(hours=1):
                continue
            contract = next((c for c in contracts if site_id in c.allowed_sites), None)
            if contract is None or contract.id not in purposes:
                continue
            pool = customers[contract.client_id]
            chosen.append(Agent(staff, device, str(site.networks[0].network_address + 50),
                                contract.id, purposes[contract.id],
                                pool[used[contract.client_id] % len(pool)]))  # fmt: skip
            used[contract.client_id] += 1
        if len(chosen) > len(best[1]):
            best = (at, chosen)
    return best


def credentials_for(home: Path, agents: list[Agent], at: dt.datetime) -> str:
    with Workspace.open(home) as ws, ws.store.engine.begin() as conn:
        for agent in agents:
            _, agent.token = credentials.create_token(conn, at, staff_id=agent.staff)
            _, agent.device_credential = credentials.enrol_device(conn, agent.device, at)
        _, system = credentials.create_token(conn, at, system="bench-crm")
    return system


# --- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(
    home: Path, at: dt.datetime, workers: int, port: int, protocol: str, group_limit: int
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_HOME": str(home), "BENCH_AT": at.isoformat(),
           "BENCH_T0": str(time.time()), "BENCH_GROUP_LIMIT": str(group_limit)}  # fmt: skip
    command = [sys.executable, "-m", "uvicorn", "bench_http:app_factory", "--factory",
               "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--no-access-log", "--no-proxy-headers",
               "--log-level", "warning",
               "--http", protocol,
               "--timeout-worker-healthcheck", "60"]  # fmt: skip
    server = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.kill()
    raise SystemExit("the server did not start")


def open_calls(base: str, system: str, agents: list[Agent], first: int) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {system}"}) as client:
        for n, agent in enumerate(agents):
            agent.interaction = first + n
            response = client.post("/api/v1/interactions", json={
                "id": agent.interaction, "contract_id": agent.contract, "staff_id": agent.staff,
                "customer_id": agent.customer, "purpose": agent.purpose})  # fmt: skip
            if response.status_code != 201:
                raise SystemExit(f"could not open a call: {response.text}")
        # One view each, checked, before the load: every agent is allowed.
        for agent in agents:
            response = client.post(
                f"/api/v1/customers/{agent.customer}/view",
                headers=_headers(agent),
                json={"interaction_id": agent.interaction},
            )
            if response.status_code != 200:
                raise SystemExit(f"{agent.staff} is refused: {response.text}")


def _headers(agent: Agent) -> dict[str, str]:
    return {"Authorization": f"Bearer {agent.token}", "X-Device-Credential":
            agent.device_credential, "X-Forwarded-For": agent.ip,
            "Content-Type": "application/json"}  # fmt: skip


def cpu_seconds(server: subprocess.Popen[bytes]) -> float:
    """User + system CPU time used so far by the server and its worker processes."""
    pids = [server.pid]
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    ticks = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists():
            fields = stat.read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_memory(server: subprocess.Popen[bytes]) -> list[int]:
    """VmHWM (peak resident memory, KiB) of the server's worker processes."""
    pids = [server.pid]
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    peaks = []
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]))
    return peaks


# --- the load -----------------------------------------------------------------------------

_LUA = """
local agents = %s
local reqs = {}
local n = 0
init = function(args)
  for _, a in ipairs(agents) do
    table.insert(reqs, wrk.format("POST", a.path, a.headers, a.body))
  end
  n = math.random(#reqs)
end
request = function()
  n = n %% #reqs + 1
  return reqs[n]
end
done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"p50_us\\": %%d, \\"p99_us\\": %%d, " ..
    "\\"max_us\\": %%d, \\"status_errors\\": %%d, \\"connect_errors\\": %%d, " ..
    "\\"read_errors\\": %%d, \\"write_errors\\": %%d, \\"timeouts\\": %%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
"""


# The HTTP layer's ceiling on this machine: the same connections, a route that decides nothing.
_HEALTH = _LUA.split("local agents")[0] + "done = " + _LUA.split("done = ", 1)[1].replace("%%", "%")


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string literal for this text


def lua_script(agents: list[Agent]) -> str:
    entries = []
    for agent in agents:
        headers = ", ".join(
            f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in _headers(agent).items()
        )
        body = json.dumps({"interaction_id": agent.interaction})
        path = f"/api/v1/customers/{agent.customer}/view"
        entries.append(
            f"{{path = {_lua_string(path)}, headers = {{{headers}}}, body = {_lua_string(body)}}}"
        )
    return _LUA % ("{" + ",\n".join(entries) + "}")


def run_wrk(
    base: str,
    agents: list[Agent],
    threads: int,
    duration: int,
    workdir: Path,
    health: bool = False,
    rate: float | None = None,
) -> dict[str, int]:
    """wrk's figures for the agents' views (or, for a baseline, GET /api/v1/health).

    Without `rate` every connection sends its next request the moment the last
    is answered (closed loop: the latency is then 200 / throughput by Little's
    law). With `rate`, each agent pauses between views, a random 0 to 2x the
    pause that offers `rate` views/s in all: agents working at a pace, the
    latency that of a server not saturated.
    """
    script = workdir / "views.lua"
    text = _HEALTH if health else lua_script(agents)
    if rate:
        pause_ms = round(1000 * len(agents) / rate)
        text += f"\ndelay = function()\n  return math.random(0, {2 * pause_ms})\nend\n"
    script.write_text(text)
    target = f"{base}/api/v1/health" if health else base
    result = subprocess.run(
        [str(WRK), "-t", str(threads), "-c", str(len(agents)), "-d", f"{duration}s",
         "--timeout", "5s", "-s", str(script), target],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = next(x for x in result.stdout.splitlines() if x.startswith("BENCH "))
    figures: dict[str, int] = json.loads(line.removeprefix("BENCH "))
    return figures


def one_at_a_time(base: str, agent: Agent, count: int = 200) -> list[float]:
    """One agent alone, one view after another: a view's time with nothing queued (ms)."""
    samples = []
    url = f"/api/v1/customers/{agent.customer}/view"
    with httpx.Client(base_url=base, headers=_headers(agent)) as client:
        for _ in range(count):
            start = time.perf_counter()
            response = client.post(url, json={"interaction_id": agent.interaction})
            samples.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{agent.staff} is refused: {response.text}")
    return samples


def in_process(home: Path, agent: Agent, at: dt.datetime, count: int = 500) -> list[float]:
    """One decision + slice + ledger entry, in this process, on the same store (ms)."""
    from bpoguard.audit import AuditSink
    from bpoguard.events.lake import LakeWriter
    from bpoguard.guard.keys import KeyfileProvider
    from bpoguard.guard.service import Guard
    from bpoguard.guard.vault import Vault

    samples = []
    with Workspace.open(home) as ws:
        lake = LakeWriter(ws.settings.lake_dir, source="bench")
        guard = Guard(ws.store, Vault(KeyfileProvider.from_dir(ws.settings.keys_dir)),
                      AuditSink(Ledger.for_workspace(ws), lake))  # fmt: skip
        contract = guard.directory.contract(agent.contract)
        fields = tuple(sorted(contract.purposes[agent.purpose].fields))  # as the API's default
        for _ in range(count):
            request = AccessRequest(agent.staff, Verb.VIEW, agent.customer, fields,
                                    at, agent.ip, agent.device, agent.interaction)  # fmt: skip
            start = time.perf_counter()
            guard.view(request)
            samples.append((time.perf_counter() - start) * 1000)
        lake.commit()
    return samples


def _on_postgres(home: Path) -> bool:
    with Workspace.open(home) as ws:
        return not ws.store.is_sqlite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, help="reuse (or build here) the simulated workspace")
    parser.add_argument("--agents", type=int, default=200, help="concurrent agents (connections)")
    parser.add_argument("--world", type=int, default=900, help="agents in the simulated BPO")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--group-limit",
        type=int,
        default=32,
        help="decisions committed together at most (1: no group commit)",
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds of load")
    parser.add_argument(
        "--rate",
        type=float,
        help="views/s offered by all agents together "
        "(each pauses between views); default: as fast as answered",
    )
    parser.add_argument("--db", help="build the world on this PostgreSQL URL (new --home only)")
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="leave the workers' garbage collector at CPython's defaults (bpoguard serve tunes it)",
    )
    parser.add_argument(
        "--http",
        choices=("auto", "h11"),
        default="auto",
        help="HTTP parser: as bpoguard serve chooses (httptools), or h11",
    )
    args = parser.parse_args()
    if not WRK.exists():
        raise SystemExit("wrk is not installed at /usr/bin/wrk")
    workdir = Path(tempfile.mkdtemp(prefix="bench-http-"))
    home = args.home or workdir / "ws"
    if not (home / "config.toml").exists():
        print(f"building a simulated BPO of {args.world} agents in {home} ...", file=sys.stderr)
        build(home, args.world, args.db)
    at, agents = on_shift(home, SimConfig().start)
    if len(agents) < args.agents:
        raise SystemExit(f"only {len(agents)} agents on shift; give a larger --world")
    agents = agents[: args.agents]
    system = credentials_for(home, agents, at)
    port = free_port()
    protocol = HTTP_PROTOCOL if args.http == "auto" else _H11
    if args.default_gc:
        os.environ["BENCH_DEFAULT_GC"] = "1"  # read by app_factory in each worker
    server = start_server(home, at, args.workers, port, protocol, args.group_limit)
    base = f"http://127.0.0.1:{port}"
    try:
        with Workspace.open(home) as ws, ws.store.engine.connect() as conn:
            first = (conn.scalar(select(func.max(m.Interaction.id))) or 0) + 1
        open_calls(base, system, agents, first)
        with Workspace.open(home) as ws:
            before = Ledger.for_workspace(ws).size()
        baseline = run_wrk(base, agents, args.threads, max(3, args.duration // 3), workdir, True)
        alone = one_at_a_time(base, agents[0])
        cpu_before = cpu_seconds(server)
        figures = run_wrk(base, agents, args.threads, args.duration, workdir, rate=args.rate)
        cpu_used = cpu_seconds(server) - cpu_before
        with Workspace.open(home) as ws:
            after = Ledger.for_workspace(ws).size()
        memory = peak_memory(server)
    finally:
        server.terminate()
        server.wait(timeout=30)
    local = in_process(home, agents[0], at)
    seconds = figures["duration_us"] / 1e6
    errors = sum(figures[k] for k in ("status_errors", "connect_errors", "read_errors",
                                     "write_errors", "timeouts"))  # fmt: skip
    report = {
        "agents": len(agents),
        "workers": args.workers,
        "http": protocol.rsplit(":", 1)[1],
        "group_limit": args.group_limit,
        "collector": "default" if args.default_gc else "tuned (bpoguard.collector.tune)",
        "offered_views_per_s": args.rate,
        "database": "postgresql" if _on_postgres(home) else "sqlite",
        "cpus": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "views": figures["requests"],
        "views_per_s": round(figures["requests"] / seconds, 1),
        # CPU the server spent per view: less sensitive to a shared machine than rates.
        "server_cpu_ms_per_view": round(1000 * cpu_used / max(1, figures["requests"]), 2),
        "median_ms": figures["p50_us"] / 1000,
        "p99_ms": figures["p99_us"] / 1000,
        "max_ms": figures["max_us"] / 1000,
        "errors": errors,
        "error_detail": {k: v for k, v in figures.items() if k.endswith(("errors", "timeouts"))},
        "ledger_entries_written": after - before,
        "worker_peak_rss_mib": [round(kib / 1024, 1) for kib in memory],
        "one_agent_alone_median_ms": round(statistics.median(alone), 3),
        "one_agent_alone_p99_ms": round(sorted(alone)[int(0.99 * len(alone))], 3),
        "health_baseline_per_s": round(baseline["requests"] / (baseline["duration_us"] / 1e6), 1),
        "health_baseline_p99_ms": baseline["p99_us"] / 1000,
        "in_process_view_median_ms": round(statistics.median(local), 3),
        "in_process_view_p99_ms": round(sorted(local)[int(0.99 * len(local))], 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
