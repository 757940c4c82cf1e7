"""The workspace: config, database, keys and event lake under one folder.

Layout of HOME (default ./.bpoguard):

    config.toml              settings (mode 0600: it may hold a database URL)
    bpoguard.db              the SQLite database, unless [store] url says otherwise
    keys/kek.key             key-encryption key for the guard's vault (0600)
    keys/ledger-signing.pem  Ed25519 key that signs ledger checkpoints (0600)
    lake/                    the Parquet event lake, partitioned by day
    sim/                     what `bpoguard simulate` wrote (customer file, truth)
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bpoguard import config
from bpoguard.config import Settings
from bpoguard.errors import WorkspaceError
from bpoguard.store import Store

KEK_NAME = "kek.key"
SIGNING_KEY_NAME = "ledger-signing.pem"


@dataclass(frozen=True)
class InitResult:
    """What `init` did, for the CLI to report."""

    home: Path
    db: str  # description of the database, without password
    replaced: Path | None  # where an earlier workspace was moved, if --force replaced one


class Workspace:
    """An opened workspace: its settings and, on first use, its database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: Store | None = None

    @classmethod
    def open(cls, home: Path, db: str | None = None) -> Workspace:
        """Open an existing workspace; raise WorkspaceError if HOME is not one."""
        if not (home / config.CONFIG_NAME).is_file():
            raise WorkspaceError(f"no bpoguard workspace at {home}; create one with bpoguard init")
        return cls(config.load(home, db_override=db))

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def store(self) -> Store:
        """The database, at the newest schema revision (checked on first use)."""
        if self._store is None:
            store = Store(self.settings.db_url)
            store.require_current()
            self._store = store
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def upgrade(home: Path, db: str | None = None) -> tuple[str | None, str]:
    """Migrate an existing workspace's database to the newest schema; returns (from, to)."""
    settings = Workspace.open(home, db).settings
    store = Store(settings.db_url)
    try:
        before = store.revision()
        if before is None:
            raise WorkspaceError(
                f"database {store.description} has no bpoguard schema; run bpoguard init"
            )
        store.migrate()
        return before, store.head()
    finally:
        store.dispose()


def init(home: Path, db: str | None = None, force: bool = False) -> InitResult:
    """Create a workspace at HOME, all or nothing.

    An existing workspace (or any non-empty folder) is refused unless force is
    set; then it is moved aside, never deleted.
    """
    home = home.absolute()
    if _occupied(home) and not force:
        raise WorkspaceError(
            f"{home} already exists and is not empty; use --force to replace it "
            "(the old one is kept beside it, renamed)"
        )
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.init-", dir=home.parent))
    try:
        _build(staging, home, db)
        replaced = _swap_in(staging, home)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    store = Store(config.load(home, db_override=db).db_url)
    description = store.description
    store.dispose()
    return InitResult(home=home, db=description, replaced=replaced)


def _occupied(home: Path) -> bool:
    if not home.exists():
        return False
    if not home.is_dir():
        return True
    return any(home.iterdir())


def _build(staging: Path, home: Path, db: str | None) -> None:
    """Write every part of a workspace into staging, configured for its final home."""
    os.chmod(staging, 0o700)
    origin = f"bpoguard.local/ledger/{secrets.token_hex(8)}"
    now = dt.datetime.now(dt.UTC)
    _write_private(staging / config.CONFIG_NAME, config.render(db, origin, now).encode())
    keys = staging / "keys"
    keys.mkdir(mode=0o700)
    _write_private(keys / KEK_NAME, base64.b64encode(secrets.token_bytes(32)) + b"\n")
    _write_private(keys / SIGNING_KEY_NAME, _new_signing_key())
    (staging / "lake").mkdir()
    (staging / "sim").mkdir()
    _create_schema(staging, home, db)


def _create_schema(staging: Path, home: Path, db: str | None) -> None:
    if db is None:
        # The SQLite file is built in staging and moves with the folder.
        store = Store(config.default_db_url(staging))
    else:
        store = Store(db)
        store.check_reachable()
        problem = _not_empty(store)
        if problem:
            store.dispose()
            raise WorkspaceError(f"database {store.description} {problem}; give an empty database")
    try:
        store.migrate()
    finally:
        store.dispose()


def _not_empty(store: Store) -> str | None:
    """Why a database given for a new workspace cannot be used, or None."""
    if store.has_foreign_tables():
        return "holds tables that are not bpoguard's"
    if store.revision() is not None:
        # Another workspace's data, sealed and signed with that workspace's keys.
        return "already holds a bpoguard workspace"
    return None


def _swap_in(staging: Path, home: Path) -> Path | None:
    """Move staging to home; an occupied home is renamed aside first."""
    replaced = None
    if _occupied(home):
        replaced = _aside(home)
        home.rename(replaced)
    elif home.exists():
        home.rmdir()  # an empty folder: nothing to keep
    staging.rename(home)
    return replaced


def _aside(home: Path) -> Path:
    """A free name beside home for the workspace being replaced."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = home.with_name(f"{home.name}.replaced-{stamp}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = home.with_name(f"{home.name}.replaced-{stamp}-{n}")
    return candidate


def _new_signing_key() -> bytes:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only, created with that mode (no window)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
