"""The common point of compromise behind fraud reports, on the simulated ring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from trace_world import World

from bpoguard.cli import main
from bpoguard.trace.complaints import ComplaintsError, rank_groups, read_complaints


def _complaints(capsys: pytest.CaptureFixture[str], world: World, path: Path) -> dict[str, Any]:
    code = main(["trace", "complaints", str(path), "--home", str(world.home), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document: dict[str, Any] = json.loads(captured.out)
    return document


@pytest.mark.slow
def test_the_ring_members_are_the_top_staff(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = set(world.scenario("ring")["persons"])
    d = _complaints(capsys, world, world.home / "sim" / "complaints.csv")
    staff = [r for r in d["ranking"] if r["dimension"] == "staff"]
    assert {r["value"] for r in staff[: len(ring)]} == ring
    assert all(r["stands_out"] for r in staff[: len(ring)])
    team = next(r for r in d["ranking"] if r["dimension"] == "team")
    assert team["q_value"] < 0.05
    top = staff[0]
    assert top["victims_accessed"] <= top["victims"] and top["others_accessed"] <= top["others"]


@pytest.mark.slow
def test_complaints_by_reference_give_the_same_answer(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv

    source = world.home / "sim" / "complaints.csv"
    refs = tmp_path / "refs.csv"
    with source.open() as handle, refs.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["ref", "date"])
        for row in csv.DictReader(handle):
            writer.writerow([f"LAK-{int(row['customer_id']):08d}", row["reported_on"]])
    by_id = _complaints(capsys, world, source)
    by_ref = _complaints(capsys, world, refs)
    assert by_ref["victims"] == by_id["victims"]
    assert by_ref["ranking"][:5] == by_id["ranking"][:5]


@pytest.mark.slow
def test_html_report_is_written_whole(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = tmp_path / "c.html"
    code = main(["trace", "complaints", str(world.home / "sim" / "complaints.csv"),
                 "--home", str(world.home), "--html", str(html)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "victims" in out
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert list(tmp_path.glob(".c.html.*")) == []


def test_fisher_exact_matches_scipy() -> None:
    # Four groups over 10 victims and 90 other customers.
    rng = np.random.default_rng(0)
    victims = {k: 10**12 for k in range(10)}
    universe = np.arange(100, dtype=np.int64)
    labels, customers = [], []
    for g, share in enumerate((0.9, 0.3, 0.1, 0.5)):
        for c in range(100):
            if rng.random() < (share if c < 10 else 0.2):
                labels.append(f"g{g}")
                customers.append(c)
    lines = rank_groups({"staff": labels}, np.array(customers), np.zeros(len(customers), dtype=np.int64),
                        victims, universe)  # fmt: skip
    for line in lines:
        a, c = line.victims_accessed, line.others_accessed
        _, p = stats.fisher_exact([[a, 10 - a], [c, 90 - c]], alternative="greater")
        assert line.p_value == pytest.approx(p, rel=1e-9)
    q = stats.false_discovery_control([ln.p_value for ln in lines], method="bh")
    assert sorted(ln.q_value for ln in lines) == pytest.approx(sorted(q))
    assert lines[0].value == "g0"


def test_accesses_after_a_victims_report_do_not_count() -> None:
    lines = rank_groups(
        {"staff": ["late", "early"]}, np.array([1, 1]), np.array([500, 50]), {1: 100},
        np.arange(10, dtype=np.int64),
    )  # fmt: skip
    assert [ln.value for ln in lines] == ["early"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("who,when\n1,2026-01-01\n", "needs a customer_id"),
        ("customer_id,reported_on\n12,yesterday\n", "line 2: reported_on is not a date"),
        ("customer_id,reported_on\nabc,2026-03-01\n", "line 2: customer_id must be a number"),
        ("customer_id,reported_on\n,2026-03-01\n", "line 2: the customer is missing"),
    ],
)
def test_bad_complaints_files_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(content)
    with pytest.raises(ComplaintsError, match=message):
        read_complaints(path)


def test_binary_complaints_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"\x00\x01" * 100)
    with pytest.raises(ComplaintsError, match="binary"):
        read_complaints(path)


@pytest.mark.slow
def test_complaints_about_customers_we_do_not_hold_say_so(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.csv"
    path.write_text("customer_id,reported_on\n99999999,2026-03-05\n")
    d = _complaints(capsys, world, path)
    assert d["victims"] == 0 and d["ranking"] == []
    assert "names a customer we hold" in d["verdict"]
    assert d["warnings"]
    code = main(["trace", "complaints", str(tmp_path / "missing.csv"), "--home", str(world.home)])
    err = capsys.readouterr().err
    assert code == 1 and "no file" in err and err.count("\n") == 1
