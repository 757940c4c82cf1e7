"""Errors the API answers with: a status, a code, one line, and a denial's reasons.

Every error is a JSON :class:`~bpoguard.web._models.Problem`. Messages are
built here from ids and names only: a request's values (a caller's answer, a
token) never appear in one, nor in the log.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class ApiError(Exception):
    """A request the API refuses, with the HTTP status to say so."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        reasons: tuple[str, ...] = (),
        ledger_index: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reasons = reasons
        self.ledger_index = ledger_index
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        """The JSON answer."""
        return problem(
            self.status, self.code, self.message, self.reasons, self.ledger_index, self.headers
        )


def problem(
    status: int,
    code: str,
    message: str,
    reasons: tuple[str, ...] | list[str] = (),
    ledger_index: int | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A Problem document as a response."""
    body: dict[str, Any] = {
        "error": code,
        "message": message,
        "reasons": list(reasons),
        "ledger_index": ledger_index,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def validation_message(errors: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """One line and the per-field problems of a validation error, without the input."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return "malformed JSON body", ["body: not valid JSON"]
    problems = []
    for e in errors:
        where = ".".join(str(part) for part in e.get("loc", ()) if part != "body") or "body"
        # pydantic's msg describes the rule ("Input should be ..."), not the value given.
        problems.append(f"{where}: {e.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(problems), problems
