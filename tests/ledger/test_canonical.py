"""Entries are canonical JSON in the manner of RFC 8785."""

from __future__ import annotations

import datetime as dt
import enum
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpoguard.access import Verb
from bpoguard.audit import DecisionRecord
from bpoguard.fields import FieldType
from bpoguard.ledger import _canonical, canonical_json
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


# --- the append path's encoder: the verifier's bytes, faster ---------------------------

_OLD_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _reference(value: object) -> bytes | type[Exception]:
    """What the verifier's definition gives for a value, or the error it raises."""
    try:
        return canonical_json(value)
    except (ProofError, UnicodeError) as exc:
        return type(exc)


def _fast(value: object) -> bytes | type[Exception]:
    try:
        return _canonical.encode(value)
    except (ProofError, UnicodeError) as exc:
        return type(exc)


any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)  # beyond 2**53 both must refuse
    | st.floats(allow_nan=False, width=32)
    | st.text()  # lone surrogates included
    | st.sampled_from(list(FieldType)),  # enum members: written as their value
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


@given(any_json)
def test_the_append_encoder_gives_the_verifiers_bytes_or_its_refusal(value: object) -> None:
    assert _fast(value) == _reference(value)


decision_records = st.builds(
    DecisionRecord,
    at=st.datetimes(
        min_value=dt.datetime(1900, 1, 1),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5.5))]),
    ),
    staff_id=st.text(min_size=1, max_size=12),
    verb=st.sampled_from(list(Verb)),
    customer_id=st.integers(0, 2**54),
    fields=st.lists(st.sampled_from(list(FieldType)), max_size=5).map(tuple),
    source_ip=st.text(max_size=15),
    device_id=st.none() | st.text(max_size=10),
    interaction_id=st.none() | st.integers(1, 2**40),
    allowed=st.booleans(),
    reasons=st.lists(st.text(max_size=40), max_size=3).map(tuple),
    site_id=st.none() | st.text(max_size=8),
    canary=st.booleans(),
)


@given(decision_records)
def test_guard_entries_encode_to_the_verifiers_bytes(record: DecisionRecord) -> None:
    entry = record.entry()
    expected = _reference(entry)
    assert _fast(entry) == expected
    if isinstance(expected, bytes):
        # And to what the append path wrote before its encoder was built once.
        assert _OLD_ENCODER.encode(entry).encode("utf-8") == expected
        parsed = parse_json(expected)
        # The time as the entry format wrote it before _utc's fast path for UTC times.
        utc = record.at.astimezone(dt.UTC).replace(tzinfo=None)
        assert parsed["t"] == utc.isoformat(timespec="microseconds") + "Z"
        assert parsed["fields"] == [f.value for f in record.fields]
        assert parsed["verb"] == record.verb.value


@given(decision_records)
def test_an_entry_filled_in_directly_is_the_canonical_encoding_or_declined(
    record: DecisionRecord,
) -> None:
    direct = record.entry_bytes()
    expected = _reference(record.entry())
    if direct is None:
        # Declined only for what the plain path cannot write: big ids, lone surrogates.
        ids = [record.customer_id, record.interaction_id or 0]
        texts = [record.staff_id, record.source_ip, record.device_id or "", record.site_id or ""]
        assert any(abs(v) > 2**53 - 1 for v in ids) or any(
            not _valid_utf8(t) for t in [*texts, *record.reasons]
        )
    else:
        assert direct == expected


def _valid_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_an_ordinary_decision_is_filled_in_directly() -> None:
    record = DecisionRecord(
        dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        "AGT-00012", Verb.VIEW, 123456, (FieldType.NAME, FieldType.PHONE), "10.1.2.3", None,
        None, False, ('quote " and é', "\n"), site_id="site-pune", canary=True,
    )  # fmt: skip
    assert record.entry_bytes() == canonical_json(record.entry())
    assert record.entry_bytes() is not None


@pytest.mark.parametrize(
    "change",
    [{"customer_id": 2**53}, {"staff_id": "\ud800"}, {"fields": ("name",)}, {"verb": "view"}],
)
def test_unusual_values_are_left_to_the_general_encoder(change: dict[str, object]) -> None:
    base = {
        "at": dt.datetime(2026, 3, 2, tzinfo=dt.UTC), "staff_id": "AGT-1", "verb": Verb.VIEW,
        "customer_id": 1, "fields": (FieldType.NAME,), "source_ip": "10.0.0.1",
        "device_id": None, "interaction_id": 1, "allowed": True, "reasons": ("r",),
    }  # fmt: skip
    record = DecisionRecord(**(base | change))  # type: ignore[arg-type]
    assert record.entry_bytes() is None
