"""Large and awkward dumps: memory stays bounded, odd files read cleanly or fail in one line."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from trace_world import World

from bpoguard.cli import main
from bpoguard.cli.vault import provider
from bpoguard.fields import FieldType as F
from bpoguard.guard.vault import Vault
from bpoguard.trace import matcher as matcher_module
from bpoguard.trace import recognition
from bpoguard.trace.dump import Cells, ReadStats, read_dump
from bpoguard.trace.matcher import NOTHING, Matcher, clients
from bpoguard.workspace import Workspace

pytestmark = pytest.mark.slow


def _leak(capsys: pytest.CaptureFixture[str], world: World, dump: Path) -> dict[str, Any]:
    code = main(["trace", "leak", str(dump), "--home", str(world.home), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document: dict[str, Any] = json.loads(captured.out)
    return document


def _noise(count: int, start: int = 0) -> Iterator[Cells]:
    """Records of noise, every one with values that look like numbers we might hold."""
    for k in range(start, start + count):
        notes = f"ticket {k} order ORD-2026-{100_000 + k} total 12.{k % 100:02d} on 0{k % 9 + 1}/03/2026"
        yield Cells(k + 1, f"line {k + 1}", (("name", f"person {k}"), ("notes", notes)))


def _peak_while_matching(world: World, records: Iterator[Cells]) -> tuple[int, int]:
    """Peak traced memory over matching a stream, and the records matched."""
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        matcher = Matcher(conn, Vault(provider(ws)), clients(conn))
        tracemalloc.start()
        try:
            count = sum(1 for r in matcher.match_all(records) if r.status == NOTHING)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return peak, count


def test_matching_a_long_stream_holds_memory_bounded_by_the_block_and_the_cache(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small bounds, so that the test reaches them: the memory a stream takes must stop
    # growing once the look-up cache is full, however many records follow.
    monkeypatch.setattr(matcher_module, "CACHE_LIMIT", 2_000)
    monkeypatch.setattr(recognition, "BLOCK", 500)
    short, n_short = _peak_while_matching(world, _noise(3_000))
    long, n_long = _peak_while_matching(world, _noise(12_000))
    assert (n_short, n_long) == (3_000, 12_000)
    assert long < short * 1.5  # four times the records, not four times the memory


def test_a_dump_of_endless_distinct_column_names_learns_only_so_many(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # JSON keys become column names: a dump whose every record has new ones must
    # not grow the matcher's per-column memory without end.
    monkeypatch.setattr(matcher_module, "MAX_COLUMNS", 50)
    records = (
        Cells(k + 1, f"record {k + 1}", ((f"field_{k}", "4111 1111 1111 1111"),))
        for k in range(400)
    )
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        matcher = Matcher(conn, Vault(provider(ws)), clients(conn))
        results = list(matcher.match_all(records))
    assert len(results) == 400
    assert len(matcher._column_values) == 50


def test_lookup_many_of_canonical_values_answers_as_normalising_them_does(world: World) -> None:
    customers = world.customers("org-albion")
    phones = [c["phone"] for c in list(customers.values())[:40]]
    cards = [c["card_number"] for c in list(customers.values())[:40] if c["card_number"]]
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        vault = Vault(provider(ws))
        for field, values in ((F.PHONE, phones), (F.CARD_NUMBER, cards)):
            plain = vault.lookup_many(conn, "org-albion", field, values, "GB")
            given = vault.lookup_many(conn, "org-albion", field, values, "GB", normalised=True)
            assert given == plain
            assert sum(1 for ids in given.values() if ids) >= len(values) // 2


def test_a_workbook_of_formulas_never_computed_is_a_clean_no_match(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "formulas.xlsx"
    book = Workbook()
    sheet = book.active
    sheet.append(["name", "card"])
    for k in range(20):
        # A formula that would build a card number, saved without a computed value.
        sheet.append([f"person {k}", '=CONCATENATE("4111 1111 ", "1111 1111")'])
    book.save(path)
    document = _leak(capsys, world, path)
    assert document["matching"]["records"] == 20
    assert document["matching"]["customers"] == 0  # openpyxl never evaluates a formula
    assert document["dump"]["format"] == "xlsx"


def test_a_windows_1252_dump_is_matched_and_says_so(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customer = next(c for c in world.customers("org-albion").values() if c["card_number"])
    path = tmp_path / "cp1252.csv"
    path.write_bytes(
        b"name;card;note\n"
        + f"Zoë Müller;{customer['card_number']};paid £20 — thanks\n".encode("cp1252")
    )
    document = _leak(capsys, world, path)
    assert document["matching"]["customers"] == 1
    assert document["dump"]["encoding"] == "cp1252"


def test_utf16_without_a_byte_order_mark_is_read_as_text(tmp_path: Path) -> None:
    for encoding in ("utf-16-le", "utf-16-be"):
        path = tmp_path / f"{encoding}.txt"
        path.write_bytes("name: jo\ncard: 4111 1111 1111 1111\n".encode(encoding))
        stats = ReadStats()
        rows = [list(r.cells) for r in read_dump(path, stats)]
        assert rows == [[("name", "jo"), ("card", "4111 1111 1111 1111")]]
        assert stats.encoding == encoding


def test_columns_of_binary_garbage_inside_a_text_dump_are_a_clean_no_match(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "garbage.csv"
    with path.open("wb") as handle:
        handle.write(b"a,b,c\n")
        for k in range(300):
            handle.write(f"{k},".encode() + bytes(range(128, 256)) + b",\xff\xfe\x80\n")
    document = _leak(capsys, world, path)
    assert document["matching"]["records"] == 300
    assert document["matching"]["customers"] == 0
