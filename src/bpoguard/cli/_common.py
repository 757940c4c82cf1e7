"""What every command shares: the workspace options, JSON output, consoles."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console

if TYPE_CHECKING:
    from bpoguard.workspace import Workspace

# Tables and summaries go to stdout; progress bars and notes to stderr, so that
# `--json` output on stdout is always exactly one JSON document.
out = Console(highlight=False, markup=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)

Home = Annotated[
    Path,
    typer.Option(
        "--home",
        envvar="BPOGUARD_HOME",
        help="Workspace folder (config, database, keys, event lake).",
        show_default=True,
    ),
]
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="BPOGUARD_DB",
        help="Database URL (postgresql://...) instead of the workspace's SQLite file.",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]

DEFAULT_HOME = Path(".bpoguard")


def command_group(name: str, help_text: str) -> typer.Typer:
    """A `bpoguard NAME ...` group: prints its help when called bare; plain-text help."""
    return typer.Typer(
        name=name,
        help=help_text,
        add_completion=False,
        no_args_is_help=True,
        rich_markup_mode=None,
    )


def open_workspace(home: Path, db: str | None) -> Workspace:
    """Open the workspace a command was pointed at (errors are the user's to fix)."""
    from bpoguard.workspace import Workspace  # SQLAlchemy: only for commands that open one

    return Workspace.open(home, db)


def emit_json(document: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(to_json(document))


# What `json.dumps(document, indent=2, sort_keys=True, default=str)` wrote, in C: that
# pure-Python indenting encoder took 0.46 s of the 0.6 s `bpoguard trace leak --json`
# spent on its 11.9 MB report. orjson writes the same tokens in the same layout, but
# (1) leaves dates, dataclasses and float subclasses to its default only when asked,
# (2) writes non-ASCII text as UTF-8 where json escapes it (\u2014), and (3) writes some
# small floats differently (0.00001 and 1e-7 where Python's repr writes 1e-05 and 1e-07).
# Each is put back below, so the bytes are json's; what orjson refuses (integers past
# 64 bits, keys that are not strings, lone surrogates, deep nesting) json writes instead.
_ORJSON_OPTIONS = (
    orjson.OPT_INDENT_2
    | orjson.OPT_SORT_KEYS
    | orjson.OPT_APPEND_NEWLINE
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
# Where orjson spells a float unlike repr: found by their literal parts (a fast search),
# then each whole token is read back from the space before it. A token ending a line
# (before ",\n" or "\n", which a string cannot hold unescaped) is a value, not text.
_SMALL_DECIMAL = re.compile(rb"0\.0000[1-9]")
_SHORT_EXPONENT = re.compile(rb"e-[1-9](?=,?\n)")
_FLOAT_TOKEN = re.compile(rb"-?(?:0\.0000[1-9][0-9]*|[0-9](?:\.[0-9]+)?e-[1-9])")
# Non-ASCII bytes (and DEL, which json escapes too) marked 1, the rest 0, so that
# bytes.find (memchr) finds their runs: a regular expression's search is 10x slower.
_MARK = bytes(int(b >= 0x7F) for b in range(256))


def _default(value: Any) -> Any:
    # json writes a float subclass (numpy's float64) as a number and anything else it
    # cannot write as its str().
    if isinstance(value, float):
        return float(value)
    return str(value)


def _fix_floats(raw: bytes) -> bytes:
    """orjson's 0.00001 and 1e-7 as repr writes them (1e-05, 1e-07); nothing else moves."""
    spans: set[tuple[int, int]] = set()
    for found in (*_SMALL_DECIMAL.finditer(raw), *_SHORT_EXPONENT.finditer(raw)):
        start = raw.rfind(b" ", 0, found.start()) + 1
        end = raw.find(b"\n", found.start())
        if raw[end - 1] == ord(","):
            end -= 1
        if raw[start:end].startswith(b'"') or not _FLOAT_TOKEN.fullmatch(raw, start, end):
            continue  # inside a string (or not a lone number): left as it is
        spans.add((start, end))
    if not spans:
        return raw
    parts, at = [], 0
    for start, end in sorted(spans):
        parts += [raw[at:start], repr(float(raw[start:end])).encode("ascii")]
        at = end
    parts.append(raw[at:])
    return b"".join(parts)


def _escape_non_ascii(raw: bytes) -> bytes:
    """Non-ASCII characters (and DEL) as json's \\uXXXX escapes, the rest as it is."""
    marks = raw.translate(_MARK)
    parts, at = [], 0
    start = marks.find(1)
    while start >= 0:  # a run of bytes >= 0x7f is whole UTF-8 characters
        end = marks.find(0, start)
        end = len(raw) if end < 0 else end
        text = raw[start:end].decode("utf-8")
        parts += [raw[at:start], json.encoder.encode_basestring_ascii(text)[1:-1].encode()]
        at = end
        start = marks.find(1, end)
    parts.append(raw[at:])
    return b"".join(parts)


def to_json(document: Any) -> str:
    """`document` as `json.dumps(indent=2, sort_keys=True, default=str)` writes it, newline ended.

    Not a number (NaN, infinity), which json wrote as the non-JSON tokens NaN and
    Infinity, is written as null (orjson's choice, and valid JSON).
    """
    try:
        raw = orjson.dumps(document, default=_default, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"
    raw = _fix_floats(raw)
    if not raw.isascii() or b"\x7f" in raw:
        raw = _escape_non_ascii(raw)
    return raw.decode("ascii")
