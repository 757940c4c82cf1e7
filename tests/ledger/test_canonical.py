"""Entries are canonical JSON in the manner of RFC 8785."""

from __future__ import annotations

import enum
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpoguard.ledger import canonical_json
from bpoguard.ledger.verifier import ProofError, parse_json


class Decision(enum.StrEnum):
    DENY = "deny"


def test_keys_are_sorted_and_there_is_no_white_space() -> None:
    assert canonical_json({"b": [1, True, None], "a": {"d": "x", "c": -3}}) == (
        b'{"a":{"c":-3,"d":"x"},"b":[1,true,null]}'
    )


def test_text_is_utf8_and_only_controls_are_escaped() -> None:
    assert canonical_json({"k": 'é€\u2028\n\x01"\\/'}) == (
        '{"k":"é€\u2028\\n\\u0001\\"\\\\/"}'.encode()
    )


def test_keys_sort_by_utf16_code_units_as_rfc8785_says() -> None:
    # U+1F600 is the surrogate pair D83D DE00, which sorts before U+FB01 in UTF-16.
    value = {"\ufb01": 1, "\U0001f600": 2, "a": 3}
    assert canonical_json(value) == '{"a":3,"\U0001f600":2,"\ufb01":1}'.encode()


def test_string_enums_are_written_as_their_value() -> None:
    assert canonical_json({"decision": Decision.DENY}) == b'{"decision":"deny"}'


@pytest.mark.parametrize(
    "value",
    [{"x": 1.5}, {"x": float("nan")}, {"x": 2**53}, {3: 1}, {"x": b"raw"}, {"x": "\ud800"}],
)
def test_values_without_a_canonical_form_are_refused(value: object) -> None:
    with pytest.raises(ProofError):
        canonical_json(value)


def test_parsing_refuses_duplicate_keys_and_non_finite_numbers() -> None:
    with pytest.raises(ProofError, match="duplicate key 'a'"):
        parse_json(b'{"a":1,"a":2}')
    with pytest.raises(ProofError, match="NaN is not valid JSON"):
        parse_json(b'{"a":NaN}')
    with pytest.raises(ProofError, match="not valid JSON"):
        parse_json(b'{"a":')


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(st.characters(exclude_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=("Cs",))), children, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values)
def test_canonical_form_is_a_fixed_point_of_parse_and_reencode(value: object) -> None:
    once = canonical_json(value)
    assert canonical_json(parse_json(once)) == once
    assert json.loads(once) == value
