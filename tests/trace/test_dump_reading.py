"""Reading dumps as they come: every format, and every way a file can be bad."""

from __future__ import annotations

import json
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from bpoguard.trace.dump import MAX_LINE, DumpError, ReadStats, read_dump


def _values(path: Path, stats: ReadStats | None = None) -> list[list[tuple[str | None, str]]]:
    return [list(r.cells) for r in read_dump(path, stats)]


def test_csv_with_semicolons_and_a_header_keeps_column_names(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("Full Name;CC;Sort\njo bloggs;4111 1111 1111 1111;20-00-00\n", encoding="utf-8")
    stats = ReadStats()
    rows = _values(path, stats)
    assert rows == [
        [("Full Name", "jo bloggs"), ("CC", "4111 1111 1111 1111"), ("Sort", "20-00-00")]
    ]
    assert stats.format == "csv"


def test_csv_without_a_header_reads_every_row(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("jo,4111111111111111,x\nann,4012888888881881,y\nbo,5555555555554444,z\n")
    rows = _values(path)
    assert len(rows) == 3
    assert rows[0][0] == ("#1", "jo")


def test_tab_separated_and_quoted_fields_with_newlines(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text('name\tnote\n"a"\t"line one\nline two"\n"b"\tplain\n', encoding="utf-8")
    rows = _values(path)
    assert rows[0] == [("name", "a"), ("note", "line one\nline two")]
    assert len(rows) == 2


def test_xlsx_reads_cached_values_and_skips_uncomputed_formulas(tmp_path: Path) -> None:
    path = tmp_path / "d.xlsx"
    book = Workbook()
    sheet = book.active
    sheet.append(["Name", "Card", "Price"])
    sheet.append(["jo", 4111111111111111, "=4.25*2"])
    book.save(path)
    stats = ReadStats()
    rows = _values(path, stats)
    # Integers typed into Excel come back whole, not as 4.111e15.
    # openpyxl never evaluates formulas: an uncomputed one reads as empty, never as its text.
    assert rows == [[("Name", "jo"), ("Card", "4111111111111111")]]
    assert stats.format == "xlsx"


def test_json_array_objects_are_flattened(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"name": "jo", "card": {"no": "4111"}}, {"name": "ann"}]))
    assert _values(path) == [[("name", "jo"), ("card.no", "4111")], [("name", "ann")]]


def test_json_object_holding_a_list_of_records(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"meta": {"n": 2}, "data": [{"a": "1"}, {"a": "2"}]}))
    assert _values(path) == [[("a", "1")], [("a", "2")]]


def test_json_lines_skip_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": "1"}\n{broken\n{"a": "2"}\n')
    stats = ReadStats()
    assert _values(path, stats) == [[("a", "1")], [("a", "2")]]
    assert stats.skipped_records == 1
    assert stats.format == "jsonl"


def test_chat_text_paragraphs_of_key_values_are_one_record(tmp_path: Path) -> None:
    path = tmp_path / "chat.txt"
    path.write_text(
        "hi bro fresh ones\n\nName: jo bloggs\nCard: 4111 1111 1111 1111\n\n"
        "ann smith 4012 8888 8888 1881\n"
    )
    rows = _values(path)
    assert rows[0] == [(None, "hi bro fresh ones")]
    assert rows[1] == [("Name", "jo bloggs"), ("Card", "4111 1111 1111 1111")]
    assert rows[2] == [(None, "ann smith 4012 8888 8888 1881")]


def test_windows_1252_bytes_are_read_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(
        "name,card\nJos\xe9 \x80,4111111111111111\nann,4012888888881881\n".encode("latin-1")
    )
    stats = ReadStats()
    rows = _values(path, stats)
    assert rows[1] == [("name", "ann"), ("card", "4012888888881881")]
    assert stats.encoding == "cp1252"


def test_utf16_with_a_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_bytes("name: jo\ncard: 4111 1111 1111 1111\n".encode("utf-16"))
    rows = _values(path)
    assert rows == [[("name", "jo"), ("card", "4111 1111 1111 1111")]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"  \n\n \t\n", "is empty"),
        (b"\x00\x01\x02binary\x00" * 50, "binary file"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "binary file"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old Excel"),
        (b"PK\x03\x04" + b"\x00" * 100, "ZIP archive"),
    ],
)
def test_unreadable_files_are_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "dump.bin"
    path.write_bytes(content)
    with pytest.raises(DumpError, match=message):
        list(read_dump(path))


def test_a_damaged_workbook_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "d.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"xl/" + b"\x00" * 200)
    with pytest.raises(DumpError, match=r"not a readable \.xlsx"):
        list(read_dump(path))


def test_missing_file_and_folder_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DumpError, match="no file"):
        list(read_dump(tmp_path / "absent.csv"))
    with pytest.raises(DumpError, match="is a folder"):
        list(read_dump(tmp_path))


def test_overlong_lines_are_cut_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    with path.open("w") as handle:
        handle.write("first line 4111 1111 1111 1111\n")
        handle.write("x" * (MAX_LINE * 3) + "\n")
        handle.write("last line\n")
    stats = ReadStats()
    rows = _values(path, stats)
    assert rows[0] == [(None, "first line 4111 1111 1111 1111")]
    assert rows[-1] == [(None, "last line")]
    assert stats.cut_lines == 1


def test_garbage_columns_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("\n".join(",".join(["zz" * 3000] * 1000) for _ in range(3)) + "\n")
    stats = ReadStats()
    rows = _values(path, stats)
    assert all(len(r) == 0 for r in rows)  # every cell was overlong: nothing to look at
    assert stats.skipped_cells > 0


def test_record_limit_stops_reading_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("".join(f"line {k}\n" for k in range(100)))
    stats = ReadStats()
    assert len(list(read_dump(path, stats, max_records=10))) == 10
    assert stats.stopped_at_limit
    assert any("record limit" in w for w in stats.warnings())


@pytest.mark.slow
def test_a_large_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    row = "jo bloggs;4111 1111 1111 1111;20-00-00;12345678\n"
    with path.open("w") as handle:
        handle.write("name;card;sort;acc\n")
        for _ in range(60):
            handle.write(row * 1000)
    size = path.stat().st_size
    tracemalloc.start()
    count = sum(1 for _ in read_dump(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 60_000
    assert peak < size / 4  # streamed: a fraction of the file's size is ever held


def test_a_long_json_array_streams_across_read_chunks(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    records = [
        {"name": f"person {k}", "card": "4111 1111 1111 1111", "pad": "x" * 50} for k in range(5000)
    ]
    path.write_text(json.dumps(records))
    rows = _values(path)
    assert len(rows) == 5000
    assert rows[-1][0] == ("name", "person 4999")


def test_malformed_json_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('{"name": "jo", "card": ')
    with pytest.raises(DumpError, match="does not parse"):
        list(read_dump(path))


def test_every_sheet_of_a_workbook_is_read(tmp_path: Path) -> None:
    path = tmp_path / "d.xlsx"
    book = Workbook()
    book.active.append(["jo", "4111 1111 1111 1111"])
    book.create_sheet("more").append(["ann", "4012 8888 8888 1881"])
    book.save(path)
    rows = list(read_dump(path))
    assert [r.where for r in rows] == ["sheet Sheet row 1", "sheet more row 1"]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from(["d.csv", "d.txt", "d.json", "d.xlsx", "d"]))
def test_any_bytes_read_cleanly_or_fail_with_one_clear_error(content: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            for record in read_dump(path):
                assert all(isinstance(v, str) and v for _, v in record.cells)
        except DumpError as exc:
            assert "\n" not in str(exc)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=30), st.integers(),
                                                               st.none())), max_size=20))  # fmt: skip
def test_any_json_records_are_read(records: list[dict[str, object]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "d.json"
        path.write_text(json.dumps(records))
        try:
            rows = list(read_dump(path))
        except DumpError:
            return  # an empty array or empty objects: nothing to read
        assert len(rows) <= max(1, len(records))


def test_csv_cells_past_the_header_or_under_a_blank_name_are_named_as_before(
    tmp_path: Path,
) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        "Full Name,,CC\njo bloggs,x,4111 1111 1111 1111,  extra  ,,last\n ,, \nann,,,y\n",
        encoding="utf-8",
    )
    stats = ReadStats()
    rows = _values(path, stats)
    assert rows == [
        [
            ("Full Name", "jo bloggs"),
            (None, "x"),  # a blank header name: no column name
            ("CC", "4111 1111 1111 1111"),
            ("#4", "extra"),  # past the header's end: named by position, stripped
            ("#6", "last"),
        ],
        [("Full Name", "ann"), ("#4", "y")],
    ]
    assert stats.skipped_cells == 0
