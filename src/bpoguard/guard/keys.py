"""Key-encryption keys (KEKs) and the plug-in point for a KMS.

The vault's key hierarchy has two levels. Each client has its own data key
(AES-256-GCM over field values) and index key (HMAC-SHA256 for blind indexes),
random, stored in the database only *wrapped* by a KEK. The KEK never enters
the database: it lives in the workspace's key files, in an environment
variable, or in a KMS behind the :class:`KeyProvider` contract.

    KeyProvider (Protocol)       key_id, wrap(key, context), unwrap(blob, context)
    └── KeyfileProvider          reference: keys/kek.key, kek-2.key, ... or one base64 string

A wrapped blob names the KEK that wrapped it (by fingerprint), so a provider
holding several KEKs (old and new, during a rotation) picks the right one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bpoguard.errors import BpoguardError

KEY_BYTES = 32  # AES-256 and HMAC-SHA256 keys alike
NONCE_BYTES = 12  # 96-bit GCM nonce: NIST SP 800-38D section 8.2.2 (random construction)
KEK_FILE = "kek.key"  # version 1, written by `bpoguard init`
_VERSIONED = re.compile(r"kek-([1-9][0-9]*)\.key")
_WRAP_FORMAT = 1


class VaultKeyError(BpoguardError):
    """A key-encryption key is missing, malformed or unknown, or a wrapped key does not unwrap."""


class KeyProvider(Protocol):
    """The KMS plug-in point: wraps and unwraps the vault's client keys under a KEK.

    ``context`` is bound to the wrapped key (AES-GCM associated data, or a KMS's
    encryption context): unwrapping with another context must fail.
    """

    @property
    def key_id(self) -> str:
        """The id of the KEK that ``wrap`` uses now."""
        ...

    def wrap(self, key: bytes, context: bytes) -> bytes:
        """Encrypt a client key under the current KEK; the blob names that KEK."""
        ...

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        """Decrypt a wrapped client key with the KEK the blob names; raise VaultKeyError."""
        ...


# --- pure helpers ----------------------------------------------------------------------------


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return secrets.token_bytes(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM with a random 96-bit nonce: returns nonce || ciphertext || tag.

    Random nonces are safe up to 2**32 encryptions under one key (NIST SP
    800-38D section 8.3); the vault stays orders of magnitude below that per client.
    """
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Open what :func:`seal` made; raises cryptography's InvalidTag on any mismatch."""
    if len(blob) < NONCE_BYTES + 16:
        raise InvalidTag
    return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)


def fingerprint(kek: bytes) -> str:
    """A KEK's public id: an HMAC key check value, reveals nothing of the key."""
    check = hmac.new(kek, b"bpoguard kek id", hashlib.sha256).hexdigest()
    return f"kek-{check[:16]}"


def decode_kek(text: str, where: str) -> bytes:
    """Decode one base64 KEK; the message names ``where`` it came from, never its text."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise VaultKeyError(f"{where}: not a base64 key-encryption key") from None
    if len(key) != KEY_BYTES:
        raise VaultKeyError(f"{where}: key-encryption key is {len(key)} bytes, needs {KEY_BYTES}")
    return key


def wrap_with(kek: bytes, key: bytes, context: bytes) -> bytes:
    """format byte || id length || KEK id || sealed key, the context as associated data."""
    kek_id = fingerprint(kek).encode()
    return bytes([_WRAP_FORMAT, len(kek_id)]) + kek_id + seal(kek, key, context)


def named_kek(blob: bytes) -> str:
    """The id of the KEK a wrapped blob names; VaultKeyError if the blob is not one of ours."""
    if len(blob) < 2 or blob[0] != _WRAP_FORMAT or len(blob) < 2 + blob[1]:
        raise VaultKeyError("a wrapped client key is malformed (not written by this provider)")
    return blob[2 : 2 + blob[1]].decode("ascii", errors="replace")


def unwrap_with(kek: bytes, blob: bytes, context: bytes) -> bytes:
    """Open a blob from :func:`wrap_with`; VaultKeyError if it was altered or moved."""
    try:
        return unseal(kek, blob[2 + blob[1] :], context)
    except InvalidTag:
        raise VaultKeyError(
            f"a client key wrapped by {fingerprint(kek)} does not unwrap: it was altered, "
            "or copied from another client or purpose"
        ) from None


# --- the reference provider ------------------------------------------------------------------


@dataclass(frozen=True)
class KekFile:
    """One KEK file in a keys folder."""

    version: int
    path: Path
    key_id: str


class KeyfileProvider:
    """KEKs held locally: versioned files in the keys folder, or given as base64 text.

    The newest version wraps; every version present unwraps. A provider reading a
    folder looks again when a blob names a KEK it does not know, so a process
    started before a rotation keeps reading after it.
    """

    def __init__(self, keks: Mapping[str, bytes], current: str, keys_dir: Path | None = None):
        self._keks = dict(keks)
        self._current = current
        self._dir = keys_dir
        self._files: tuple[KekFile, ...] = ()
        self._lock = threading.Lock()

    @classmethod
    def from_dir(cls, keys_dir: Path) -> KeyfileProvider:
        """Read every KEK file in a workspace's keys folder (kek.key, kek-2.key, ...)."""
        provider = cls({}, "", keys_dir)
        provider._load()
        return provider

    @classmethod
    def from_base64(cls, text: str, where: str = "BPOGUARD_KEK") -> KeyfileProvider:
        """KEKs given as text: base64 keys separated by commas, the current one first."""
        parts = [part for part in text.split(",") if part.strip()]
        if not parts:
            raise VaultKeyError(f"{where}: empty; give a base64 key-encryption key")
        keys = [decode_kek(part, where) for part in parts]
        return cls({fingerprint(k): k for k in keys}, fingerprint(keys[0]))

    @property
    def key_id(self) -> str:
        """The id of the KEK that wraps new keys: the newest version."""
        return self._current

    @property
    def files(self) -> tuple[KekFile, ...]:
        """The KEK files read, oldest first (empty for a provider given text)."""
        return self._files

    def wrap(self, key: bytes, context: bytes) -> bytes:
        """Wrap a client key under the current KEK."""
        return wrap_with(self._keks[self._current], key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        """Unwrap with whichever KEK the blob names, looking in the folder again if needed."""
        kek_id = named_kek(blob)
        if kek_id not in self._keks and self._dir is not None:
            self._load()
        kek = self._keks.get(kek_id)
        if kek is None:
            known = ", ".join(sorted(self._keks))
            raise VaultKeyError(
                f"a client key is wrapped by key-encryption key {kek_id}, which is not "
                f"available (have: {known}); restore that KEK file or value"
            )
        return unwrap_with(kek, blob, context)

    def _load(self) -> None:
        assert self._dir is not None
        with self._lock:
            files = read_kek_files(self._dir)
            self._keks = {f.key_id: key for f, key in files}
            self._files = tuple(f for f, _ in files)
            self._current = self._files[-1].key_id


def _version_of(path: Path) -> int | None:
    if path.name == KEK_FILE:
        return 1
    match = _VERSIONED.fullmatch(path.name)
    return int(match.group(1)) if match else None


def kek_paths(keys_dir: Path) -> list[tuple[int, Path]]:
    """(version, path) of every KEK file in a folder, oldest first."""
    try:
        entries = list(keys_dir.iterdir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise VaultKeyError(f"{keys_dir}: cannot read ({exc.strerror})") from None
    found = [(v, p) for p in entries if (v := _version_of(p)) is not None]
    return sorted(found)


def read_kek_files(keys_dir: Path) -> list[tuple[KekFile, bytes]]:
    """Every KEK in a folder with its key, oldest first; VaultKeyError if there is none."""
    paths = kek_paths(keys_dir)
    if not paths:
        raise VaultKeyError(
            f"no key-encryption key in {keys_dir} ({KEK_FILE} or kek-N.key); restore it "
            "from your key backup, or set BPOGUARD_KEK"
        )
    found = []
    for version, path in paths:
        key = decode_kek(_read(path), str(path))
        found.append((KekFile(version, path, fingerprint(key)), key))
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise VaultKeyError(f"{path}: not a base64 key-encryption key") from None
    except OSError as exc:
        raise VaultKeyError(f"{path}: cannot read ({exc.strerror})") from None


def create_next_kek(keys_dir: Path) -> KekFile:
    """Write a new random KEK as the next version (kek-N.key, mode 0600), atomically.

    The key is written to a temporary file, flushed, then linked under its final
    name, which fails rather than replace an existing KEK.
    """
    paths = kek_paths(keys_dir)
    version = (paths[-1][0] if paths else 0) + 1
    final = keys_dir / (KEK_FILE if version == 1 else f"kek-{version}.key")
    key = new_key()
    temporary = keys_dir / f".{final.name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(key) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, final)
    except FileExistsError:
        raise VaultKeyError(f"{final} appeared while rotating; run the rotation again") from None
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_dir(keys_dir)
    return KekFile(version, final, fingerprint(key))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "KEK_FILE",
    "KekFile",
    "KeyProvider",
    "KeyfileProvider",
    "VaultKeyError",
    "create_next_kek",
    "fingerprint",
    "new_key",
    "seal",
    "unseal",
]
