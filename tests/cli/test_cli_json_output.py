"""`emit_json` writes what json.dumps(indent=2, sort_keys=True, default=str) wrote, byte for byte."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpoguard.cli._common import emit_json, to_json


def _old(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


@dataclasses.dataclass
class Point:
    x: int
    y: float


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=1e-10, max_value=1e-3)  # where orjson and repr spell differently
    | st.text()
    | st.text(alphabet=st.characters(codec="utf-8"))  # no lone surrogates
    | st.sampled_from(["e-5", "1e-7", "0.00001", "x\n1e-7", '"', "\\", "\x7f", "—", "😀"])
)
_documents = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        | st.tuples(inner, inner)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(_documents)
def test_any_document_is_written_as_json_dumps_wrote_it(document: Any) -> None:
    assert to_json(document) == _old(document)


@pytest.mark.parametrize(
    "value",
    [
        1e-05, -1.2034423772715594e-05, 9.999e-05, 1e-04, 4.08e-06, 1e-07, 2.2e-08, 1.99e-09,
        1e-10, 5e-324, 1e16, 1e22, -0.0, 0.0, 1 / 3, 123456789.0, 2.0**70,
    ],
)  # fmt: skip
def test_floats_in_every_position(value: float) -> None:
    document = {"a": value, "b": [value, value], "c": {"d": [[value]]}, "e": "x"}
    assert to_json(document) == _old(document)
    assert to_json(value) == _old(value)
    assert to_json([value]) == _old([value])


def test_values_json_left_to_str_are_still_strings() -> None:
    when = dt.datetime(2026, 3, 9, 12, 30, 1, 500, tzinfo=dt.UTC)
    document = {
        "at": when,
        "naive": when.replace(tzinfo=None),
        "day": when.date(),
        "time": when.time(),
        "point": Point(1, 0.5),
        "path": Path("/tmp/x"),
        "decimal": decimal.Decimal("1.10"),
        "uuid": uuid.UUID(int=5),
        "set": {3},
        "bytes": b"ab",
        "colour": Colour.RED,
        "size": Size.BIG,
        "np_float": np.float64(1e-05),
        "np_int": np.int64(7),
        "np_float32": np.float32(0.5),
        "nested": [{"z": 1, "a": [when]}],
    }
    assert to_json(document) == _old(document)


def test_what_orjson_refuses_is_written_by_json() -> None:
    for document in (
        {"big": 2**64, "small": -(2**64)},
        {1: "int key", 2: "sorted"},
        {"surrogate": "\ud800"},
    ):
        assert to_json(document) == _old(document)
    deep: Any = 1
    for _ in range(300):
        deep = [deep]
    assert to_json(deep) == _old(deep)


def test_not_a_number_is_null_which_is_json() -> None:
    document = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "ok": 1.5}
    written = to_json(document)
    assert json.loads(written) == {"nan": None, "inf": None, "ninf": None, "ok": 1.5}
    assert "NaN" not in written and "Infinity" not in written


def test_non_ascii_is_escaped_as_json_escapes_it() -> None:
    document = {"note": "— signed", "ключ": "значение 😀", "del": "a\x7fb", "mix": "é\x7fé"}
    written = to_json(document)
    assert written.isascii()
    assert written == _old(document)
    assert json.loads(written) == document


def test_emit_json_prints_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    emit_json({"b": [1, 2.5e-05], "a": "—"})
    out = capsys.readouterr().out
    assert out == _old({"b": [1, 2.5e-05], "a": "—"})
    assert json.loads(out) == {"a": "—", "b": [1, 2.5e-05]}
