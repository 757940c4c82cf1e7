"""The FastAPI app: the REST API under /api/v1 and the agent desktop under /desktop.

``create_app(WebSettings(home=...))`` builds an app over a workspace. Every
decision is made by the real :class:`~bpoguard.guard.service.Guard` over the
workspace's store, vault and ledger; this module only translates HTTP into
guard calls and answers into HTTP.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations,
# which name dependencies built inside create_app, at definition time.
import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from bpoguard import __version__
from bpoguard.access import Verb
from bpoguard.errors import BpoguardError
from bpoguard.guard.service import BULK
from bpoguard.web import _decisions as decide
from bpoguard.web._auth import Caller, caller
from bpoguard.web._errors import ApiError, problem, validation_message
from bpoguard.web._exports import exports_router
from bpoguard.web._limits import GuardRails
from bpoguard.web._models import (
    Health,
    InteractionIn,
    InteractionOut,
    Problem,
    RevealIn,
    RevealOut,
    SearchIn,
    SearchOut,
    SearchRow,
    SliceOut,
    VerifyIn,
    VerifyOut,
    ViewIn,
)
from bpoguard.web._runtime import Runtime
from bpoguard.web._settings import WebSettings
from bpoguard.web.credentials import TokenKind
from bpoguard.web.desktop import desktop_router, mount_static

log = logging.getLogger("bpoguard.web")

API = "/api/v1"
CustomerId = Annotated[int, Path(gt=0, lt=2**63, description="The customer's id.")]
InteractionId = Annotated[int, Path(gt=0, lt=2**63, description="The interaction's id.")]

_DECISION_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No token, or an unknown, expired or revoked one."},
    403: {"model": Problem, "description": "Denied by the guard: the reasons say why."},
    413: {"model": Problem, "description": "Body over the size cap."},
    422: {"model": Problem, "description": "Malformed JSON, unknown field or bad value."},
}
_STAFF_ROLES = (
    "Roles: agent, supervisor (a staff token; the contract's Cedar policies decide, "
    "on the caller's role, site, shift, device, address and open interaction)."
)
_SYSTEM_ROLES = "Roles: the telephony/CRM system only (a system token); agents may not."


def create_app(settings: WebSettings) -> FastAPI:
    """The app over one workspace; opens its store, vault and ledger now."""
    runtime = Runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_publish_lake(runtime))
        try:
            yield
        finally:
            task.cancel()
            runtime.close()

    app = FastAPI(
        title="bpoguard",
        version=__version__,
        description=(
            "Narrow slices of customer records for call-centre agents, decided by the guard "
            "and recorded in the tamper-evident ledger. Authenticate with "
            "`Authorization: Bearer <token>` (bpoguard token create) and present the "
            "device's credential in `X-Device-Credential` (bpoguard device enrol)."
        ),
        lifespan=lifespan,
        # Swagger UI and ReDoc load their scripts from a CDN: nothing is fetched at run
        # time, so only the document itself is served (/openapi.json).
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.include_router(_api(runtime), prefix=API)
    app.include_router(exports_router(runtime), prefix=API)
    app.include_router(desktop_router(runtime))
    mount_static(app)
    _handlers(app, runtime)
    app.add_middleware(
        GuardRails,
        max_body=settings.max_body,
        larger={f"{API}/exports/approvals": settings.max_approval_body},
    )
    return app


async def _publish_lake(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(runtime.settings.lake_commit_seconds)
        try:
            runtime.commit_lake()
        except OSError as err:  # a full disk must not stop the guard deciding
            log.error("could not publish decisions to the event lake: %s", err.strerror)


def _api(runtime: Runtime) -> APIRouter:
    router = APIRouter()

    def staff(verb: Verb | None) -> Any:
        # async: a plain def would run in a thread pool, one thread hop per request.
        async def dependency(request: Request) -> Caller:
            _, customer_id = _decision_of(request)
            found = caller(
                runtime, request, kind=TokenKind.STAFF, verb=verb, customer_id=customer_id
            )
            request.state.caller = found
            return found

        return Depends(dependency)

    async def system(request: Request) -> Caller:
        return caller(runtime, request, kind=TokenKind.SYSTEM)

    System = Annotated[Caller, Depends(system)]
    revision = runtime.store.head()  # read once: it parses the migration scripts

    @router.get("/health", response_model=Health, tags=["service"])
    async def health() -> Health:
        """The server is up. Roles: anyone (no token)."""
        return Health(status="ok", schema_revision=revision)

    @router.post(
        "/interactions",
        status_code=201,
        response_model=InteractionOut,
        tags=["interactions"],
        responses={**_DECISION_ERRORS, 404: {"model": Problem}, 409: {"model": Problem}},
        description=f"Open an interaction (a call or ticket) for an agent. {_SYSTEM_ROLES}",
    )
    async def open_interaction(body: InteractionIn, _: System) -> InteractionOut:
        return decide.open_interaction(runtime, body)

    @router.post(
        "/interactions/{interaction_id}/close",
        response_model=InteractionOut,
        tags=["interactions"],
        responses={**_DECISION_ERRORS, 404: {"model": Problem}, 409: {"model": Problem}},
        description=f"Close an interaction; reads in it are refused from then on. {_SYSTEM_ROLES}",
    )
    async def close_interaction(interaction_id: InteractionId, _: System) -> InteractionOut:
        return decide.close_interaction(runtime, interaction_id)

    @router.get(
        "/interactions/current",
        response_model=InteractionOut,
        tags=["interactions"],
        responses={**_DECISION_ERRORS, 404: {"model": Problem}},
        description=(
            "The caller's own newest open interaction (ids and purpose, no customer values). "
            "Roles: agent, supervisor (a staff token)."
        ),
    )
    async def current(who: Annotated[Caller, staff(None)]) -> InteractionOut:
        found = decide.current_interaction(runtime, who.staff_id)
        if found is None:
            raise ApiError(404, "not_found", f"{who.staff_id} has no open interaction")
        return found

    @router.post(
        "/customers/{customer_id}/view",
        response_model=SliceOut,
        tags=["customers"],
        responses=_DECISION_ERRORS,
        description=f"The masked slice of a customer inside an open interaction. {_STAFF_ROLES}",
    )
    async def view(
        customer_id: CustomerId, body: ViewIn, who: Annotated[Caller, staff(Verb.VIEW)]
    ) -> Response:
        result = await decide.view(runtime, who, customer_id, body.interaction_id, body.fields)
        return _json(
            SliceOut(
                allowed=True,
                reasons=list(result.decision.reasons),
                ledger_index=result.decision.ledger_index,
                customer_id=customer_id,
                interaction_id=body.interaction_id,
                values=result.values,
            )
        )

    @router.post(
        "/customers/{customer_id}/reveal",
        response_model=RevealOut,
        tags=["customers"],
        responses=_DECISION_ERRORS,
        description=(
            "One field in the clear, if the interaction's purpose allows revealing it; a "
            f"reason is required and recorded. {_STAFF_ROLES}"
        ),
    )
    async def reveal(
        customer_id: CustomerId, body: RevealIn, who: Annotated[Caller, staff(Verb.REVEAL)]
    ) -> RevealOut:
        result = await decide.reveal(
            runtime, who, customer_id, body.interaction_id, body.field, body.reason
        )
        return RevealOut(
            allowed=True,
            reasons=list(result.decision.reasons),
            ledger_index=result.decision.ledger_index,
            customer_id=customer_id,
            interaction_id=body.interaction_id,
            field=body.field,
            value=result.value,
        )

    @router.post(
        "/customers/{customer_id}/verify",
        response_model=VerifyOut,
        tags=["customers"],
        responses=_DECISION_ERRORS,
        description=(
            "Check what the caller says against the record: match or no match, and the "
            "attempts left in the interaction; the stored value is never returned. "
            f"{_STAFF_ROLES}"
        ),
    )
    async def verify(
        customer_id: CustomerId, body: VerifyIn, who: Annotated[Caller, staff(Verb.VERIFY)]
    ) -> VerifyOut:
        result = await decide.verify(
            runtime, who, customer_id, body.interaction_id, body.field, body.answer
        )
        return VerifyOut(
            allowed=True,
            reasons=list(result.decision.reasons),
            ledger_index=result.decision.ledger_index,
            customer_id=customer_id,
            interaction_id=body.interaction_id,
            field=body.field,
            match=bool(result.match),
            attempts_left=result.attempts_left,
        )

    @router.post(
        "/search",
        response_model=SearchOut,
        tags=["customers"],
        responses=_DECISION_ERRORS,
        description=(
            "Find a customer of the interaction's client by an exact phone number, account "
            "number, card number or e-mail (through the vault's blind index): masked rows, "
            "each counted against the caller's budget. The value searched for is never "
            f"logged or recorded. {_STAFF_ROLES}"
        ),
    )
    async def search(body: SearchIn, who: Annotated[Caller, staff(Verb.SEARCH)]) -> SearchOut:
        result = await decide.search(
            runtime, who, body.interaction_id, body.field, body.value, body.client_id, body.fields
        )
        return SearchOut(
            allowed=True,
            reasons=list(result.decision.reasons),
            ledger_index=result.decision.ledger_index,
            rows=[SearchRow(customer_id=r.customer_id, values=r.values) for r in result.rows],
            truncated=result.truncated,
        )

    return router


def _json(model: BaseModel) -> Response:
    """The model as JSON, serialised once by pydantic (the hot path skips FastAPI's
    second validation of a response it has just built from typed values)."""
    return Response(model.model_dump_json(), media_type="application/json")


def _handlers(app: FastAPI, runtime: Runtime) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, problems = validation_message(list(exc.errors()))
        try:
            index = _record_invalid(runtime, request, message)
        except ApiError as err:  # not authenticated either: that answer comes first
            return err.response()
        return problem(422, "invalid_request", message, problems, index)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return problem(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(BpoguardError)
    async def user_error(_: Request, exc: BpoguardError) -> JSONResponse:
        return problem(422, "invalid_request", str(exc))

    @app.exception_handler(OperationalError)
    async def store_busy(_: Request, exc: OperationalError) -> JSONResponse:
        # A locked SQLite file past its busy timeout, or a lost PostgreSQL connection:
        # the transaction rolled back whole, so the client may simply try again.
        log.error("database unavailable (%s) while handling a request", type(exc.orig).__name__)
        return problem(
            503, "store_unavailable", "the database is busy or unreachable; try again",
            headers={"Retry-After": "1"},
        )  # fmt: skip

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        # The traceback may quote values; the log gets the exception's type only.
        log.error("internal error (%s) while handling a request", type(exc).__name__)
        return problem(500, "internal_error", "internal error; the request was not completed")


_SEARCH_PATH = f"{API}/search"
_DECISION_PATH = re.compile(rf"{API}/customers/(\d{{1,19}})/(view|reveal|verify)")


def _decision_of(request: Request) -> tuple[Verb | None, int | None]:
    """Which decision a request asks for, read from its path (the body may not parse)."""
    path = request.scope["path"]  # request.url would build a whole URL object first
    if path == _SEARCH_PATH:
        return Verb.SEARCH, BULK  # a search is a decision over no single customer
    match = _DECISION_PATH.fullmatch(path)
    if match is None:
        return None, None
    return Verb(match.group(2)), int(match.group(1))


def _record_invalid(runtime: Runtime, request: Request, message: str) -> int | None:
    """A malformed request for a decision is a refused decision: put it in the ledger.

    FastAPI rejects unparsable JSON before any dependency runs, so the caller
    is authenticated here when the dependency did not get to it.
    """
    verb, customer_id = _decision_of(request)
    if verb is None or customer_id is None:
        return None
    who: Caller | None = getattr(request.state, "caller", None)
    if who is None:
        who = caller(runtime, request, kind=TokenKind.STAFF, verb=verb, customer_id=customer_id)
    log.info("refused %s of customer %s by %s: %s", verb.value, customer_id, who.staff_id, message)
    with runtime.sink.transaction(runtime.store.engine) as conn:
        return runtime.refuse(
            conn,
            staff_id=who.staff_id,
            verb=verb,
            customer_id=customer_id,
            source_ip=who.source_ip,
            device_id=who.device_id,
            reason=f"denied: {message}",
        )
