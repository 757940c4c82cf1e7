"""Benchmark the trace's scoring core on a BPO-sized access log.

The full simulator takes about 35 minutes at this scale, so the access log is
built directly, with the correlations that make attribution hard on real
queues: agents work in teams of twelve, five teams share one queue of the
client's customers, a call overflows to another queue of the same client one
time in ten, each call goes to whoever of the queue's day or late half is
free, and a few customers call again and again (log-normal call rates).

    python benchmarks/bench_trace.py                      # 10,000 agents, 1,000,000 customers, 90 days
    python benchmarks/bench_trace.py --agents 1200 --customers 100000 --trials 50   # quicker

Prints, over the trials of each case, how often the culprits rank where they
should, the time per trial (median, p99), the time for a 10,000-record dump and
peak memory. Figures are from a 2-core machine shared with other work.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bpoguard.trace.complaints import Grouping, rank_groups
from bpoguard.trace.scoring import AccessIndex, attribute

DAY_US = 86_400 * 1_000_000
TEAM = 12
TEAMS_PER_QUEUE = 5  # --teams-per-queue: fewer teams a queue, more overlap between colleagues
CLIENTS = 4


@dataclass
class World:
    """A built access log: distinct (agent, customer) pairs with the first access time."""

    agents: int
    customers: int
    days: int
    person: npt.NDArray[np.int64]
    customer: npt.NDArray[np.int64]
    first_us: npt.NDArray[np.int64]
    queue_of_agent: npt.NDArray[np.int64]
    index: AccessIndex


def build(agents: int, customers: int, days: int, calls_per_customer: float, seed: int) -> World:
    """Calls routed to queues and agents, reduced to first access per (agent, customer)."""
    rng = np.random.default_rng(seed)
    per_queue = TEAM * TEAMS_PER_QUEUE
    queues = max(CLIENTS, agents // per_queue)
    agents = queues * per_queue
    queue_of_customer = np.sort(rng.integers(0, queues, customers))
    # Log-normal call rates: most customers call once or twice a quarter, a few weekly.
    rates = rng.lognormal(mean=0.0, sigma=1.0, size=customers)
    rates *= calls_per_customer / rates.mean()
    calls = rng.poisson(rates)
    customer = np.repeat(np.arange(customers, dtype=np.int64), calls)
    queue = queue_of_customer[customer]
    overflow = rng.random(customer.size) < 0.10
    # Overflow stays with the client (queues are dealt to clients in turn).
    other = rng.integers(0, queues // CLIENTS, customer.size) * CLIENTS + queue % CLIENTS
    queue = np.where(overflow & (other < queues), other, queue)
    half = rng.integers(0, 2, customer.size)  # day or late half of the queue's agents
    seat = rng.integers(0, per_queue // 2, customer.size)
    person = queue * per_queue + half * (per_queue // 2) + seat
    at = rng.integers(0, days * DAY_US, customer.size)
    key = person * customers + customer
    order = np.lexsort((at, key))
    key, at = key[order], at[order]
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, at = key[first], at[first]
    p, c = key // customers, key % customers
    names = [f"A{k:05d}" for k in range(agents)]
    index = AccessIndex.from_pairs(names, p, c)
    queue_of_agent = np.arange(agents, dtype=np.int64) // per_queue
    return World(agents, customers, days, p, c, at, queue_of_agent, index)


def _accessed(world: World, agent: int) -> npt.NDArray[np.int64]:
    lo, hi = np.searchsorted(world.person, [agent, agent + 1])
    return world.customer[lo:hi]


def _active_agent(world: World, rng: np.random.Generator, need: int) -> int:
    while True:
        agent = int(rng.integers(0, world.agents))
        if _accessed(world, agent).size >= need:
            return agent


def _rank(result_people: list[str], name: str) -> int:
    return result_people.index(name) + 1 if name in result_people else 10**9


def case_one(world: World, rng: np.random.Generator, records: int = 5) -> tuple[bool, float]:
    agent = _active_agent(world, rng, records)
    dump = rng.choice(_accessed(world, agent), size=records, replace=False)
    start = time.perf_counter()
    result = attribute(world.index, dump.tolist())
    took = time.perf_counter() - start
    return _rank([s.person for s in result.ranking], world.index.people[agent]) == 1, took


def case_mixed(world: World, rng: np.random.Generator) -> tuple[bool, float]:
    agent = _active_agent(world, rng, 10)
    mine = _accessed(world, agent)
    dump = rng.choice(mine, size=10, replace=False).tolist()
    while len(dump) < 20:  # from elsewhere: customers this agent never accessed
        c = int(rng.integers(0, world.customers))
        if c not in set(mine.tolist()) and c not in dump:
            dump.append(c)
    start = time.perf_counter()
    result = attribute(world.index, dump)
    took = time.perf_counter() - start
    return _rank([s.person for s in result.ranking], world.index.people[agent]) == 1, took


def case_pair(world: World, rng: np.random.Generator) -> tuple[bool, float]:
    a = _active_agent(world, rng, 10)
    queue = world.queue_of_agent[a]
    # Colluding colleagues: the other one works the same queue (the hard case).
    while True:
        b = int(queue * TEAM * TEAMS_PER_QUEUE + rng.integers(0, TEAM * TEAMS_PER_QUEUE))
        if b != a and _accessed(world, b).size >= 10:
            break
    dump = set(rng.choice(_accessed(world, a), size=10, replace=False).tolist())
    dump |= set(rng.choice(_accessed(world, b), size=10, replace=False).tolist())
    start = time.perf_counter()
    result = attribute(world.index, dump)
    took = time.perf_counter() - start
    people = [s.person for s in result.ranking]
    names = world.index.people
    return max(_rank(people, names[a]), _rank(people, names[b])) <= 3, took


def case_ring(world: World, rng: np.random.Generator, grouping: Grouping) -> tuple[bool, float]:
    a = _active_agent(world, rng, 20)
    queue = world.queue_of_agent[a]
    ring = {a}
    while len(ring) < 3:
        ring.add(int(queue * TEAM * TEAMS_PER_QUEUE + rng.integers(0, TEAM * TEAMS_PER_QUEUE)))
    reports: dict[int, int] = {}
    members = sorted(ring)
    for k in range(15):  # victims the ring accessed, reported 3 to 20 days later
        member = members[k % 3]
        lo, hi = np.searchsorted(world.person, [member, member + 1])
        row = int(rng.integers(lo, hi))
        reports[int(world.customer[row])] = int(world.first_us[row] + rng.integers(3, 21) * DAY_US)
    while len(reports) < 30:  # unrelated fraud, reported in the second half
        c = int(rng.integers(0, world.customers))
        reports.setdefault(c, int(rng.integers(world.days // 2, world.days) * DAY_US))
    universe = np.arange(world.customers, dtype=np.int64)
    start = time.perf_counter()
    lines = rank_groups({"staff": grouping}, world.customer, world.first_us, reports, universe)
    took = time.perf_counter() - start
    top = [ln.value for ln in lines[:5]]
    return all(world.index.people[m] in top for m in ring), took


def _figures(name: str, outcomes: list[tuple[bool, float]], bar: str) -> None:
    hits = sum(ok for ok, _ in outcomes)
    times = sorted(t for _, t in outcomes)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(
        f"{name:<44} {hits}/{len(outcomes)} = {100 * hits / len(outcomes):5.1f}% (bar {bar})  "
        f"median {1000 * statistics.median(times):7.1f} ms  p99 {1000 * p99:7.1f} ms"
    )


def main() -> None:
    """Build the world, run the trials, print the figures."""
    global TEAMS_PER_QUEUE  # one setting, read by every case
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--calls", type=float, default=3.0, help="mean calls per customer")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--teams-per-queue", type=int, default=5)
    args = parser.parse_args()
    TEAMS_PER_QUEUE = args.teams_per_queue
    start = time.perf_counter()
    world = build(args.agents, args.customers, args.days, args.calls, args.seed)
    sizes = world.index.person_size
    print(
        f"world: {world.agents:,} agents, {world.customers:,} customers, {args.days} days, "
        f"{TEAMS_PER_QUEUE * TEAM} agents a queue, "
        f"{world.index.pairs:,} distinct agent-customer pairs, built in "
        f"{time.perf_counter() - start:.1f} s; customers per agent median "
        f"{int(np.median(sizes))}, p99 {int(np.percentile(sizes, 99))}"
    )
    rng = np.random.default_rng(args.seed + 1)
    grouping = Grouping(world.person, list(world.index.people))
    _figures(
        "5 records from one agent: ranked first",
        [case_one(world, rng) for _ in range(args.trials)],
        ">= 99%",
    )
    _figures(
        "20 records, half from elsewhere: first",
        [case_mixed(world, rng) for _ in range(args.trials)],
        ">= 99%",
    )
    _figures(
        "two agents of one queue pooling: both top 3",
        [case_pair(world, rng) for _ in range(args.trials)],
        ">= 95%",
    )
    _figures(
        "30 reports, half from a ring of 3: all top 5",
        [case_ring(world, rng, grouping) for _ in range(args.trials)],
        ">= 95%",
    )
    agent = _active_agent(world, rng, 50)
    big = set(rng.choice(world.customer, size=9_950, replace=False).tolist())
    big |= set(_accessed(world, agent)[:50].tolist())
    tracemalloc.start()
    begin = time.perf_counter()
    result = attribute(world.index, big)
    took = time.perf_counter() - begin
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"10,000-record dump: scored in {took:.2f} s (target <= 2 s), {len(result.suspects)} suspects, "
        f"peak {peak / 2**20:.0f} MiB while scoring; process peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
