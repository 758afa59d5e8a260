"""Every error the API returns is an RFC 9457 problem document (``application/problem+json``).

The domain raises plain-worded errors (``domain/errors.py``); this module alone maps them to HTTP
status codes (``STATUS``). Details name fields and ids, never values: a request body may hold PHI,
so a validation problem lists where and what kind of error, never the input, and unexpected
failures are logged by their type only.
"""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.importing_schemas import ImportReportOut
from domain import errors as domain
from domain.imports.report import ImportRejected
from domain.json_depth import TooDeeplyNested
from events import store_errors as store
from events.tiles import TileMismatch
from legal_hold import errors as holds
from legal_hold import production_errors as productions
from legal_hold.notices import OutboxError
from projections.ehi_export import ExportError, ExportNotFound, OutputExists
from projections.reads import PatientNotFound

log = logging.getLogger("chartledger.api")
PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:chartledger:problem:"


class ApiError(Exception):
    """An error raised at the HTTP edge (authentication, roles, unknown ids)."""


class Unauthenticated(ApiError):
    """No valid session, or wrong credentials: the reason is never more specific than that."""


class Forbidden(ApiError):
    """The session's user lacks the role this route needs."""


class BreakGlassRequired(Forbidden):
    """A clinician without a care relationship with the patient: break-glass is needed."""


class TooManyAttempts(ApiError):
    """The account is locked for a while after repeated failed logins."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(ApiError):
    """No record of that kind with that id."""


class EdgeRefusal(StarletteHTTPException):
    """A request refused by the bounds on its size and shape (``api/limits.py``), before or
    while its handler reads it. An HTTP exception, because FastAPI passes those on as they are
    from a body read, where it would turn anything else into a vague 400."""

    status = 400
    slug = "http"
    title = "HTTP error"

    def __init__(self, detail: str) -> None:
        super().__init__(self.status, detail)


class BodyTooLarge(EdgeRefusal):
    status, slug, title = 413, "too-large", "Request body too large"


class HeadersTooLarge(EdgeRefusal):  # RFC 6585 §5
    status, slug, title = 431, "headers-too-large", "Request header fields too large"


class NestedTooDeep(EdgeRefusal):
    status, slug, title = 400, "too-deep", "JSON nested too deeply"


# The Idempotency-Key header's answers (api/idempotency/, docs/IDEMPOTENCY.md).
class IdempotencyKeyReused(ApiError):
    """The caller sent this key before with a different request."""


class IdempotencyKeyInFlight(ApiError):
    """A request with this key is still being processed."""


class KeptWithoutAnswer(ApiError):
    """A request with this key was kept, but its first answer was never recorded."""


class Replayed(ApiError):
    """The first answer to the same request under the same key, sent again as it was."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        super().__init__("replayed")
        self.status, self.headers, self.body = status, headers, body


# One place: an error class (the nearest in its MRO wins) -> (status, problem type slug, title).
STATUS: dict[type[BaseException], tuple[int, str, str]] = {
    domain.ChartError: (400, "domain-rule", "Refused by a domain rule"),
    domain.InvalidEntry: (422, "invalid-entry", "Invalid entry"),
    domain.InvalidQuantity: (422, "invalid-quantity", "Invalid quantity"),
    domain.UnknownRole: (422, "unknown-role", "Unknown role"),
    domain.ConversionNotDefined: (422, "conversion-not-defined", "Conversion not defined"),
    domain.ContentMismatch: (422, "content-mismatch", "Content does not match its hash"),
    domain.NoteAlreadySigned: (409, "note-already-signed", "Note already signed"),
    domain.NoteNotSigned: (409, "note-not-signed", "Note not signed"),
    domain.AmendmentStateError: (409, "amendment-state", "Amendment request state"),
    domain.AppointmentStateError: (409, "appointment-state", "Appointment state"),
    domain.DoubleBooking: (409, "double-booking", "Double booking"),
    domain.EntryStateError: (409, "entry-state", "Chart entry state"),
    domain.UserStateError: (409, "user-state", "User state"),
    domain.AccountStateError: (409, "account-state", "Account state"),
    domain.ThreadStateError: (409, "thread-state", "Thread state"),
    domain.DuplicateIdentifier: (409, "duplicate-identifier", "Duplicate identifier"),
    domain.NotPermitted: (403, "not-permitted", "Not permitted"),
    ImportRejected: (422, "import-rejected", "Import rejected: nothing written"),
    TooDeeplyNested: (400, "too-deep", "JSON nested too deeply"),
    holds.MatterStateError: (409, "matter-state", "Matter state"),
    holds.HoldStateError: (409, "hold-state", "Legal hold state"),
    holds.NoticeStateError: (409, "notice-state", "Legal hold notice state"),
    holds.UnderLegalHold: (409, "under-legal-hold", "Under legal hold: disposal refused"),
    holds.NotEligible: (409, "not-eligible", "Not yet eligible for disposal"),
    holds.NothingToDispose: (409, "already-disposed", "Record already disposed of"),
    holds.DisposalContended: (409, "disposal-contended", "Record kept changing: try again"),
    holds.NotAdopted: (409, "policy-not-adopted", "Retention policy not adopted"),
    holds.BelowFloor: (409, "below-retention-floor", "Below the practice's retention floor"),
    holds.PerCallPolicy: (422, "per-call-policy", "Name an adopted policy"),
    holds.ProposalStateError: (409, "proposal-state", "Disposal proposal state"),
    holds.DisposalNotPermitted: (403, "two-person-rule", "Refused by the two-person rule"),
    OutboxError: (502, "outbox", "The notice could not be sent"),
    productions.InvalidProduction: (422, "invalid-production", "Invalid production request"),
    productions.NothingToProduce: (409, "nothing-to-produce", "Nothing in scope to produce"),
    productions.ProductionError: (409, "production", "Production refused"),
    IntegrityError: (409, "conflict", "Conflicting change: reload and try again"),
    PatientNotFound: (404, "not-found", "Not found"),
    AggregateNotFoundError: (404, "not-found", "Not found"),
    NotFound: (404, "not-found", "Not found"),
    Unauthenticated: (401, "unauthenticated", "Authentication required"),
    Forbidden: (403, "forbidden", "Forbidden"),
    BreakGlassRequired: (403, "break-glass-required", "No care relationship with the patient"),
    TooManyAttempts: (429, "too-many-attempts", "Too many failed attempts"),
    IdempotencyKeyReused: (422, "idempotency-key-reused", "Key used for another request"),
    IdempotencyKeyInFlight: (409, "idempotency-key-in-flight", "Request with this key in progress"),
    KeptWithoutAnswer: (409, "kept-without-answer", "Kept earlier; its answer was not recorded"),
    ExportError: (400, "export", "Export refused"),
    ExportNotFound: (404, "not-found", "Not found"),
    OutputExists: (409, "export-exists", "Export destination exists"),
    # The store's own conditions (issue 23): never a 500, so a client knows to come back.
    store.StoreUnavailable: (503, "store-unavailable", "Store unavailable: try again shortly"),
    # A full disk is 503 with Retry-After too (issue 20): the same answer as any condition of the
    # store a client waits out; its type, storage-full, says which.
    store.StorageFull: (503, "storage-full", "Storage full: nothing can be written"),
    store.StoreBusy: (503, "store-busy", "Store busy: try again shortly"),
    # The stored tree disagrees with the leaves (LEDGER_FORMAT.md §12): nothing is signed.
    TileMismatch: (500, "tiles-damaged", "Stored tree damaged: no checkpoint signed"),
}

# Fixed words for the store's conditions: a driver's message can quote the values it was given.
STORE_DETAIL: dict[type[store.StoreError], str] = {
    store.StoreUnavailable: "the database could not be reached",
    store.OutcomeUnknown: (
        "the connection to the database was lost while the write committed, so it may have "
        "been kept: repeat it with the same Idempotency-Key to find out without writing it twice"
    ),
    store.StorageFull: "the store's disk is full; this write was not kept",
    store.StoreBusy: "another writer held the store's lock too long; this write was not kept",
}


def status_of(error: BaseException) -> tuple[int, str, str]:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500, "internal", "Internal server error"


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def detail_of(error: BaseException) -> str:
    """The problem's detail for ``error``, in the words a caller (or a console page) is shown."""
    return _detail(error)


def _detail(error: BaseException) -> str:
    if isinstance(error, store.StoreError):
        return next(STORE_DETAIL[c] for c in type(error).__mro__ if c in STORE_DETAIL)
    if isinstance(error, AggregateNotFoundError):
        return "no record with that id"
    if isinstance(error, IntegrityError):
        return "the record changed since it was read"
    return str(error)


async def _known(request: Request, error: Exception) -> Response:
    if isinstance(error, store.StoreError):
        log.warning("%s on %s %s", type(error).__name__, request.method, request.url.path)
        noted = getattr(request.app.state, "store_conditions", None)
        if noted is not None:  # for /health and readiness (api/readiness.py)
            noted.observed(type(error))
    return response_for(error)


def response_for(error: Exception) -> Response:
    """The answer to a known error (``STATUS``), or a replayed first answer."""
    if isinstance(error, Replayed):
        headers = dict(error.headers) | {"Idempotent-Replayed": "true"}
        return Response(error.body, status_code=error.status, headers=headers)
    status, slug, title = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(error, TooManyAttempts | store.StoreError):
        headers = {"Retry-After": str(error.retry_after)}
    if isinstance(error, IdempotencyKeyInFlight):
        headers = {"Retry-After": "1"}
    extra = {}
    if isinstance(error, ImportRejected):  # every rejection, by location and rule (no values)
        extra["report"] = ImportReportOut.of(error.report).model_dump(mode="json")
    return problem(status, slug, title, _detail(error), headers, **extra)


async def _validation(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # Never echo the input (it may be PHI): where, and what kind of error, only.
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e["type"]}
        for e in error.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return problem(400, "malformed-json", "Malformed JSON", "the body is not valid JSON")
    refusal = getattr(request.scope.get("endpoint"), "refusal", None)  # see api/routing.py
    refused = None if refusal is None else await refusal(request)
    if refused is not None:
        return await _known(request, refused)
    where = ", ".join(".".join(e["loc"]) for e in errors[:5])
    return problem(422, "validation", "Invalid request", f"invalid fields: {where}", errors=errors)


async def _http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if isinstance(error, EdgeRefusal):
        return problem(error.status, error.slug, error.title, error.detail)
    slug = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}.get(
        error.status_code, "http"
    )
    title = {404: "Not found", 405: "Method not allowed"}.get(error.status_code, "HTTP error")
    detail = error.detail if isinstance(error.detail, str) else None
    return problem(error.status_code, slug, title, detail, dict(error.headers or {}) or None)


async def _driver(request: Request, error: Exception) -> JSONResponse:
    """A driver's error: a store condition (503) if it says one, else unexpected (raised
    on, so it reaches ``_unexpected`` and the server's log as any other)."""
    condition = store.classify(error)
    if condition is None:
        raise error
    return await _known(request, condition())


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    condition = store.classify(error)  # a driver's error from below the store's own layers
    if condition is not None:
        return await _known(request, condition())
    log.error("unexpected %s on %s %s", type(error).__name__, request.method, request.url.path)
    return problem(500, "internal", "Internal server error")


def install(app: FastAPI) -> None:
    """Register the handlers: domain and edge errors, validation, HTTP errors, the rest."""
    for cls in (*STATUS, Replayed):
        app.add_exception_handler(cls, _known)
    for driver in store.DRIVER_ERRORS:
        app.add_exception_handler(driver, _driver)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
