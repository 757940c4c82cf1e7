"""Policy benchmarks: latency of one decision and decisions per second on one core.

    .venv/bin/python benchmarks/bench_policy.py [--quick] [--cpu N]

Measures :meth:`PolicySet.decide` on the default policy set (pre-parsed Cedar
policy set, cached entity slices, Cedar's answers remembered on what they
depend on), the same with nothing remembered, first views of new customers
(budget counts moving) with and without the memo, :meth:`PolicySet.decide_many` in batches,
and, for comparison, cedarpy called with the policy *text* on every request,
which makes Cedar parse the policies each time. Requests rotate over many
staff and customers, so the entity-slice cache both hits (an agent asking
again about the customer on the call) and misses (a new customer).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence

import cedarpy

from bpoguard.access import Verb
from bpoguard.fields import FieldType as F
from bpoguard.guard.facts import Facts, StaffStatus, cedar_entities, cedar_request
from bpoguard.guard.policy import PolicySet, default_policy_text
from bpoguard.store.models import StaffRole

BASE = Facts(
    staff_id="MUM1-A0042",
    role=StaffRole.AGENT,
    site_id="MUM-1",
    status=StaffStatus.ACTIVE,
    action=Verb.VIEW,
    fields=(F.NAME, F.DATE_OF_BIRTH, F.ADDRESS, F.CARD_NUMBER),
    customer_id=4711,
    client_id="northbank",
    source_ip="10.20.1.7",
    on_premises=True,
    premises_site_id="MUM-1",
    site_allowed=True,
    device_id="MUM1-D0042",
    device_registered=True,
    device_issued_to_principal=True,
    in_shift=True,
    shift="day",
    interaction_id=123,
    interaction_open=True,
    interaction_customer_matches=True,
    purpose="balance_enquiry",
    purpose_fields=frozenset({F.NAME, F.DATE_OF_BIRTH, F.ADDRESS, F.CARD_NUMBER, F.BALANCE}),
    purpose_revealable=frozenset({F.BALANCE}),
    records_used_shift=30,
    records_limit_shift=80,
    records_used_hour=5,
    records_limit_hour=20,
    reveals_limit_shift=10,
)


def workload(n: int, seed: int = 7) -> list[Facts]:
    """A mix of a call centre's requests: mostly views, some reveals, denials, searches."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        staff = rng.randrange(300)
        customer = 100_000 + rng.randrange(20_000) if rng.random() < 0.5 else 100_000 + i % 50
        facts = dataclasses.replace(
            BASE, staff_id=f"MUM1-A{staff:04d}", customer_id=customer, interaction_id=7_000_000 + i
        )
        roll = rng.random()
        if roll < 0.15:
            facts = dataclasses.replace(
                facts, action=Verb.REVEAL, fields=(F.BALANCE,), reason_given=True
            )
        elif roll < 0.20:
            facts = dataclasses.replace(facts, action=Verb.SEARCH, fields=(F.PHONE,))
        elif roll < 0.25:
            facts = dataclasses.replace(facts, on_premises=False, source_ip="203.0.113.7")
        out.append(facts)
    return out


def first_views(n: int, seed: int = 11) -> list[Facts]:
    """First views: each a new customer on a new call, the person's budget counts moving."""
    rng = random.Random(seed)
    return [
        dataclasses.replace(
            BASE,
            staff_id=f"MUM1-A{rng.randrange(300):04d}",
            customer_id=1_000_000 + i,
            interaction_id=8_000_000 + i,
            records_used_shift=i % 79,
            records_used_hour=i % 19,
        )
        for i in range(n)
    ]


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latencies(call: Callable[[Facts], object], requests: Sequence[Facts]) -> list[float]:
    for facts in requests[:20]:  # warm caches and the allocator
        call(facts)
    samples = []
    for facts in requests:
        start = time.perf_counter()
        call(facts)
        samples.append(time.perf_counter() - start)
    return samples


def report(name: str, samples: Sequence[float]) -> None:
    median = statistics.median(samples) * 1e6
    p99 = percentile(samples, 0.99) * 1e6
    rate = len(samples) / sum(samples)
    print(f"{name:44s} median {median:7.1f} µs   p99 {p99:7.1f} µs   {rate:8,.0f} decisions/s")


def batched(policies: PolicySet, requests: Sequence[Facts], size: int) -> None:
    start = time.perf_counter()
    for i in range(0, len(requests), size):
        policies.decide_many(requests[i : i + size])
    took = time.perf_counter() - start
    per = took / len(requests) * 1e6
    print(
        f"{'decide_many, batches of ' + str(size):44s} {per:7.1f} µs a decision   {len(requests) / took:8,.0f} decisions/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--cpu", type=int, default=0, help="pin to this core (Linux)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    n = 2_000 if args.quick else 20_000
    requests = workload(n)
    policies = PolicySet.load_default()
    text = default_policy_text()

    print(
        f"cedarpy {importlib.metadata.version('cedarpy')}, default set, {len(policies.policies)} policies, {n:,} requests, one core"
    )
    report("decide() (parsed set, cached entities)", latencies(policies.decide, requests))

    def cold(facts: Facts) -> object:
        policies._memo.clear()  # every request evaluated by Cedar, none remembered
        policies._decided.clear()
        return policies.decide(facts)

    reads = policies.reads
    report("decide(), no answer remembered", latencies(cold, requests))
    report(
        "  of which: encode the request",
        latencies(lambda f: cedar_request(f, reads.context), requests),
    )
    report(
        "  of which: entity slice (cache)",
        latencies(lambda f: cedar_entities(f, reads.resource), requests),
    )
    compiled = policies._compiled

    def whole(facts: Facts) -> object:
        return cedarpy.is_authorized(cedar_request(facts), compiled, cedar_entities(facts))

    def read_only(facts: Facts) -> object:
        request = cedar_request(facts, reads.context)
        return cedarpy.is_authorized(request, compiled, cedar_entities(facts, reads.resource))

    # Alternated in slices, so that both see the same load on a shared machine.
    whole_samples: list[float] = []
    read_samples: list[float] = []
    for start in range(0, n, 250):
        whole_samples += latencies(whole, requests[start : start + 250])
        read_samples += latencies(read_only, requests[start : start + 250])
    report("Cedar, the whole request (26 keys, 2 entities)", whole_samples)
    report(f"Cedar, what the set reads ({len(reads.context or ())} keys)", read_samples)

    # First views of new customers: before the memo keyed the budget counts by the
    # comparisons they occur in, each of these was Cedar's to evaluate.
    firsts = first_views(n)
    remembered: list[float] = []
    asked: list[float] = []
    for start in range(0, n, 250):
        remembered += latencies(policies.decide, firsts[start : start + 250])
        asked += latencies(cold, firsts[start : start + 250])
    report("first views, Cedar's answers remembered", remembered)
    report("first views, Cedar asked each time", asked)

    def text_each_call(facts: Facts) -> object:
        return cedarpy.is_authorized(cedar_request(facts), text, cedar_entities(facts))

    report("cedarpy with policy text each call", latencies(text_each_call, requests[: n // 4]))
    for size in (10, 100, 1000):
        batched(policies, requests, size)


if __name__ == "__main__":
    main()
