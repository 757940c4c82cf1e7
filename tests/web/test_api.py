"""The REST API over a simulated BPO: what an agent and the CRM can do, and every abuse.

Each request is decided by the real guard over the workspace's store, vault and
ledger; the tests read the ledger back to check what was recorded.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from bpoguard.detect import alerts
from bpoguard.fields import FieldType
from bpoguard.guard import canary
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.ledger import Ledger
from bpoguard.store import models as m
from bpoguard.web import credentials
from bpoguard.workspace import Workspace
from web._world import PROXY, Desk, Web, headers

OUTSIDE = "203.0.113.7"  # a documentation address: no site's premises


def _ledger(home: Path) -> Ledger:
    with Workspace.open(home) as ws:
        return Ledger.for_workspace(ws)


def _entry(home: Path, index: int) -> dict[str, Any]:
    with Workspace.open(home) as ws:
        return Ledger.for_workspace(ws).entry(index)


def _size(home: Path) -> int:
    with Workspace.open(home) as ws:
        return Ledger.for_workspace(ws).size()


def _plain(home: Path, customer: int, field: FieldType) -> str:
    with Workspace.open(home) as ws, ws.store.engine.connect() as conn:
        vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
        return vault.get(conn, customer, [field])[field]


def _view(web: Web, desk: Desk, call: int, customer: int | None = None, **kw: Any) -> Any:
    kw.setdefault("peer", desk.ip)
    kw.setdefault("headers", headers(desk))
    kw.setdefault("json", {"interaction_id": call})
    return web.api.post(f"/api/v1/customers/{customer or desk.customers[0]}/view", **kw)


# --- what works ---------------------------------------------------------------------------


def test_agent_views_the_masked_slice_of_their_calls_customer(web: Web) -> None:
    desk = web.desk()
    call = web.open_call(desk)
    response = _view(web, desk, call)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["allowed"] is True and set(body["values"]) == {f.value for f in desk.fields}
    entry = _entry(web.home, body["ledger_index"])
    assert (entry["staff"], entry["decision"], entry["device"], entry["ip"]) == (
        desk.staff, "allow", desk.device, desk.ip,
    )  # fmt: skip
    if FieldType.DATE_OF_BIRTH in desk.fields:
        plain = _plain(web.home, desk.customers[0], FieldType.DATE_OF_BIRTH)
        assert body["values"]["date_of_birth"] != plain


def test_the_crm_opens_and_closes_calls_and_a_closed_call_is_refused(web: Web) -> None:
    desk = web.desk()
    call = web.open_call(desk)
    crm = {"Authorization": f"Bearer {web.system_token}"}
    current = web.api.get("/api/v1/interactions/current", peer=desk.ip, headers=headers(desk))
    assert current.status_code == 200 and current.json()["id"] == call
    closed = web.api.post(f"/api/v1/interactions/{call}/close", headers=crm)
    assert closed.status_code == 200 and closed.json()["closed_at"] is not None
    again = web.api.post(f"/api/v1/interactions/{call}/close", headers=crm)
    assert again.status_code == 409
    refused = _view(web, desk, call)
    assert refused.status_code == 403
    assert refused.json()["error"] == "denied" and refused.json()["ledger_index"] is not None
    none = web.api.get("/api/v1/interactions/current", peer=desk.ip, headers=headers(desk))
    assert none.status_code == 404


def test_reveal_needs_a_reason_and_returns_one_field_in_the_clear(web: Web) -> None:
    desk = web.desk()
    if not desk.revealable:
        pytest.skip("the purpose reveals nothing")
    field = desk.revealable[0]
    call = web.open_call(desk)
    url = f"/api/v1/customers/{desk.customers[0]}/reveal"
    short = web.api.post(url, peer=desk.ip, headers=headers(desk),
                         json={"interaction_id": call, "field": field.value, "reason": ""})  # fmt: skip
    assert short.status_code == 422 and short.json()["ledger_index"] is not None
    shown = web.api.post(url, peer=desk.ip, headers=headers(desk),
                         json={"interaction_id": call, "field": field.value,
                               "reason": "caller asked to confirm it"})  # fmt: skip
    assert shown.status_code == 200, shown.text
    assert shown.json()["value"] == _plain(web.home, desk.customers[0], field)
    assert shown.headers["cache-control"] == "no-store"
    assert str(_entry(web.home, shown.json()["ledger_index"])).find(shown.json()["value"]) < 0


def test_verify_says_match_or_not_and_counts_attempts_never_the_value(web: Web) -> None:
    desk = web.desk()
    field = next(f for f in (FieldType.DATE_OF_BIRTH, FieldType.PHONE) if f in desk.fields)
    truth = _plain(web.home, desk.customers[0], field)
    call = web.open_call(desk)
    url = f"/api/v1/customers/{desk.customers[0]}/verify"

    def ask(answer: str) -> Any:
        return web.api.post(url, peer=desk.ip, headers=headers(desk),
                            json={"interaction_id": call, "field": field.value, "answer": answer})  # fmt: skip

    right = ask(truth)
    assert right.status_code == 200 and right.json()["match"] is True
    assert truth not in right.text
    wrong = ask("not the answer")
    assert wrong.json()["match"] is False
    assert wrong.json()["attempts_left"] == right.json()["attempts_left"] - 1
    while ask("not the answer").status_code == 200:
        pass
    spent = ask(truth)
    assert spent.status_code == 403 and "no verification attempts left" in spent.json()["message"]


def test_a_canary_read_is_refused_and_names_the_agent(web: Web) -> None:
    desk = web.desk()
    call = web.open_call(desk)
    with Workspace.open(web.home) as ws, ws.store.engine.connect() as conn:
        bird = conn.scalars(select(m.Customer.id).where(m.Customer.is_canary.is_(True))).first()
    assert bird is not None
    response = _view(web, desk, call, customer=bird)
    assert response.status_code == 403
    with Workspace.open(web.home) as ws, ws.store.engine.connect() as conn:
        assert desk.staff in canary.get_canary(conn, bird).touched_by
        touched = [a for a in alerts.list_alerts(conn, person=desk.staff)
                   if a.detector == "canary-touched"]  # fmt: skip
        assert touched and touched[0].severity == "critical"  # raised as the guard decided
        evidence = alerts.get(conn, touched[0].id).evidence
    assert response.json()["ledger_index"] in {index for _, index in evidence}


# --- abuse: who -----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["none", "unknown", "revoked", "expired", "malformed"])
def test_bad_tokens_get_401_and_a_recorded_denial(web: Web, how: str) -> None:
    desk = web.desk()
    call = web.open_call(desk)
    sent = headers(desk)
    with Workspace.open(web.home) as ws, ws.store.engine.begin() as conn:
        if how == "revoked":
            token_id = desk.token.split("_")[1]
            credentials.revoke_token(conn, token_id, web.clock.at)
        elif how == "expired":
            token_id = desk.token.split("_")[1]
    if how == "none":
        del sent["Authorization"]
    elif how == "unknown":
        sent["Authorization"] = "Bearer bpg_0123456789abcdef_" + "A" * 43
    elif how == "malformed":
        sent["Authorization"] = "Bearer ' OR 1=1 --"
    before = _size(web.home)
    saved = web.clock.at
    if how == "expired":
        web.clock.at = saved + credentials.DEFAULT_STAFF_LIFETIME
    try:
        response = _view(web, desk, call, headers=sent)
    finally:
        web.clock.at = saved
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert _size(web.home) == before + 1
    entry = _entry(web.home, before)
    assert entry["decision"] == "deny" and entry["customer"] == desk.customers[0]
    if how in ("revoked", "expired"):
        assert entry["staff"] == desk.staff  # a replayed token still names whose it was
    assert desk.token not in response.text


def test_agents_may_not_open_calls_and_the_crm_may_not_read(web: Web) -> None:
    desk = web.desk()
    body = {"id": 99_000_001, "contract_id": desk.contract, "staff_id": desk.staff,
            "customer_id": desk.customers[0], "purpose": desk.purpose}  # fmt: skip
    agent = web.api.post("/api/v1/interactions", peer=desk.ip, headers=headers(desk), json=body)
    assert agent.status_code == 403 and agent.json()["error"] == "wrong_token_kind"
    crm = {"Authorization": f"Bearer {web.system_token}"}
    read = web.api.post(f"/api/v1/customers/{desk.customers[0]}/view", headers=crm,
                        json={"interaction_id": 1})  # fmt: skip
    assert read.status_code == 403 and read.json()["error"] == "wrong_token_kind"


def test_a_token_of_another_sites_agent_is_denied_with_reasons(web: Web) -> None:
    desk = web.desk()
    other = next(d for d in web.free if d.site != desk.site)
    web.free.remove(other)
    web.free.insert(0, other)
    stranger = web.desk()
    web.clock.at = desk.at
    call = web.open_call(desk)
    # The stranger, sitting at the first desk's site, reads the first desk's call.
    response = _view(web, desk, call, headers=headers(stranger))
    assert response.status_code == 403
    reasons = " ".join(response.json()["reasons"])
    assert desk.ip in reasons and stranger.site in reasons  # outside the premises of their site
    entry = _entry(web.home, response.json()["ledger_index"])
    assert (entry["staff"], entry["decision"]) == (stranger.staff, "deny")


def test_a_missing_or_borrowed_device_is_denied(web: Web) -> None:
    desk = web.desk()
    neighbour = web.desk()
    web.clock.at = desk.at
    call = web.open_call(desk)
    bare = {"Authorization": f"Bearer {desk.token}"}
    none = _view(web, desk, call, headers=bare)
    assert none.status_code == 403 and "not a registered device" in none.text
    borrowed = {**bare, "X-Device-Credential": neighbour.device_credential}
    other = _view(web, desk, call, headers=borrowed)
    assert other.status_code == 403 and f"{neighbour.device} is not issued to" in other.text
    forged = {**bare, "X-Device-Credential": "bpd_0123456789abcdef_" + "B" * 43}
    assert _view(web, desk, call, headers=forged).status_code == 401


# --- abuse: what --------------------------------------------------------------------------


def test_unknown_customer_and_unknown_interaction_are_recorded_denials(web: Web) -> None:
    desk = web.desk()
    call = web.open_call(desk)
    nobody = _view(web, desk, call, customer=987_654_321)
    assert nobody.status_code == 403 and "unknown customer 987654321" in nobody.text
    assert _entry(web.home, nobody.json()["ledger_index"])["decision"] == "deny"
    nowhere = _view(web, desk, 123_456_789)
    assert nowhere.status_code == 403 and nowhere.json()["ledger_index"] is not None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"interaction_id": ', "malformed JSON body"),
        (b'{"interaction_id": 5, "fields": ["passport_nr"]}', "fields.0"),
        (b'{"interaction_id": "five"}', "interaction_id"),
        (b'{"interaction_id": 5, "admin": true}', "admin"),
        (b"[1, 2, 3]", "invalid request"),
    ],
)
def test_malformed_requests_get_422_and_a_recorded_denial(
    web: Web, body: bytes, expected: str
) -> None:
    desk = web.desk()
    before = _size(web.home)
    response = _view(web, desk, 1, content=body,
                     headers={**headers(desk), "Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 422, response.text
    assert expected in response.text
    assert response.json()["ledger_index"] == before
    assert _entry(web.home, before)["decision"] == "deny"


def test_an_oversized_body_is_refused_unread_and_writes_nothing(web: Web) -> None:
    desk = web.desk()
    call = web.open_call(desk)
    before = _size(web.home)
    padding = "x" * (web.app.state.runtime.settings.max_body + 1)
    response = _view(web, desk, call, json={"interaction_id": call, "pad": padding})
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"
    assert _size(web.home) == before


def test_unknown_routes_and_methods_answer_json(web: Web) -> None:
    assert web.api.get("/api/v1/nothing").json()["error"] == "not_found"
    assert web.api.get("/api/v1/customers/1/view").status_code == 405


# --- abuse: where -------------------------------------------------------------------------


def test_forged_forwarded_for_from_an_untrusted_peer_is_ignored(web: Web) -> None:
    desk = web.desk()
    call = web.open_call(desk)
    forged = _view(
        web, desk, call, peer=OUTSIDE, headers={**headers(desk), "X-Forwarded-For": desk.ip}
    )
    assert forged.status_code == 403
    assert f"source {OUTSIDE} is outside the premises" in forged.text
    assert _entry(web.home, forged.json()["ledger_index"])["ip"] == OUTSIDE


def test_forwarded_for_from_the_trusted_proxy_is_believed_right_to_left(web: Web) -> None:
    desk = web.desk()
    call = web.open_call(desk)
    # The client wrote the left-most hop itself; the proxy appended the real address.
    sent = {**headers(desk), "X-Forwarded-For": f"{OUTSIDE}, {desk.ip}"}
    through = _view(web, desk, call, peer=PROXY, headers=sent)
    assert through.status_code == 200, through.text
    assert _entry(web.home, through.json()["ledger_index"])["ip"] == desk.ip
    spoof = {**headers(desk), "X-Forwarded-For": f"{desk.ip}, {OUTSIDE}"}
    refused = _view(web, desk, call, peer=PROXY, headers=spoof)
    assert refused.status_code == 403 and OUTSIDE in refused.text
    garbage = _view(
        web, desk, call, peer=PROXY, headers={**headers(desk), "X-Forwarded-For": "<script>"}
    )
    assert garbage.status_code == 400 and garbage.json()["error"] == "bad_forwarding"


# --- nothing sensitive anywhere -------------------------------------------------------------


def test_no_secret_or_value_reaches_a_log_line_or_an_error(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    desk = web.desk()
    field = next(f for f in (FieldType.DATE_OF_BIRTH, FieldType.PHONE) if f in desk.fields)
    truth = _plain(web.home, desk.customers[0], field)
    call = web.open_call(desk)
    secrets_ = [desk.token, desk.device_credential, web.system_token, truth]
    texts = []
    with caplog.at_level(logging.DEBUG):
        url = f"/api/v1/customers/{desk.customers[0]}/verify"
        for answer in (truth, truth + "0", {"nested": truth}):
            response = web.api.post(url, peer=desk.ip, headers=headers(desk),
                                    json={"interaction_id": call, "field": field.value,
                                          "answer": answer})  # fmt: skip
            texts.append(response.text)
        revoked = headers(desk)
        with Workspace.open(web.home) as ws, ws.store.engine.begin() as conn:
            credentials.revoke_token(conn, desk.token.split("_")[1], web.clock.at)
        texts.append(_view(web, desk, call, headers=revoked).text)
        texts.append(_view(web, desk, call, peer=OUTSIDE).text)
    assert caplog.records, "the refusals were logged"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets_:
        assert secret not in logged
    for text in texts[1:]:
        assert truth not in text and desk.token not in text


def test_openapi_lists_every_route_with_its_roles(web: Web) -> None:
    document = web.api.get("/openapi.json").json()
    routes = {(path, verb) for path, item in document["paths"].items() for verb in item}
    assert routes == {
        ("/api/v1/health", "get"),
        ("/api/v1/interactions", "post"),
        ("/api/v1/interactions/{interaction_id}/close", "post"),
        ("/api/v1/interactions/current", "get"),
        ("/api/v1/customers/{customer_id}/view", "post"),
        ("/api/v1/customers/{customer_id}/reveal", "post"),
        ("/api/v1/customers/{customer_id}/verify", "post"),
        ("/api/v1/search", "post"),
        ("/api/v1/exports", "post"),
        ("/api/v1/exports/approvals", "post"),
        ("/api/v1/exports/approvals", "get"),
        ("/api/v1/exports/approvals/{approval_id}", "get"),
        ("/api/v1/exports/approvals/{approval_id}/revoke", "post"),
    }
    for path, item in document["paths"].items():
        for operation in item.values():
            text = operation.get("description", "")
            assert "Roles:" in text, path


# --- search -------------------------------------------------------------------------------


def test_search_by_the_callers_phone_finds_them_masked_and_never_logs_the_value(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    desk = web.desk()
    call = web.open_call(desk)
    phone = _plain(web.home, desk.customers[0], FieldType.PHONE)
    with caplog.at_level(logging.DEBUG):
        found = web.api.post("/api/v1/search", peer=desk.ip, headers=headers(desk),
                             json={"interaction_id": call, "field": "phone", "value": phone})  # fmt: skip
        off = web.api.post("/api/v1/search", peer=OUTSIDE, headers=headers(desk),
                           json={"interaction_id": call, "field": "phone", "value": phone})  # fmt: skip
        dob = web.api.post("/api/v1/search", peer=desk.ip, headers=headers(desk),
                           json={"interaction_id": call, "field": "date_of_birth",
                                 "value": "1970-01-01"})  # fmt: skip
    assert found.status_code == 200, found.text
    rows = found.json()["rows"]
    assert desk.customers[0] in [r["customer_id"] for r in rows]
    assert phone not in found.text
    entry = _entry(web.home, found.json()["ledger_index"])
    assert entry["verb"] == "search" and phone not in str(entry)
    assert off.status_code == 403 and OUTSIDE in off.text and phone not in off.text
    assert dob.status_code == 422 and dob.json()["ledger_index"] is not None
    assert phone not in "\n".join(r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"contract_id": "no-such-contract"}, 404, "unknown contract"),
        ({"staff_id": "NOBODY-1"}, 404, "unknown staff member"),
        ({"customer_id": 987_654_321}, 404, "unknown customer 987654321"),
        ({"purpose": "sightseeing"}, 422, "has no purpose 'sightseeing'"),
        ({"channel": "carrier-pigeon"}, 422, "channel"),
    ],
)
def test_the_crm_gets_clear_errors_for_bad_interactions(
    web: Web, change: dict[str, Any], status: int, message: str
) -> None:
    desk = web.free[0]
    body = {"id": 98_000_000 + len(message), "contract_id": desk.contract, "staff_id": desk.staff,
            "customer_id": desk.customers[0], "purpose": desk.purpose, **change}  # fmt: skip
    crm = {"Authorization": f"Bearer {web.system_token}"}
    response = web.api.post("/api/v1/interactions", headers=crm, json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["message"]


def test_an_interaction_id_is_used_once(web: Web) -> None:
    desk = web.desk()
    call = web.open_call(desk)
    crm = {"Authorization": f"Bearer {web.system_token}"}
    body = {"id": call, "contract_id": desk.contract, "staff_id": desk.staff,
            "customer_id": desk.customers[0], "purpose": desk.purpose}  # fmt: skip
    again = web.api.post("/api/v1/interactions", headers=crm, json=body)
    assert again.status_code == 409 and f"interaction {call} already exists" in again.text


def test_no_page_of_the_server_loads_anything_from_elsewhere(web: Web) -> None:
    assert web.api.get("/docs").status_code == 404  # Swagger UI would fetch from a CDN
    page = web.api.get("/desktop")
    assert page.status_code == 200 and "http" not in page.text.replace("http-equiv", "")
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_a_form_posted_from_another_site_is_refused(web: Web) -> None:
    desk = web.desk()
    response = web.api.post(
        "/desktop/login",
        peer=desk.ip,
        headers={"Origin": "https://evil.example"},
        data={"token": desk.token, "device": desk.device_credential},
    )
    assert response.status_code == 403 and response.json()["error"] == "cross_origin"
    assert "set-cookie" not in response.headers


def test_a_locked_database_answers_503_and_writes_nothing(web: Web) -> None:
    desk = web.desk()
    call = web.open_call(desk)
    before = _size(web.home)
    runtime = web.app.state.runtime
    # Another process holds SQLite's write lock longer than this worker will wait.
    holder = sqlite3.connect(web.home / "bpoguard.db", timeout=1)
    holder.execute("BEGIN IMMEDIATE")
    engine = runtime.store.engine
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA busy_timeout=50")
            conn.commit()
        engine.pool.dispose()  # the next checkouts are fresh: set their timeout low too

        def short_wait(dbapi: Any, _: Any) -> None:
            dbapi.execute("PRAGMA busy_timeout=50")

        event.listen(engine, "connect", short_wait)
        try:
            response = _view(web, desk, call)
        finally:
            event.remove(engine, "connect", short_wait)
            engine.pool.dispose()
    finally:
        holder.rollback()
        holder.close()
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert _size(web.home) == before


def test_a_desktop_search_by_a_field_not_searchable_is_refused_and_recorded(web: Web) -> None:
    desk = web.desk()
    call = web.open_call(desk)
    before = _size(web.home)
    born = _plain(web.home, desk.customers[0], FieldType.DATE_OF_BIRTH)
    cookie = f"bpoguard_token={desk.token}; bpoguard_device={desk.device_credential}"
    response = web.api.post(
        "/desktop/search",
        peer=desk.ip,
        headers={"Cookie": cookie},
        data={"interaction_id": str(call), "field": FieldType.DATE_OF_BIRTH.value, "value": born},
    )
    assert response.status_code == 403
    assert "not by date_of_birth" in response.text and born not in response.text
    assert _size(web.home) == before + 2  # the refused search, then the page's own view
    refused = _entry(web.home, before)
    assert refused["verb"] == "search" and refused["decision"] == "deny"
    assert born not in str(refused)
