"""Standalone verifier for bpoguard ledger proofs: no database, no bpoguard.

This one file needs only the Python standard library and, for the Ed25519
signature check, the ``cryptography`` package. Copy it anywhere and run::

    python verifier.py --entry entry.json --proof proof.json \\
        --checkpoint checkpoint.txt --key 'ORIGIN+KEYHASH+KEY'
    python verifier.py --proof consistency.json --old-checkpoint old.txt \\
        --checkpoint new.txt --key 'ORIGIN+KEYHASH+KEY'

It checks that a ledger entry is included in a signed checkpoint (RFC 9162
section 2.1.3), or that a later checkpoint extends an earlier one (RFC 9162
section 2.1.4), and that the checkpoints are C2SP signed notes signed by the
given key. Exit status: 0 verified, 1 not verified (the reason on stderr).

bpoguard itself imports the hashing and checking functions below, so the code
a police analyst runs is the code the ledger is tested with.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Note",
    "ProofError",
    "VerifierKey",
    "canonical_json",
    "check_checkpoint",
    "key_id",
    "leaf_hash",
    "main",
    "node_hash",
    "parse_checkpoint_body",
    "parse_verifier_key",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
    "verify_note",
]

HASH_SIZE = 32
ED25519 = 0x01  # signed-note signature type for plain Ed25519 (C2SP signed-note)
EM_DASH = "\u2014"
MAX_SAFE_INTEGER = 2**53 - 1  # RFC 8785 numbers are IEEE 754 doubles


class ProofError(Exception):
    """A proof, entry, checkpoint or key does not verify or cannot be read."""


# --- Entries: canonical JSON (RFC 8785 style) -------------------------------------------


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 bytes of a JSON value: sorted keys, no white space.

    Floats and integers beyond 2**53 are refused: RFC 8785 number formatting
    is that of ECMAScript doubles, and entries never need them.
    """
    if _check(value):
        # Every key is ASCII, so code-point order equals RFC 8785's UTF-16 order
        # and the C encoder gives the canonical form.
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    else:
        text = _encode(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ProofError("entry holds a lone surrogate, which is not valid UTF-8") from None


def _check(value: Any) -> bool:
    """Raise ProofError for values JSON cannot carry canonically; True if all keys are ASCII."""
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ProofError(f"integer {value} is outside the exact range of JSON numbers")
        return True
    if isinstance(value, dict):
        ascii_keys = True
        for key, item in value.items():
            if not isinstance(key, str):
                raise ProofError(f"object key {key!r} is not a string")
            ascii_keys = _check(item) and ascii_keys and key.isascii()
        return ascii_keys
    if isinstance(value, list | tuple):
        ascii_keys = True
        for item in value:
            ascii_keys = _check(item) and ascii_keys
        return ascii_keys
    if isinstance(value, float):
        raise ProofError("floating-point numbers are not allowed in ledger entries")
    raise ProofError(f"a {type(value).__name__} cannot be written as JSON")


def _encode(value: Any) -> str:
    """Slow path: objects sorted by the UTF-16 code units of their keys (RFC 8785 3.2.3)."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        items = (json.dumps(k, ensure_ascii=False) + ":" + _encode(value[k]) for k in keys)
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise ProofError(f"duplicate key {key!r} in JSON object")
        result[key] = item
    return result


def parse_json(data: bytes | str) -> Any:
    """Parse JSON strictly: duplicate keys and non-finite numbers are errors."""
    try:
        return json.loads(
            data,
            object_pairs_hook=_reject_duplicates,
            parse_constant=_no_constant,
        )
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ProofError):
            raise
        raise ProofError(f"not valid JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ProofError(f"{name} is not valid JSON")


# --- Merkle hashes (RFC 9162 section 2.1.1) ---------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    """MTH of one entry: SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """The root an inclusion path leads to (RFC 9162 section 2.1.3.2); ProofError if malformed."""
    if not 0 <= index < size:
        raise ProofError(f"entry index {index} is not inside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofError("inclusion proof has more hashes than the tree needs")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof has fewer hashes than the tree needs")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> None:
    """Raise ProofError unless leaf is entry index of the tree of this size and root."""
    if root_from_inclusion(index, size, leaf, path) != root:
        raise ProofError(
            f"inclusion proof for entry {index} does not lead to the root of size {size}"
        )


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, path: list[bytes]
) -> None:
    """Raise ProofError unless tree size2 extends tree size1 (RFC 9162 section 2.1.4.2)."""
    if not 0 <= size1 <= size2:
        raise ProofError(f"sizes {size1} and {size2}: the first must not exceed the second")
    if size1 == size2:
        if path:
            raise ProofError("consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise ProofError(f"two different roots for the same size {size1}")
        return
    if size1 == 0:
        if path:
            raise ProofError("consistency proof from the empty tree must be empty")
        return
    if not path:
        raise ProofError("consistency proof is empty")
    if size1 & (size1 - 1) == 0:  # a power of two: the old root is a node of the new tree
        path = [root1, *path]
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof has more hashes than the trees need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # sn must be used up exactly: a known bug class skips this check (NOTES.md).
    if sn != 0:
        raise ProofError("consistency proof has fewer hashes than the trees need")
    if fr != root1:
        raise ProofError(f"consistency proof does not lead to the root of size {size1}")
    if sr != root2:
        raise ProofError(f"consistency proof does not lead to the root of size {size2}")


# --- Signed notes and checkpoints (C2SP signed-note, tlog-checkpoint) -------------------


@dataclass(frozen=True)
class VerifierKey:
    """A note verifier key: `<name>+<hex key id>+<base64(0x01 || Ed25519 public key)>`."""

    name: str
    key_id: bytes
    public_key: bytes


@dataclass(frozen=True)
class Note:
    """A signed note split into its text and its (key name, key id, signature) lines."""

    text: str
    signatures: list[tuple[str, bytes, bytes]]


def key_id(name: str, public_key: bytes) -> bytes:
    """First 4 bytes of SHA-256(name || 0x0A || 0x01 || public key) (C2SP signed-note)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse a verifier key string; ProofError if malformed or its key id does not match."""
    parts = text.strip().split("+", 2)  # the base64 key may itself hold "+"
    if len(parts) != 3 or not parts[0]:
        raise ProofError("verifier key must look like NAME+KEYHASH+BASE64KEY")
    name, hex_id, b64 = parts
    try:
        kid = bytes.fromhex(hex_id)
        raw = base64.b64decode(b64, validate=True)
    except (ValueError, binascii.Error):
        raise ProofError("verifier key: bad hex key hash or base64 key") from None
    if len(kid) != 4 or len(raw) != 33 or raw[0] != ED25519:
        raise ProofError("verifier key is not an Ed25519 note key")
    if key_id(name, raw[1:]) != kid:
        raise ProofError("verifier key: key hash does not match the name and key")
    return VerifierKey(name=name, key_id=kid, public_key=raw[1:])


def parse_note(note: str) -> Note:
    """Split a signed note into text and signature lines (C2SP signed-note)."""
    text, sep, sigs = note.rpartition("\n\n")
    if not sep or not text or not note.endswith("\n"):
        raise ProofError("not a signed note: no blank line before the signatures")
    text += "\n"
    signatures = []
    for line in sigs[:-1].split("\n"):
        prefix = EM_DASH + " "
        fields = line[len(prefix) :].split(" ")
        if not line.startswith(prefix) or len(fields) != 2 or not fields[0]:
            raise ProofError(f"malformed signature line {line!r}")
        try:
            blob = base64.b64decode(fields[1], validate=True)
        except binascii.Error:
            raise ProofError(f"signature line for {fields[0]} is not base64") from None
        if len(blob) < 5:
            raise ProofError(f"signature line for {fields[0]} is too short")
        signatures.append((fields[0], blob[:4], blob[4:]))
    return Note(text=text, signatures=signatures)


def verify_note(note: str, key: VerifierKey) -> str:
    """Return the note's text if it carries a valid signature by key; else ProofError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    parsed = parse_note(note)
    public = Ed25519PublicKey.from_public_bytes(key.public_key)
    for name, kid, signature in parsed.signatures:
        if name != key.name or kid != key.key_id:
            continue  # signatures by other keys (witnesses) are ignored, as the spec says
        try:
            public.verify(signature, parsed.text.encode("utf-8"))
        except InvalidSignature:
            raise ProofError(f"signature by {key.name} does not verify") from None
        return parsed.text
    raise ProofError(f"no signature by {key.name} on the checkpoint")


@dataclass(frozen=True)
class CheckpointBody:
    """The three mandatory lines of a C2SP tlog-checkpoint, plus its extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...]


def parse_checkpoint_body(text: str) -> CheckpointBody:
    """Parse a checkpoint's note text (C2SP tlog-checkpoint); ProofError if malformed."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
        raise ProofError("checkpoint text must be three or more non-empty lines")
    origin, size_text, root_text = lines[:3]
    if not size_text.isascii() or not size_text.isdigit() or size_text != str(int(size_text)):
        raise ProofError(f"checkpoint tree size {size_text!r} is not a plain decimal")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise ProofError("checkpoint root hash is not base64") from None
    if len(root) != HASH_SIZE:
        raise ProofError("checkpoint root hash is not 32 bytes")
    return CheckpointBody(origin, int(size_text), root, tuple(lines[3:-1]))


def check_checkpoint(note: str, key: VerifierKey) -> CheckpointBody:
    """Verify a checkpoint's signature and origin; return its parsed body."""
    body = parse_checkpoint_body(verify_note(note, key))
    if body.origin != key.name:
        raise ProofError(f"checkpoint origin {body.origin!r} is not the key's name {key.name!r}")
    return body


# --- Command line ------------------------------------------------------------------------


def _hashes(proof: dict[str, Any]) -> list[bytes]:
    hashes = proof.get("hashes")
    if not isinstance(hashes, list):
        raise ProofError("proof has no list of hashes")
    try:
        decoded = [base64.b64decode(h, validate=True) for h in hashes]
    except (binascii.Error, TypeError):
        raise ProofError("proof hashes must be base64 strings") from None
    if any(len(h) != HASH_SIZE for h in decoded):
        raise ProofError("proof hashes must be 32 bytes each")
    return decoded


def _int(proof: dict[str, Any], name: str) -> int:
    value = proof.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProofError(f"proof field {name!r} must be a non-negative integer")
    return value


def check_inclusion_files(entry: bytes, proof: dict[str, Any], note: str, key: VerifierKey) -> str:
    """Verify entry + inclusion proof + checkpoint; return a one-line summary."""
    body = check_checkpoint(note, key)
    index, size = _int(proof, "index"), _int(proof, "tree_size")
    if size != body.size:
        raise ProofError(f"proof is for tree size {size}, the checkpoint for {body.size}")
    leaf = leaf_hash(canonical_json(parse_json(entry)))
    verify_inclusion(index, size, leaf, _hashes(proof), body.root)
    return f"OK: entry {index} is in the log {body.origin} at tree size {size}"


def check_consistency_files(
    proof: dict[str, Any], old_note: str, new_note: str, key: VerifierKey
) -> str:
    """Verify that the new checkpoint extends the old one; return a one-line summary."""
    old, new = check_checkpoint(old_note, key), check_checkpoint(new_note, key)
    size1, size2 = _int(proof, "from_size"), _int(proof, "to_size")
    if (size1, size2) != (old.size, new.size):
        raise ProofError(
            f"proof is from {size1} to {size2}, the checkpoints are {old.size} and {new.size}"
        )
    verify_consistency(size1, size2, old.root, new.root, _hashes(proof))
    return f"OK: the log {new.origin} at size {size2} extends its checkpoint at size {size1}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proof", type=Path, required=True, help="proof.json")
    parser.add_argument("--checkpoint", type=Path, required=True, help="signed checkpoint")
    parser.add_argument("--key", required=True, help="verifier key NAME+KEYHASH+BASE64KEY")
    parser.add_argument("--entry", type=Path, help="entry.json, for an inclusion proof")
    parser.add_argument("--old-checkpoint", type=Path, help="earlier checkpoint, for consistency")
    args = parser.parse_args(argv)
    try:
        key = parse_verifier_key(args.key)
        proof = parse_json(args.proof.read_bytes())
        if not isinstance(proof, dict):
            raise ProofError("proof file must hold a JSON object")
        note = args.checkpoint.read_text(encoding="utf-8")
        if args.entry is not None:
            message = check_inclusion_files(args.entry.read_bytes(), proof, note, key)
        elif args.old_checkpoint is not None:
            old_note = args.old_checkpoint.read_text(encoding="utf-8")
            message = check_consistency_files(proof, old_note, note, key)
        else:
            raise ProofError("give --entry (inclusion) or --old-checkpoint (consistency)")
    except (ProofError, OSError, UnicodeDecodeError) as exc:
        sys.stderr.write(f"NOT VERIFIED: {exc}\n")
        return 1
    sys.stdout.write(message + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
