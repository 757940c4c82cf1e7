"""The agent desktop: one server-rendered page showing the open call's customer as a slice.

The agent signs in with their token and the desk's device credential, which
are kept in HttpOnly, SameSite=Strict cookies. Every slice, check, reveal and
search on the page is the same guard decision the API makes (and is recorded the
same way); the page only renders it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from bpoguard.fields import CATALOGUE, FieldType
from bpoguard.guard.service import SEARCHABLE
from bpoguard.web import _decisions as decide
from bpoguard.web import credentials
from bpoguard.web._auth import DEVICE_COOKIE, TOKEN_COOKIE, Caller, caller, source_of
from bpoguard.web._errors import ApiError
from bpoguard.web._models import InteractionOut
from bpoguard.web._runtime import Runtime
from bpoguard.web.credentials import AuthError, TokenKind

_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))

_LABELS = {f: spec.label for f, spec in CATALOGUE.items()}
_SEARCHABLE = sorted(SEARCHABLE, key=lambda f: f.value)


def mount_static(app: FastAPI) -> None:
    """Serve the desktop's own script and style sheet (nothing comes from elsewhere)."""
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")


def desktop_router(runtime: Runtime) -> APIRouter:
    """The desktop's routes (not in the OpenAPI document: they answer HTML)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=RedirectResponse)
    async def root() -> RedirectResponse:
        return RedirectResponse("/desktop", status_code=303)

    @router.get("/desktop", response_class=HTMLResponse)
    async def page(request: Request) -> Response:
        who = _signed_in(runtime, request)
        if who is None:
            return _render(request, status=401 if _has_cookie(request) else 200)
        return await _desk(runtime, request, who)

    @router.post("/desktop/login", response_class=HTMLResponse)
    async def login(
        request: Request,
        token: Annotated[str, Form(max_length=200)],
        device: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        _same_origin(request)
        source_of(runtime, request)  # a malformed forwarding header is refused here too
        try:
            with runtime.store.engine.connect() as conn:
                principal = credentials.authenticate(conn, token, runtime.now())
                if device:
                    credentials.device_of(conn, device)
        except AuthError as err:
            return _render(request, status=401, error=f"Not signed in: {err}")
        if principal.kind is not TokenKind.STAFF:
            return _render(request, status=403, error="Not signed in: that is not a staff token")
        response = RedirectResponse("/desktop", status_code=303)
        secure = request.url.scheme == "https"
        for name, value in ((TOKEN_COOKIE, token), (DEVICE_COOKIE, device)):
            if value:
                response.set_cookie(
                    name, value.strip(), httponly=True, samesite="strict", secure=secure,
                    path="/desktop",
                )  # fmt: skip
        return response

    @router.post("/desktop/logout")
    async def logout(request: Request) -> Response:
        _same_origin(request)
        response = RedirectResponse("/desktop", status_code=303)
        response.delete_cookie(TOKEN_COOKIE, path="/desktop")
        return response

    @router.post("/desktop/verify", response_class=HTMLResponse)
    async def verify(
        request: Request,
        interaction_id: Annotated[int, Form(gt=0, lt=2**63)],
        customer_id: Annotated[int, Form(gt=0, lt=2**63)],
        field: Annotated[FieldType, Form()],
        answer: Annotated[str, Form(min_length=1, max_length=200)],
    ) -> Response:
        _same_origin(request)
        who = _signed_in(runtime, request)
        if who is None:
            return _render(request, status=401, error="Signed out: sign in again")
        try:
            result = await decide.verify(runtime, who, customer_id, interaction_id, field, answer)
        except ApiError as err:
            return await _desk(runtime, request, who, denial=err)
        outcome = "match" if result.match else "no match"
        note = (
            f"{_LABELS.get(field, field.value)}: {outcome} ({result.attempts_left} attempts left)"
        )
        return await _desk(runtime, request, who, verified=note, matched=bool(result.match))

    @router.post("/desktop/reveal", response_class=HTMLResponse)
    async def reveal(
        request: Request,
        interaction_id: Annotated[int, Form(gt=0, lt=2**63)],
        customer_id: Annotated[int, Form(gt=0, lt=2**63)],
        field: Annotated[FieldType, Form()],
        reason: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        _same_origin(request)
        who = _signed_in(runtime, request)
        if who is None:
            return _render(request, status=401, error="Signed out: sign in again")
        if len(reason.strip()) < 3:
            return await _desk(runtime, request, who, error="Give a reason to reveal a field")
        try:
            result = await decide.reveal(runtime, who, customer_id, interaction_id, field, reason)
        except ApiError as err:
            return await _desk(runtime, request, who, denial=err)
        revealed = (_LABELS.get(field, field.value), result.value or "")
        return await _desk(runtime, request, who, revealed=revealed)

    @router.post("/desktop/search", response_class=HTMLResponse)
    async def search(
        request: Request,
        interaction_id: Annotated[int, Form(gt=0, lt=2**63)],
        field: Annotated[FieldType, Form()],
        value: Annotated[str, Form(min_length=1, max_length=200)],
    ) -> Response:
        _same_origin(request)
        who = _signed_in(runtime, request)
        if who is None:
            return _render(request, status=401, error="Signed out: sign in again")
        try:
            result = await decide.search(runtime, who, interaction_id, field, value, None, None)
        except ApiError as err:
            return await _desk(runtime, request, who, denial=err)
        # The value searched for is not echoed back: it stays in the agent's own field.
        rows = [
            (row.customer_id, [(_LABELS.get(f, f.value), v) for f, v in row.values.items()])
            for row in result.rows
        ]
        found = {"rows": rows, "truncated": result.truncated, "by": _LABELS.get(field, field.value)}
        return await _desk(runtime, request, who, found=found)

    return router


async def _desk(
    runtime: Runtime,
    request: Request,
    who: Caller,
    denial: ApiError | None = None,
    **shown: Any,
) -> Response:
    """The page for a signed-in agent: their call, its customer's slice, and any result."""
    call = decide.current_interaction(runtime, who.staff_id)
    context: dict[str, Any] = {"staff_id": who.staff_id, "device_id": who.device_id, **shown}
    if call is None:
        return _render(request, **context)
    context["call"] = call
    context["revealable"] = [(f.value, _LABELS.get(f, f.value)) for f in call.revealable]
    context["verifiable"] = [(f.value, _LABELS.get(f, f.value)) for f in _verifiable(call)]
    context["searchable"] = [(f.value, _LABELS.get(f, f.value)) for f in _SEARCHABLE]
    try:
        result = await decide.view(runtime, who, call.customer_id, call.id, None)
        context["slice"] = [(_LABELS.get(f, f.value), v) for f, v in result.values.items()]
    except ApiError as err:
        denial = denial or err
    if denial is not None:
        context["denial"] = list(denial.reasons) or [denial.message]
    status = 403 if denial is not None else 200
    return _render(request, status=status, **context)


def _verifiable(call: InteractionOut) -> list[FieldType]:
    # What a caller can be asked to confirm: their date of birth, postcode, card's last four.
    wanted = (
        FieldType.DATE_OF_BIRTH,
        FieldType.ADDRESS,
        FieldType.CARD_NUMBER,
        FieldType.PHONE,
        FieldType.EMAIL,
    )
    return [f for f in wanted if f in call.fields]


def _render(request: Request, status: int = 200, **context: Any) -> Response:
    return templates.TemplateResponse(request, "desktop.html", context, status_code=status)


def _signed_in(runtime: Runtime, request: Request) -> Caller | None:
    if not _has_cookie(request):
        return None
    try:
        return caller(runtime, request, kind=TokenKind.STAFF, cookies=True)
    except ApiError:
        return None


def _has_cookie(request: Request) -> bool:
    return bool(request.cookies.get(TOKEN_COOKIE))


def _same_origin(request: Request) -> None:
    """Refuse a form posted from another site (SameSite cookies are the first line)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.rstrip("/") != _own_origin(request):
        raise ApiError(403, "cross_origin", "form posted from another origin")


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"
