"""Canonical JSON for appends: the verifier's bytes, reached with less work.

:func:`bpoguard.ledger.verifier.canonical_json` is the definition (and what a
police analyst runs). On the append path almost every entry is plain: exact
``str``/``bool``/``None``/small ``int`` values, lists, and dicts with ASCII
string keys. For those the verifier's own answer is the C encoder's sorted,
compact output, so this module checks plainness with exact type tests (no
``isinstance`` chains) and calls one encoder built once. Anything else (floats,
big integers, enum or other subclasses, non-ASCII keys, lone surrogates) goes to
the verifier's function, which encodes it or raises its ProofError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from bpoguard.ledger.verifier import MAX_SAFE_INTEGER, canonical_json

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _unserialisable(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")  # never reached: values are plain


def _c_encoder() -> Callable[[Any], str]:
    """The C encoder JSONEncoder.encode builds on every call, built once.

    ``JSONEncoder.encode`` makes a new ``c_make_encoder`` (and a circular-check
    dict) each call, which cost half of encoding an entry. These are the same
    arguments it passes (markers aside: plain values were walked already, and
    a cycle fails that walk), so the text is the same.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the C accelerator
        return lambda value: _ENCODER.encode(value)
    iterencode = make(
        None,  # markers: no circular check
        _unserialisable,
        json.encoder.encode_basestring,  # ensure_ascii=False
        None,  # indent
        ":",
        ",",
        True,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan (as JSONEncoder's default; plain values hold no floats)
    )

    def encode(value: Any) -> str:
        return "".join(iterencode(value, 0))

    return encode


_ENCODE = _c_encoder()


_SCALARS = (str, bool, type(None))


def _plain(value: Any) -> bool:
    """True if the value is made only of exact JSON types the C encoder writes canonically."""
    kind = type(value)
    if kind is dict:
        for key in value:
            if type(key) is not str or not key.isascii():
                return False
        return _all_plain(value.values())
    if kind is list or kind is tuple:
        return _all_plain(value)
    return _all_plain((value,))


def _all_plain(items: Iterable[Any]) -> bool:
    # Scalars are checked inline rather than by a call each: they are most of an entry.
    for item in items:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return False
        elif kind is dict or kind is list or kind is tuple:
            if not _plain(item):
                return False
        else:
            return False
    return True


def encode(value: Any) -> bytes:
    """Exactly ``verifier.canonical_json(value)``, faster for plain values."""
    if _plain(value):
        try:
            return _ENCODE(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: the verifier's function names the problem
    return canonical_json(value)
