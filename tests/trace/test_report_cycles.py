"""The report is built with the collector paused: it must hold no reference cycles."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest
from trace_world import World

from bpoguard.cli import main
from bpoguard.cli.vault import provider
from bpoguard.guard.vault import Vault
from bpoguard.trace.leak import trace_leak
from bpoguard.trace.report import leak_document, leak_html
from bpoguard.workspace import Workspace

pytestmark = pytest.mark.slow


def _dump(world: World, out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["trace", "make-dump", "--home", str(world.home), "--kind", "mixed", "--records", "40",
         "--out", str(out), "--json"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()


def test_the_report_leaves_nothing_for_the_collector(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "dump.csv"
    _dump(world, dump, capsys)
    with Workspace.open(world.home) as ws:
        trace = trace_leak(ws, Vault(provider(ws)), dump)
    assert trace.attribution.ranking  # a report with suspects and their evidence
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        document = leak_document(trace)
        assert document["ranking"]
        del document
        assert gc.collect() == 0  # no cycles: pausing the collector missed nothing
        # Rendering the page leaves a handful of Jinja's own (its render context), however
        # big the report: collected once the collector runs again.
        page = leak_html(leak_document(trace))
        assert page
        del page
        assert gc.collect() < 20
    finally:
        if enabled:
            gc.enable()


def test_the_command_turns_the_collector_back_on(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "dump.csv"
    _dump(world, dump, capsys)
    assert gc.isenabled()
    code = main(["trace", "leak", str(dump), "--home", str(world.home), "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["ranking"]
    assert gc.isenabled()
    code = main(["trace", "leak", str(dump), "--home", str(world.home), "--html",
                 str(tmp_path / "no-such-folder" / "page.html")])  # fmt: skip
    assert code == 1  # an error inside the paused section: the collector is on again
    assert gc.isenabled()
