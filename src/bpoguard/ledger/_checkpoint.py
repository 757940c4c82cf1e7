"""Signed checkpoints: C2SP tlog-checkpoint text inside a C2SP signed note.

A checkpoint reads::

    bpoguard.local/ledger/3f1c0d9a2b4e5f60
    1042
    m9B3...base64 root hash...=
    time 2026-11-23T10:15:02Z

    — bpoguard.local/ledger/3f1c0d9a2b4e5f60 q0Fz...base64(key id || signature)...

The fourth line is an extension line carrying the time the checkpoint was cut.
tlog-checkpoint allows opaque extension lines; the Ed25519 note signature
covers the whole text, so the time is signed too, and tools that ignore
extensions still verify the checkpoint. The key name is the origin.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bpoguard.errors import LedgerError
from bpoguard.ledger.verifier import (
    ED25519,
    EM_DASH,
    ProofError,
    VerifierKey,
    check_checkpoint,
    key_id,
    parse_verifier_key,
)

TIME_PREFIX = "time "
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: origin, tree size, root hash, time, and the signed note text."""

    origin: str
    size: int
    root: bytes
    time: dt.datetime
    note: str


class Signer:
    """The log's Ed25519 signing key, named by the log's origin."""

    def __init__(self, private_key: Ed25519PrivateKey, name: str) -> None:
        if not name or any(c.isspace() for c in name) or "+" in name:
            raise LedgerError(
                f"ledger origin {name!r} cannot name a note key: no spaces or '+' allowed"
            )
        self._key = private_key
        self.name = name
        self.public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id(name, self.public_key)

    @classmethod
    def from_pem_file(cls, path: Path, name: str) -> Signer:
        """Load an unencrypted PKCS8 PEM Ed25519 key (the workspace's keys/ledger-signing.pem)."""
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            raise LedgerError(f"{path}: ledger signing key not found") from None
        except (ValueError, TypeError):
            raise LedgerError(f"{path}: not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise LedgerError(f"{path}: the ledger signing key must be Ed25519")
        return cls(key, name)

    @property
    def verifier_key(self) -> str:
        """The public note verifier key: `<name>+<hex key id>+<base64(0x01 || key)>`."""
        encoded = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @property
    def verifier(self) -> VerifierKey:
        """The verifier key, parsed."""
        return VerifierKey(self.name, self.key_id, self.public_key)

    def sign(self, size: int, root: bytes, time: dt.datetime) -> Checkpoint:
        """Cut a checkpoint for a tree of this size and root at this time."""
        time = time.astimezone(dt.UTC).replace(microsecond=0)
        text = body_text(self.name, size, root, time)
        signature = self._key.sign(text.encode("utf-8"))
        blob = base64.b64encode(self.key_id + signature).decode()
        note = f"{text}\n{EM_DASH} {self.name} {blob}\n"
        return Checkpoint(self.name, size, root, time, note)


def body_text(origin: str, size: int, root: bytes, time: dt.datetime) -> str:
    """The note text of a checkpoint (C2SP tlog-checkpoint: origin, size, root, extensions)."""
    root_b64 = base64.b64encode(root).decode()
    return f"{origin}\n{size}\n{root_b64}\n{TIME_PREFIX}{time.strftime(TIME_FORMAT)}\n"


def read_verifier_key(text: str) -> VerifierKey:
    """Parse a verifier key string; LedgerError when malformed."""
    try:
        return parse_verifier_key(text)
    except ProofError as exc:
        raise LedgerError(str(exc)) from None


def open_checkpoint(note: str, key: VerifierKey) -> Checkpoint:
    """Verify a checkpoint note and return it parsed; LedgerError says what is wrong."""
    try:
        body = check_checkpoint(note, key)
    except ProofError as exc:
        raise LedgerError(f"checkpoint: {exc}") from None
    times = [e[len(TIME_PREFIX) :] for e in body.extensions if e.startswith(TIME_PREFIX)]
    if len(times) != 1:
        raise LedgerError(f"checkpoint at size {body.size}: expected one 'time' extension line")
    try:
        time = dt.datetime.strptime(times[0], TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        raise LedgerError(f"checkpoint at size {body.size}: malformed time {times[0]!r}") from None
    return Checkpoint(body.origin, body.size, body.root, time, note)
