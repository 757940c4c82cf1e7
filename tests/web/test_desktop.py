"""The agent desktop in a real browser: Debian's chromium, driven by Playwright,
against a uvicorn server this test starts on a free loopback port.

The browser sits behind the test's "reverse proxy": it sends the desk's
premises address in X-Forwarded-For, and the server trusts loopback as the
proxy, as a site's real proxy would be trusted.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from bpoguard.fields import FieldType
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.web._client import parse_networks
from bpoguard.web._settings import WebSettings
from bpoguard.web.app import create_app
from bpoguard.workspace import Workspace
from web._world import Clock, Desk, Web

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="no /usr/bin/chromium: install Debian's chromium (scripts/test does, as root)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(web: Web) -> Iterator[tuple[str, Clock]]:
    """A real uvicorn server over the world, in a thread, on a free loopback port."""
    clock = Clock(web.clock.at)
    settings = WebSettings(
        home=web.home, trusted_proxies=parse_networks(["127.0.0.1/32"]), clock=clock
    )
    app = create_app(settings)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                            proxy_headers=False)  # fmt: skip
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:  # readiness, not timing: nothing is asserted about speed
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", clock
    finally:
        running.should_exit = True
        thread.join()


def _plain(home: Path, customer: int, field: FieldType) -> str:
    with Workspace.open(home) as ws, ws.store.engine.connect() as conn:
        return Vault(KeyfileProvider.from_dir(ws.settings.keys_dir)).get(conn, customer, [field])[
            field
        ]


def test_agent_signs_in_sees_the_slice_verifies_reveals_and_reads_a_denial(
    web: Web, server: tuple[str, Clock]
) -> None:
    from playwright.sync_api import sync_playwright

    base, clock = server
    desk: Desk = web.desk()
    clock.at = desk.at
    call = web.open_call(desk)
    checked = next(f for f in (FieldType.DATE_OF_BIRTH, FieldType.PHONE) if f in desk.fields)
    truth = _plain(web.home, desk.customers[0], checked)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(extra_http_headers={"X-Forwarded-For": desk.ip})
        page = context.new_page()
        fetched: list[str] = []
        page.on("request", lambda r: fetched.append(r.url))
        page.goto(f"{base}/desktop")
        page.fill("input[name=token]", desk.token)
        page.fill("input[name=device]", desk.device_credential)
        page.click("#login button")
        assert page.locator("#call h2").inner_text().startswith(f"Call {call}")
        slice_text = page.locator("#slice").inner_text()
        assert truth not in slice_text and "•" in slice_text

        page.select_option("#verify select", checked.value)
        page.fill("#verify input[name=answer]", truth)
        page.click("#verify button")
        assert "match (" in page.locator("#verified").inner_text()
        assert page.locator("#verified").get_attribute("class") == "match"

        if desk.revealable:
            field = desk.revealable[0]
            page.once("dialog", lambda d: d.accept("caller asked to confirm it"))
            page.select_option("#reveal select", field.value)
            page.click("#reveal button")
            shown = page.locator("#revealed output").inner_text()
            assert shown == _plain(web.home, desk.customers[0], field)

        # Search by the caller's phone number: their row comes back masked, the value
        # searched for is not echoed, and a number nobody has finds nobody.
        phone = _plain(web.home, desk.customers[0], FieldType.PHONE)
        page.select_option("#search select", FieldType.PHONE.value)
        page.fill("#search input[name=value]", phone)
        page.click("#search button")
        results = page.locator("#results").inner_text()
        assert f"Customer {desk.customers[0]}" in results
        assert phone not in results and phone not in page.content()
        assert "•" in results
        page.select_option("#search select", FieldType.PHONE.value)
        page.fill("#search input[name=value]", "+44 7700 900000")
        page.click("#search button")
        assert page.locator("#no-results").count() == 1

        clock.at = desk.at + dt.timedelta(hours=10)  # the shift is over; the token is not
        page.goto(f"{base}/desktop")
        assert "outside their shift" in page.locator("#denial").inner_text()
        assert page.locator("#slice").count() == 0
        browser.close()
    assert all(url.startswith(base) for url in fetched), "the page fetched nothing from elsewhere"


def test_a_bad_token_does_not_sign_in(web: Web, server: tuple[str, Clock]) -> None:
    from playwright.sync_api import sync_playwright

    base, _ = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page()
        page.goto(f"{base}/desktop")
        page.fill("input[name=token]", "bpg_0123456789abcdef_" + "C" * 43)
        page.click("#login button")
        assert (
            "Not signed in: unknown token 0123456789abcdef" in page.locator("#error").inner_text()
        )
        assert page.locator("#login").count() == 1
        browser.close()
