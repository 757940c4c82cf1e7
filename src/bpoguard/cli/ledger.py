"""`bpoguard ledger ...`: the tamper-evident ledger's commands (record)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bpoguard.cli._common import (
    DEFAULT_HOME,
    Db,
    Home,
    Json,
    command_group,
    emit_json,
    err,
    open_workspace,
    out,
)
from bpoguard.errors import InputError, LedgerError
from bpoguard.ledger import Checkpoint, Ledger

ledger_app = command_group(
    "ledger", "The tamper-evident ledger: checkpoints, proofs, verification."
)

AlwaysJson = Annotated[
    bool, typer.Option("--json", help="Accepted for uniformity: the output is always JSON.")
]


@contextmanager
def _ledger(home: Path, db: str | None) -> Iterator[Ledger]:
    with open_workspace(home, db) as ws:
        yield Ledger.for_workspace(ws)


def _checkpoint_json(cp: Checkpoint) -> dict[str, Any]:
    return {
        "origin": cp.origin,
        "size": cp.size,
        "root": cp.root.hex(),
        "time": cp.time.isoformat(),
        "note": cp.note,
    }


@ledger_app.command()
def key(home: Home = DEFAULT_HOME, db: Db = None, json_out: Json = False) -> None:
    """Print the ledger's origin and public verifier key. [all roles]"""
    with _ledger(home, db) as ledger:
        signer = ledger.signer
        assert signer is not None  # for_workspace always loads the key
        document = {
            "origin": signer.name,
            "verifier_key": signer.verifier_key,
            "public_key": signer.public_key.hex(),
            "key_id": signer.key_id.hex(),
        }
    if json_out:
        emit_json(document)
        return
    out.print(f"origin        {document['origin']}", soft_wrap=True)
    out.print(f"verifier key  {document['verifier_key']}", soft_wrap=True)  # copied whole


@ledger_app.command()
def status(home: Home = DEFAULT_HOME, db: Db = None, json_out: Json = False) -> None:
    """Show how many entries the ledger holds and its latest checkpoint. [all roles]"""
    with _ledger(home, db) as ledger:
        size = ledger.size()
        latest = ledger.latest_checkpoint()
    document = {"size": size, "latest_checkpoint": _checkpoint_json(latest) if latest else None}
    if json_out:
        emit_json(document)
        return
    out.print(f"entries            {size:,}")
    if latest is None:
        out.print("latest checkpoint  none yet (bpoguard ledger checkpoint cuts one)")
    else:
        out.print(f"latest checkpoint  size {latest.size:,} at {latest.time.isoformat()}")


@ledger_app.command()
def checkpoint(home: Home = DEFAULT_HOME, db: Db = None, json_out: Json = False) -> None:
    """Cut a signed checkpoint now and print it (run it from cron for a schedule). [admin]"""
    with _ledger(home, db) as ledger:
        cp = ledger.checkpoint()
    if json_out:
        emit_json(_checkpoint_json(cp))
        return
    out.file.write(cp.note)  # the signed note, byte for byte, ready to publish


@ledger_app.command()
def verify(
    home: Home = DEFAULT_HOME,
    db: Db = None,
    known: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="A checkpoint kept outside the database; the log must still match it.",
        ),
    ] = None,
    json_out: Json = False,
) -> None:
    """Re-derive every hash and check every checkpoint; exit 1 at the first problem. [auditor]"""
    notes = [_read_text(path) for path in known or []]
    with _ledger(home, db) as ledger, _progress_bar() as progress:
        report = ledger.verify(progress=progress, known=notes)
    if json_out:
        emit_json(report.to_json())
        if not report.ok:
            raise typer.Exit(1)
        return
    if not report.ok:
        raise LedgerError(f"ledger does not verify: {report.problem}")
    out.print(
        f"OK: {report.entries_checked:,} entries and "
        f"{report.checkpoints_checked:,} checkpoint(s) verify"
    )


@ledger_app.command()
def prove(
    entry: Annotated[int, typer.Option("--entry", help="Index of the entry.", min=0)],
    size: Annotated[
        int | None,
        typer.Option("--size", help="Tree size of a checkpoint (default: the latest).", min=0),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write entry.json, proof.json, checkpoint.txt and key.txt here."
        ),
    ] = None,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: AlwaysJson = True,
) -> None:
    """Print the inclusion proof of an entry in a signed checkpoint, as JSON. [auditor, investigator]"""
    with _ledger(home, db) as ledger:
        cp = _covering_checkpoint(ledger, size, entry)
        proof = ledger.inclusion_proof(entry, cp.size)
        blob = ledger.entry_bytes(entry)
        evidence = ledger.inclusion_evidence(entry, cp)
        key_text = ledger.signer.verifier_key if ledger.signer else ""
    document: dict[str, Any] = {
        "entry": json.loads(blob),
        "proof": proof.to_json(),
        "checkpoint": cp.note,
        "verifier_key": key_text,
    }
    if out_dir is not None:
        document["files"] = _write_files(out_dir, evidence)
    emit_json(document)


@ledger_app.command()
def consistency(
    from_size: Annotated[
        int, typer.Option("--from", help="Size of the earlier checkpoint.", min=0)
    ],
    to_size: Annotated[
        int | None,
        typer.Option("--to", help="Size of the later checkpoint (default: the latest).", min=0),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write proof.json, old-checkpoint.txt, checkpoint.txt, key.txt here."
        ),
    ] = None,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: AlwaysJson = True,
) -> None:
    """Print the proof that a later checkpoint extends an earlier one, as JSON. [auditor]"""
    with _ledger(home, db) as ledger:
        old = ledger.checkpoint_at(from_size)
        new = _latest(ledger) if to_size is None else ledger.checkpoint_at(to_size)
        proof = ledger.consistency_proof(old.size, new.size)
        key_text = ledger.signer.verifier_key if ledger.signer else ""
    document: dict[str, Any] = {
        "proof": proof.to_json(),
        "old_checkpoint": old.note,
        "checkpoint": new.note,
        "verifier_key": key_text,
    }
    if out_dir is not None:
        document["files"] = _write_files(
            out_dir,
            {
                "proof.json": _json_bytes(proof.to_json()),
                "old-checkpoint.txt": old.note.encode(),
                "checkpoint.txt": new.note.encode(),
                "key.txt": (key_text + "\n").encode(),
            },
        )
    emit_json(document)


def _latest(ledger: Ledger) -> Checkpoint:
    latest = ledger.latest_checkpoint()
    if latest is None:
        raise LedgerError(
            "the ledger has no checkpoint yet; cut one with bpoguard ledger checkpoint"
        )
    return latest


def _covering_checkpoint(ledger: Ledger, size: int | None, entry: int) -> Checkpoint:
    cp = _latest(ledger) if size is None else ledger.checkpoint_at(size)
    if entry >= cp.size:
        raise LedgerError(
            f"entry {entry} is not in the checkpoint at size {cp.size}; "
            "cut a newer one with bpoguard ledger checkpoint"
        )
    return cp


def _json_bytes(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def _write_files(folder: Path, files: dict[str, bytes]) -> list[str]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
    except OSError as exc:
        raise InputError(f"{folder}: cannot write the proof files ({exc.strerror})") from None
    return [str(folder / name) for name in files]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise InputError(f"{path}: cannot read this checkpoint file") from None


@contextmanager
def _progress_bar() -> Iterator[Any]:
    """A progress bar on stderr (never stdout, which may carry JSON), when it is a terminal."""
    if not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("verify", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
