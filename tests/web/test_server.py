"""The client-address rule, and `bpoguard serve` as a real process."""

from __future__ import annotations

import gc
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bpoguard.cli import main
from bpoguard.collector import YOUNG_THRESHOLD, tune
from bpoguard.errors import InputError
from bpoguard.events import lake
from bpoguard.web._client import ForwardingError, client_address, parse_networks
from web._world import Web, headers

TRUSTED = parse_networks(["10.250.0.0/24", "fd00::/64"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.7", [], ("203.0.113.7", False)),
        ("203.0.113.7", ["10.12.0.9"], ("203.0.113.7", True)),  # untrusted peer: ignored
        ("10.250.0.1", ["10.12.0.9"], ("10.12.0.9", False)),
        ("10.250.0.1", ["198.51.100.1, 10.12.0.9"], ("10.12.0.9", False)),  # right-most
        ("10.250.0.1", ["10.12.0.9, 10.250.0.2"], ("10.12.0.9", False)),  # skip our proxies
        ("10.250.0.1", ["10.12.0.9", "10.250.0.3"], ("10.12.0.9", False)),  # two headers
        ("10.250.0.1", ["10.250.0.2"], ("10.250.0.2", False)),  # all proxies: left-most
        ("::ffff:10.250.0.1", ["10.12.0.9"], ("10.12.0.9", False)),  # dual-stack peer
        ("fd00::1", ["[2001:db8::5]"], ("2001:db8::5", False)),
        ("10.250.0.1", [], ("10.250.0.1", False)),
    ],
)
def test_client_address_believes_only_trusted_proxies(
    peer: str, forwarded: list[str], expected: tuple[str, bool]
) -> None:
    assert client_address(peer, forwarded, TRUSTED) == expected


@pytest.mark.parametrize(
    ("peer", "forwarded"),
    [("10.250.0.1", ["not-an-address"]), ("10.250.0.1", ["10.12.0.9,"]), (None, []), ("x", [])],
)
def test_malformed_forwarding_or_peer_is_refused(peer: str | None, forwarded: list[str]) -> None:
    with pytest.raises(ForwardingError):
        client_address(peer, forwarded, TRUSTED)


def test_a_bad_trusted_proxy_is_a_user_error() -> None:
    with pytest.raises(InputError, match=re.escape("'10.0.0.0/99' is not an address or CIDR")):
        parse_networks(["10.0.0.0/99"])


def test_web_decisions_reach_the_event_lake(web: Web) -> None:
    desk = web.desk()
    call = web.open_call(desk)
    before = lake.count(web.home / "lake")
    response = web.api.post(f"/api/v1/customers/{desk.customers[0]}/view", peer=desk.ip,
                            headers=headers(desk), json={"interaction_id": call})  # fmt: skip
    assert response.status_code == 200
    web.app.state.runtime.commit_lake()
    assert lake.count(web.home / "lake") == before + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "port 70000 is not between 1 and 65535"),
        (["--workers", "0"], "--workers must be between 1 and 64"),
        (["--trusted-proxy", "everyone"], "trusted proxy 'everyone' is not an address or CIDR"),
    ],
)
def test_serve_refuses_bad_options_in_one_line(
    world: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--home", str(world), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_serve_refuses_a_missing_workspace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--home", str(tmp_path / "none")]) == 1
    assert "no bpoguard workspace" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_runs_workers_that_answer_over_http(world: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [str(Path(sys.executable).with_name("bpoguard")), "serve", "--home", str(world),
               "--port", str(port), "--workers", "2", "--trusted-proxy", "127.0.0.1/32"]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        health = None
        for _ in range(300):  # readiness, not speed: wait until it answers or exits
            if server.poll() is not None:
                break
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=10)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health is not None and health.status_code == 200, server.returncode
        assert health.json()["status"] == "ok"
        assert health.headers["cache-control"] == "no-store"
        refused = httpx.post(f"http://127.0.0.1:{port}/api/v1/customers/1/view", json={})
        assert refused.status_code == 401
    finally:
        server.terminate()
        output = server.communicate(timeout=60)[0].decode()
    assert "Traceback" not in output


def test_a_server_freezes_its_start_up_heap_and_collects_young_objects_less_often() -> None:
    threshold = gc.get_threshold()
    try:
        tune()
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD > threshold[0]
        assert gc.get_freeze_count() > 0  # the app's long-lived objects leave the collections
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
