"""The suspect report: one JSON document, and the same content as a self-contained HTML page.

What a report holds is what an investigator needs and no more: customer ids
and the client's references, field names, staff ids, times and ledger
indexes. It never holds a customer's values (no card number, not even the
last four digits the dump shows).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from bpoguard.trace.leak import MAX_RECORDS_SHOWN, LeakTrace
from bpoguard.trace.scoring import ALPHA, MIN_RECORDS, Suspect

if TYPE_CHECKING:
    from jinja2 import Environment

LEAK_METHOD = (
    "Each value in the dump was checked with the same validators the guard uses "
    "(Luhn for cards, mod-97 for IBANs, the national formats of IDs), normalised, and "
    "looked up in the vault's blind index, so the vault was never decrypted to search it. "
    "For every person who accessed the matched customers before the leak was first seen, "
    "we count how many of the dump's customers they accessed (k) and compare it with how "
    "many a person with their volume of work would touch by chance (expected). Customers "
    "whom many people serve count for little; a customer few people opened counts for much. "
    "The p-value is the chance of touching k or more by coincidence (a binomial tail); the "
    "adjusted p-value multiplies it by the number of people who could have been chosen, so "
    f"that testing everyone does not create suspects by luck. A person is a suspect when the "
    f"adjusted p-value is below {ALPHA} and they account for at least {MIN_RECORDS} records. "
    "Dumps often mix sources: after the strongest suspect is chosen, the records they account "
    "for are set aside and everyone is scored again on the rest. Each access listed is an "
    "entry in the tamper-evident ledger; its inclusion proof lets anyone check, offline, that "
    "the entry is in the signed log. A canary is a decoy record no genuine call reaches: "
    "finding one in a dump names, with certainty, the person it was placed with or who opened it."
)


def _suspect(
    trace: LeakTrace, rank: int, s: Suspect, chosen: bool, numbers: dict[int, list[int]]
) -> dict[str, Any]:
    by_customer = trace.evidence.get(s.person, {})
    customers = []
    for cid in s.records:
        client, ref = trace.refs.get(cid, ("", ""))
        accesses = by_customer.get(cid, [])
        customers.append(
            {
                "customer_id": cid,
                "ref": ref,
                "client_id": client,
                "records": numbers.get(cid, [])[:20],
                "accesses": [
                    {"at": a.at.isoformat(), "action": a.action, "allowed": a.allowed,
                     "fields": list(a.fields), "ledger_index": a.ledger_index,
                     "interaction_id": a.interaction_id, "site": a.site}
                    for a in accesses
                ],
            }
        )  # fmt: skip
    return {
        "rank": rank,
        "person": s.person,
        "staff": trace.staff.get(s.person, {}),
        "chosen": chosen,
        "round": s.round,
        "records_explained": len(s.records),
        "considered": s.considered,
        "expected_by_chance": round(s.expected, 4),
        "evidence_bits": round(s.evidence_bits, 2),
        "p_value": s.p_value,
        "adjusted_p_value": s.adjusted_p,
        "significant": s.significant,
        "customers_accessed_in_window": s.accessed,
        "customers": customers if rank <= 5 else [{"customer_id": c} for c in s.records],
    }


def _verdict(trace: LeakTrace) -> str:
    c = trace.counts
    if c["records"] == 0:
        return "The dump holds no records that could be read."
    if trace.vault_empty:
        return (
            "The vault holds no customer values, so nothing could be matched: load the "
            "client's customer file (bpoguard customers load) or simulate with --guard."
        )
    if trace.distinct_customers == 0:
        return (
            f"None of the dump's {c['records']:,} records matches a customer we hold: "
            "it is not our customers' data (or not data we were given)."
        )
    said = [f"{trace.distinct_customers:,} of our customers are in the dump ({c['matched']:,} "
            f"of {c['records']:,} records matched)."]  # fmt: skip
    for hit in trace.canary_hits:
        if hit["named"]:
            said.append(
                f"Canary {hit['ref']} is in it: it was placed with or opened by "
                f"{', '.join(hit['named'])}."
            )
    chosen = trace.attribution.suspects
    if chosen:
        names = ", ".join(f"{s.person} ({len(s.records)} records)" for s in chosen)
        said.append(f"Suspects, strongest first: {names}.")
    else:
        said.append("Nobody accessed more of these customers than chance explains.")
    return " ".join(said)


def leak_document(trace: LeakTrace) -> dict[str, Any]:
    """The leak report as one JSON-ready document."""
    a = trace.attribution
    chosen = {s.person for s in a.suspects}
    numbers: dict[int, list[int]] = {}
    for r in trace.records:
        if r.customer_id is not None:
            numbers.setdefault(r.customer_id, []).append(r.number)
    ranking = [
        _suspect(trace, k, s, s.person in chosen, numbers) for k, s in enumerate(a.ranking, 1)
    ]
    explained_by: dict[int, str] = {}
    for s in a.suspects:
        for cid in s.records:
            explained_by.setdefault(cid, s.person)
    records = [
        {
            "number": r.number,
            "where": r.where,
            "status": r.status,
            "customer_id": r.customer_id,
            "ref": trace.refs.get(r.customer_id, ("", ""))[1] if r.customer_id else None,
            "client_id": r.client_id,
            "matched_fields": list(r.matched_fields),
            "partial_evidence": [{"field": f, "verdict": v} for f, v in r.partials],
            "candidates": list(r.candidates),
            "explained_by": explained_by.get(r.customer_id) if r.customer_id else None,
        }
        for r in trace.records[:MAX_RECORDS_SHOWN]
    ]
    return {
        "kind": "leak",
        "dump": {
            "file": trace.dump_name,
            "format": trace.stats.format,
            "encoding": trace.stats.encoding,
            "warnings": trace.stats.warnings(),
        },
        "first_seen": trace.options.first_seen.isoformat() if trace.options.first_seen else None,
        "accesses_before": trace.window_end.isoformat() if trace.window_end else None,
        "include_denied": trace.options.include_denied,
        "verdict": _verdict(trace),
        "matching": {**trace.counts, "customers": trace.distinct_customers},
        "canary_hits": trace.canary_hits,
        "suspects": [r for r in ranking if r["chosen"]],
        "ranking": ranking,
        "people_tested": a.people_tested,
        "unexplained_customers": list(a.unexplained),
        "never_accessed_customers": list(a.never_accessed),
        "records": records,
        "records_shown": len(records),
        "ledger": trace.ledger,
        "method": LEAK_METHOD,
    }


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;max-width:70rem;color:#1b1b1b}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}.verdict{background:#fff7e0;border-left:4px solid #e0a000;padding:.75rem}
.canary{background:#ffe8e8;border-left:4px solid #c00;padding:.75rem}
.small{font-size:.8rem;color:#555}code{font-size:.85rem}
"""

_LEAK = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Leak trace: {{ d.dump.file }}</title>
<style>{{ css }}</style></head><body>
<h1>Leak trace: {{ d.dump.file }}</h1>
<p class="small">Read as {{ d.dump.format }}{% if d.first_seen %}; first seen {{ d.first_seen }},
accesses up to {{ d.accesses_before }}{% endif %}; refused requests
{{ "counted" if d.include_denied else "not counted" }}.</p>
<p class="verdict">{{ d.verdict }}</p>
{% for w in d.dump.warnings %}<p class="small">Note: {{ w }}</p>{% endfor %}
<h2>Records</h2>
<table><tr><th>records read</th><th>matched</th><th>ambiguous</th><th>partial values only</th>
<th>nothing we hold</th><th>customers</th></tr>
<tr><td>{{ d.matching.records }}</td><td>{{ d.matching.matched }}</td><td>{{ d.matching.ambiguous }}</td>
<td>{{ d.matching.partial_only }}</td><td>{{ d.matching.nothing_we_hold }}</td><td>{{ d.matching.customers }}</td></tr></table>
{% if d.canary_hits %}<h2>Canary hits</h2>
{% for h in d.canary_hits %}<div class="canary">Canary customer {{ h.customer_id }} ({{ h.ref }}, {{ h.client_id }})
is in the dump. Placed with: {{ h.shown_to or "nobody" }}. Opened by: {{ h.touched_by|join(", ") or "nobody" }}.
{% if h.exposures %}<table><tr><th>when</th><th>who</th><th>what</th><th>decision</th><th>ledger entry</th></tr>
{% for e in h.exposures %}<tr><td>{{ e.at }}</td><td>{{ e.staff_id }}</td><td>{{ e.kind }}</td>
<td>{{ "" if e.allowed is none else ("allowed" if e.allowed else "denied") }}</td><td>{{ e.ledger_index if e.ledger_index is not none else "" }}</td></tr>{% endfor %}
</table>{% endif %}</div>{% endfor %}{% endif %}
<h2>Ranking</h2>
{% if d.ranking %}<table><tr><th>#</th><th>person</th><th>team / site</th><th>records explained</th>
<th>expected by chance</th><th>p-value</th><th>adjusted</th><th>suspect</th></tr>
{% for r in d.ranking[:20] %}<tr><td>{{ r.rank }}</td><td>{{ r.person }}</td>
<td>{{ r.staff.team or "" }} / {{ r.staff.site or "" }}</td><td>{{ r.records_explained }} of {{ r.considered }}</td>
<td>{{ "%.3g"|format(r.expected_by_chance) }}</td><td>{{ "%.3g"|format(r.p_value) }}</td>
<td>{{ "%.3g"|format(r.adjusted_p_value) }}</td><td>{{ "yes (round %d)"|format(r.round) if r.chosen else "no" }}</td></tr>{% endfor %}
</table>{% else %}<p>Nobody accessed these customers in the window.</p>{% endif %}
{% for r in d.ranking[:5] if r.customers and r.customers[0].accesses is defined %}
<h2>Evidence: {{ r.person }}</h2>
<table><tr><th>customer</th><th>ref</th><th>dump records</th><th>accesses (time, action, decision, fields, ledger entry)</th></tr>
{% for c in r.customers %}<tr><td>{{ c.customer_id }}</td><td>{{ c.ref }}</td><td>{{ c.records|join(", ") }}</td><td>
{% for a in c.accesses %}{{ a.at }} {{ a.action }} {{ "allowed" if a.allowed else "denied" }}{% if a.interaction_id is none %} <b>outside any call or ticket</b>{% endif %} [{{ a.fields|join(", ") }}] #{{ a.ledger_index }}<br>{% endfor %}
</td></tr>{% endfor %}</table>{% endfor %}
<h2>Ledger</h2>
<p>{{ d.ledger.proofs|length }} inclusion proofs against the {{ "signed checkpoint" if d.ledger.signed else "current tree" }}
of size {{ d.ledger.tree_size }}{% if d.ledger.lake_rows_disagreeing_with_ledger %}; lake rows that
disagree with the ledger: {{ d.ledger.lake_rows_disagreeing_with_ledger|join(", ") }}{% endif %}.
The JSON report holds each proof; check one with <code>bpoguard ledger</code> or the standalone verifier.</p>
{% if d.ledger.checkpoint %}<pre class="small">{{ d.ledger.checkpoint }}</pre>{% endif %}
<h2>Per-record evidence</h2>
<table><tr><th>record</th><th>where</th><th>status</th><th>customer</th><th>ref</th><th>matched on</th><th>partial values</th><th>explained by</th></tr>
{% for x in d.records[:500] %}<tr><td>{{ x.number }}</td><td>{{ x.where }}</td><td>{{ x.status }}</td>
<td>{{ x.customer_id if x.customer_id is not none else x.candidates|join(" or ") }}</td><td>{{ x.ref or "" }}</td>
<td>{{ x.matched_fields|join(", ") }}</td><td>{% for p in x.partial_evidence %}{{ p.field }} {{ p.verdict }} {% endfor %}</td>
<td>{{ x.explained_by or "" }}</td></tr>{% endfor %}</table>
<h2>How to read this</h2><p>{{ d.method }}</p>
</body></html>
"""

_COMPLAINTS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Common point of compromise</title>
<style>{{ css }}</style></head><body>
<h1>Common point of compromise: {{ d.file }}</h1>
<p class="verdict">{{ d.verdict }}</p>
{% for w in d.warnings %}<p class="small">Note: {{ w }}</p>{% endfor %}
<table><tr><th>#</th><th>who</th><th>victims accessed before their report</th><th>others accessed</th>
<th>odds ratio</th><th>p-value</th><th>q-value (BH)</th></tr>
{% for r in d.ranking[:30] %}<tr><td>{{ r.rank }}</td><td>{{ r.dimension }} {{ r.value }}</td>
<td>{{ r.victims_accessed }} of {{ r.victims }}</td><td>{{ r.others_accessed }} of {{ r.others }}</td>
<td>{{ "%.3g"|format(r.odds_ratio) if r.odds_ratio is not none else "inf" }}</td><td>{{ "%.3g"|format(r.p_value) }}</td>
<td>{{ "%.3g"|format(r.q_value) }}</td></tr>{% endfor %}</table>
<h2>How to read this</h2><p>{{ d.method }}</p>
</body></html>
"""


@functools.cache
def _env() -> Environment:
    # Jinja is loaded only when a page is written: a JSON report does not need it.
    from jinja2 import Environment, select_autoescape

    return Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def leak_html(document: dict[str, Any]) -> str:
    """The leak report as one self-contained HTML page (no scripts, no external assets)."""
    return _env().from_string(_LEAK).render(d=document, css=_CSS)


def complaints_html(document: dict[str, Any]) -> str:
    """The complaints report as one self-contained HTML page."""
    return _env().from_string(_COMPLAINTS).render(d=document, css=_CSS)


__all__ = ["LEAK_METHOD", "complaints_html", "leak_document", "leak_html"]
