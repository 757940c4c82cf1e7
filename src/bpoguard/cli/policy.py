"""`bpoguard policy ...`: read, validate, set and reset a contract's Cedar policy set (guard)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from bpoguard.cli._common import (
    DEFAULT_HOME,
    Db,
    Home,
    Json,
    command_group,
    emit_json,
    open_workspace,
    out,
)
from bpoguard.errors import InputError
from bpoguard.guard import policy_texts
from bpoguard.guard.policy import schema_text

policy_app = command_group(
    "policy", "Each contract's Cedar policy set: show it, validate a text, set it, reset it."
)

Contract = Annotated[str, typer.Option("--contract", help="The contract's id.")]
PolicyFile = Annotated[Path, typer.Argument(help="A Cedar policy text (UTF-8).")]


@policy_app.command("show")
def show(
    contract: Contract,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Print the policy text a contract is decided under, its own or the default. [admin, supervisor, analyst, auditor]"""
    with open_workspace(home, db) as ws, ws.store.engine.connect() as conn:
        found = policy_texts.policy_of(conn, contract)
    if json_out:
        emit_json(found.as_json())
        return
    source = f"own, set by {found.updated_by} at {found.updated_at:%Y-%m-%d %H:%M} UTC" if (
        found.own and found.updated_at
    ) else "the shipped default"  # fmt: skip
    # Written as is: a console would read "[...]" or ":name:" in Cedar text as markup.
    sys.stdout.write(f"// contract {contract}: {source}; sha256 {found.sha256}\n")
    sys.stdout.write(found.text if found.text.endswith("\n") else found.text + "\n")


@policy_app.command("validate")
def validate(
    path: PolicyFile,
    json_out: Json = False,
) -> None:
    """Check a policy text against the Cedar schema; one line naming the policy and line if not. [admin, auditor]"""
    text = _read(path)
    policies = policy_texts.check_text(text).policies
    if json_out:
        emit_json(
            {
                "valid": True,
                "sha256": policy_texts.digest(text),
                "policies": [p.id for p in policies],
            }
        )
        return
    out.print(f"{path}: valid, {len(policies)} policies")


@policy_app.command("set")
def set_(
    path: PolicyFile,
    contract: Contract,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Validate a policy text and make it the contract's; an unsound text is refused. [admin]"""
    text = _read(path)
    now = dt.datetime.now(dt.UTC)
    with open_workspace(home, db) as ws, ws.store.engine.begin() as conn:
        stored = policy_texts.set_policy(conn, contract, text, "cli", now)
    if json_out:
        document = stored.as_json()
        del document["text"]
        emit_json(document)
        return
    count = len(stored.as_json()["policies"])  # type: ignore[arg-type]
    out.print(
        f"Contract {contract} now decided by {path} ({count} policies, sha256 {stored.sha256})"
    )
    out.print("Running guards use it from their next reload.")


@policy_app.command("reset")
def reset(
    contract: Contract,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Return a contract to the shipped default policy set. [admin]"""
    with open_workspace(home, db) as ws, ws.store.engine.begin() as conn:
        removed = policy_texts.reset_policy(conn, contract)
    if json_out:
        emit_json({"contract_id": contract, "reset": removed})
        return
    out.print(
        f"Contract {contract} is decided by the default set again"
        if removed
        else f"Contract {contract} already used the default set"
    )


@policy_app.command("schema")
def schema() -> None:
    """Print the Cedar schema every policy text is validated against. [all roles]"""
    sys.stdout.write(schema_text())


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > policy_texts.MAX_TEXT * 4:
            raise InputError(f"{path} is too large for a policy text")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
