"""The workspace configuration: one TOML file, read once at the edge, passed in."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from bpoguard.errors import ConfigError

CONFIG_NAME = "config.toml"
FORMAT = 1
SQLITE_NAME = "bpoguard.db"


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to find the workspace's parts."""

    home: Path
    created: str
    db_url: str  # as configured, or overridden by --db / BPOGUARD_DB
    ledger_origin: str  # the origin line of the ledger's checkpoints

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def sim_dir(self) -> Path:
        return self.home / "sim"

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_NAME


def default_db_url(home: Path) -> str:
    """The embedded default: a SQLite file inside the workspace."""
    return f"sqlite:///{(home / SQLITE_NAME).resolve()}"


def render(db_url: str | None, origin: str, created: dt.datetime) -> str:
    """The text of a new config file; db_url None means the embedded SQLite file."""
    doc: dict[str, Any] = {
        "workspace": {"format": FORMAT, "created": created.isoformat(timespec="seconds")},
        "store": {"url": db_url} if db_url else {},
        "ledger": {"origin": origin},
    }
    header = (
        "# bpoguard workspace configuration.\n"
        "# [store] url: leave out for the SQLite file in this folder, or give a\n"
        "# postgresql:// URL. BPOGUARD_DB or --db override it for one command.\n\n"
    )
    return header + tomli_w.dumps(doc)


def load(home: Path, db_override: str | None = None) -> Settings:
    """Read HOME/config.toml; raise ConfigError naming the file and the problem."""
    path = home / CONFIG_NAME
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; is {home} a bpoguard workspace?") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    workspace = _table(doc, "workspace", path)
    fmt = workspace.get("format")
    if type(fmt) is not int or fmt != FORMAT:  # True == 1 and 1.0 == 1 in Python
        raise ConfigError(f"{path}: workspace format {fmt!r}, expected {FORMAT}")
    store = _table(doc, "store", path, required=False)
    url = store.get("url")
    if url is not None and (not isinstance(url, str) or not url):
        raise ConfigError(f"{path}: [store] url must be a non-empty string")
    ledger = _table(doc, "ledger", path)
    origin = ledger.get("origin")
    if not isinstance(origin, str) or not origin or not origin.isprintable() or " " in origin:
        # The origin is the first line of every signed checkpoint (C2SP tlog-checkpoint).
        raise ConfigError(f"{path}: [ledger] origin must be one word of printable text")
    return Settings(
        home=home,
        created=str(workspace.get("created", "")),
        db_url=db_override or url or default_db_url(home),
        ledger_origin=origin,
    )


def _table(doc: dict[str, Any], name: str, path: Path, required: bool = True) -> dict[str, Any]:
    value = doc.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: missing or malformed [{name}] table")
    return value
