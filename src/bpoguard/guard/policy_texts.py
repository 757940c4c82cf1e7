"""Each contract's own Cedar policy text, stored in the database.

A text is validated (parse, schema, @id and @reason rules) before it is
stored, so the table only ever holds texts that loaded when they were set.
A contract without a row uses the shipped default set. The guard reads every
stored text when it loads its directory (:meth:`Guard.refresh`).

Owns the table ``guard_policies``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from bpoguard.errors import InputError
from bpoguard.guard._tables import guard_policies
from bpoguard.guard.policy import PolicySet, default_policy_text
from bpoguard.store import models as m

MAX_TEXT = 256 * 1024  # characters: a contract's rules, not a program


@dataclass(frozen=True)
class ContractPolicy:
    """The policy text a contract is decided under, and where it came from."""

    contract_id: str
    text: str
    own: bool  # False: the shipped default
    sha256: str
    updated_at: dt.datetime | None = None
    updated_by: str | None = None

    def as_json(self) -> dict[str, object]:
        """The text, its digest, provenance and policies as one JSON document."""
        policies = PolicySet.from_text(self.text).policies
        return {
            "contract_id": self.contract_id,
            "source": "contract" if self.own else "default",
            "sha256": self.sha256,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
            "policies": [
                {"id": p.id, "effect": p.effect, "reason": p.reason, "line": p.line}
                for p in policies
            ],
            "text": self.text,
        }


def digest(text: str) -> str:
    """SHA-256 of a policy text, hex: what an auditor compares with their copy."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_text(text: str) -> PolicySet:
    """Validate a policy text; PolicyError names the policy and line of the first problem."""
    if len(text) > MAX_TEXT:
        raise InputError(f"policy text is longer than {MAX_TEXT} characters")
    return PolicySet.from_text(text)


def policy_of(conn: Connection, contract_id: str) -> ContractPolicy:
    """The text a contract is decided under: its own, or the default."""
    _require_contract(conn, contract_id)
    row = conn.execute(
        select(guard_policies).where(guard_policies.c.contract_id == contract_id)
    ).first()
    if row is None:
        text = default_policy_text()
        return ContractPolicy(contract_id, text, False, digest(text))
    return ContractPolicy(
        contract_id, row.text, True, row.sha256, _utc(row.updated_at), row.updated_by
    )


def set_policy(
    conn: Connection, contract_id: str, text: str, by: str, at: dt.datetime
) -> ContractPolicy:
    """Validate a text and make it the contract's; raises PolicyError and stores nothing if unsound."""
    _require_contract(conn, contract_id)
    check_text(text)
    row = {"text": text, "sha256": digest(text), "updated_at": at, "updated_by": by}
    changed = conn.execute(
        update(guard_policies).where(guard_policies.c.contract_id == contract_id).values(**row)
    )
    if not changed.rowcount:
        conn.execute(insert(guard_policies).values(contract_id=contract_id, **row))
    return policy_of(conn, contract_id)


def reset_policy(conn: Connection, contract_id: str) -> bool:
    """Return a contract to the default set; False if it had no text of its own."""
    _require_contract(conn, contract_id)
    result = conn.execute(delete(guard_policies).where(guard_policies.c.contract_id == contract_id))
    return bool(result.rowcount)


def stored_texts(conn: Connection) -> dict[str, str]:
    """Every contract's own text, by contract id."""
    rows = conn.execute(select(guard_policies.c.contract_id, guard_policies.c.text))
    return {r.contract_id: r.text for r in rows}


def _require_contract(conn: Connection, contract_id: str) -> None:
    found = conn.scalar(select(m.Contract.id).where(m.Contract.id == contract_id))
    if found is None:
        raise InputError(f"no contract {contract_id}")


def _utc(at: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back naive; they were stored in UTC.
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


__all__ = [
    "MAX_TEXT",
    "ContractPolicy",
    "check_text",
    "digest",
    "policy_of",
    "reset_policy",
    "set_policy",
    "stored_texts",
]
