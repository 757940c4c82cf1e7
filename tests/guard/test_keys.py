"""Key-encryption keys: files and text, wrapping bound to its context, clear errors."""

from __future__ import annotations

import base64
import os
import secrets
import threading
from pathlib import Path

import pytest

from bpoguard import workspace
from bpoguard.guard.keys import (
    KeyfileProvider,
    VaultKeyError,
    create_next_kek,
    fingerprint,
    new_key,
    seal,
    unseal,
)

CONTEXT = b"bpoguard dek|org-a|1|data"


def _b64() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "kek.key").write_text(_b64() + "\n")
    return folder


def test_a_new_workspaces_kek_file_is_read(home: Path) -> None:
    workspace.init(home)

    provider = KeyfileProvider.from_dir(home / "keys")

    assert [(f.version, f.path.name) for f in provider.files] == [(1, "kek.key")]
    assert provider.key_id.startswith("kek-") and len(provider.key_id) == 20


def test_wrap_then_unwrap_gives_the_key_back(keys_dir: Path) -> None:
    provider = KeyfileProvider.from_dir(keys_dir)
    key = new_key()

    blob = provider.wrap(key, CONTEXT)

    assert key not in blob
    assert provider.key_id.encode() in blob  # the blob names its KEK
    assert provider.unwrap(blob, CONTEXT) == key


def test_two_wraps_of_one_key_differ(keys_dir: Path) -> None:
    provider = KeyfileProvider.from_dir(keys_dir)
    key = new_key()

    assert provider.wrap(key, CONTEXT) != provider.wrap(key, CONTEXT)  # random nonces


def test_unwrap_with_another_context_fails(keys_dir: Path) -> None:
    provider = KeyfileProvider.from_dir(keys_dir)
    blob = provider.wrap(new_key(), CONTEXT)

    with pytest.raises(VaultKeyError, match="copied from another client or purpose"):
        provider.unwrap(blob, b"bpoguard dek|org-b|1|data")


@pytest.mark.parametrize("cut", [1, 20, 40])
def test_a_damaged_wrapped_key_is_refused(keys_dir: Path, cut: int) -> None:
    provider = KeyfileProvider.from_dir(keys_dir)
    blob = bytearray(provider.wrap(new_key(), CONTEXT))
    blob[-cut] ^= 0x01

    with pytest.raises(VaultKeyError, match="does not unwrap"):
        provider.unwrap(bytes(blob), CONTEXT)


@pytest.mark.parametrize("blob", [b"", b"\x02\x04abcd", b"\x01\xff"])
def test_a_blob_from_elsewhere_is_called_malformed(keys_dir: Path, blob: bytes) -> None:
    with pytest.raises(VaultKeyError, match="malformed"):
        KeyfileProvider.from_dir(keys_dir).unwrap(blob, CONTEXT)


def test_a_blob_wrapped_by_an_unknown_kek_names_it(keys_dir: Path) -> None:
    other = KeyfileProvider.from_base64(_b64())
    blob = other.wrap(new_key(), CONTEXT)

    with pytest.raises(VaultKeyError, match=f"wrapped by key-encryption key {other.key_id}"):
        KeyfileProvider.from_dir(keys_dir).unwrap(blob, CONTEXT)


def test_missing_keys_folder_says_how_to_recover(tmp_path: Path) -> None:
    with pytest.raises(VaultKeyError, match=r"no key-encryption key in .* restore it"):
        KeyfileProvider.from_dir(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "content, message",
    [
        (base64.b64encode(b"short").decode(), "is 5 bytes, needs 32"),
        ("not base64 at all!", "not a base64 key-encryption key"),
        ("", "is 0 bytes"),
    ],
)
def test_a_bad_kek_file_is_refused_without_quoting_it(
    keys_dir: Path, content: str, message: str
) -> None:
    (keys_dir / "kek.key").write_text(content)

    with pytest.raises(VaultKeyError, match=message) as info:
        KeyfileProvider.from_dir(keys_dir)
    assert str(keys_dir / "kek.key") in str(info.value)
    if content:
        assert content not in str(info.value)


def test_a_binary_kek_file_is_refused(keys_dir: Path) -> None:
    (keys_dir / "kek.key").write_bytes(secrets.token_bytes(32) + b"\xff")

    with pytest.raises(VaultKeyError, match="not a base64"):
        KeyfileProvider.from_dir(keys_dir)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_kek_file_is_reported(keys_dir: Path) -> None:
    (keys_dir / "kek.key").chmod(0)

    with pytest.raises(VaultKeyError, match="cannot read"):
        KeyfileProvider.from_dir(keys_dir)


def test_kek_text_is_checked_without_being_quoted() -> None:
    with pytest.raises(VaultKeyError, match="BPOGUARD_KEK: key-encryption key is 16 bytes"):
        KeyfileProvider.from_base64(base64.b64encode(b"k" * 16).decode())
    with pytest.raises(VaultKeyError, match="BPOGUARD_KEK: empty"):
        KeyfileProvider.from_base64(" , ")


def test_kek_text_may_list_several_the_current_first() -> None:
    old, new = _b64(), _b64()
    blob = KeyfileProvider.from_base64(old).wrap(b"k" * 32, CONTEXT)

    both = KeyfileProvider.from_base64(f"{new}, {old}")

    assert both.key_id == fingerprint(base64.b64decode(new))
    assert both.unwrap(blob, CONTEXT) == b"k" * 32


def test_text_and_file_holding_one_kek_are_interchangeable(keys_dir: Path) -> None:
    from_file = KeyfileProvider.from_dir(keys_dir)
    from_text = KeyfileProvider.from_base64((keys_dir / "kek.key").read_text())

    assert from_text.key_id == from_file.key_id
    assert from_text.unwrap(from_file.wrap(b"k" * 32, CONTEXT), CONTEXT) == b"k" * 32


def test_the_next_kek_is_a_new_private_file_and_becomes_current(keys_dir: Path) -> None:
    first = KeyfileProvider.from_dir(keys_dir)
    blob = first.wrap(b"k" * 32, CONTEXT)

    created = create_next_kek(keys_dir)

    assert created.path == keys_dir / "kek-2.key" and created.version == 2
    assert created.path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in keys_dir.iterdir()) == ["kek-2.key", "kek.key"]  # no temp left
    both = KeyfileProvider.from_dir(keys_dir)
    assert both.key_id == created.key_id != first.key_id
    assert both.unwrap(blob, CONTEXT) == b"k" * 32


def test_versions_are_ordered_by_number_not_by_name(keys_dir: Path) -> None:
    for _ in range(10):
        create_next_kek(keys_dir)

    provider = KeyfileProvider.from_dir(keys_dir)

    assert [f.version for f in provider.files] == list(range(1, 12))
    assert provider.files[-1].path.name == "kek-11.key"
    assert provider.key_id == provider.files[-1].key_id


def test_a_provider_finds_a_kek_written_after_it_started(keys_dir: Path) -> None:
    early = KeyfileProvider.from_dir(keys_dir)
    create_next_kek(keys_dir)
    blob = KeyfileProvider.from_dir(keys_dir).wrap(b"k" * 32, CONTEXT)

    assert early.unwrap(blob, CONTEXT) == b"k" * 32
    assert early.key_id == KeyfileProvider.from_dir(keys_dir).key_id


def test_concurrent_rotations_never_overwrite_a_kek(keys_dir: Path) -> None:
    made: list[Path] = []
    errors: list[VaultKeyError] = []

    def make() -> None:
        try:
            made.append(create_next_kek(keys_dir).path)
        except VaultKeyError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(made)) == len(made)
    assert len(made) + len(errors) == 8
    assert all("run the rotation again" in str(e) for e in errors)


def test_seal_binds_associated_data() -> None:
    key = new_key()
    blob = seal(key, b"value", b"1|phone|1")

    assert unseal(key, blob, b"1|phone|1") == b"value"
    from cryptography.exceptions import InvalidTag

    with pytest.raises(InvalidTag):
        unseal(key, blob, b"2|phone|1")
    with pytest.raises(InvalidTag):
        unseal(key, blob[:10], b"1|phone|1")


def test_fingerprint_is_stable_and_reveals_nothing_of_the_key() -> None:
    key = new_key()

    assert fingerprint(key) == fingerprint(key)
    assert key.hex()[:16] not in fingerprint(key)
