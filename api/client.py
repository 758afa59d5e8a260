"""A thin, typed client for the Chartledger API, on httpx. It checks status codes itself and
raises a typed error carrying the RFC 9457 problem body (STYLE.md §1)."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from api import hold_schemas as hs
from api import schemas
from api.client_retry import WRITES, Retry
from api.idempotency.header import serialize_key
from api.importing_schemas import ImportReportOut
from api.status import BackgroundStatus

JOB_POLL_FIRST, JOB_POLL_MOST = 0.1, 0.5  # seconds between polls of a job, growing
JOB_POLL_PATIENCE = 60.0  # seconds a job's server may be unreachable while it is followed
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def invalid_fields(error: ValidationError) -> str:
    """One line naming each field a model refused and why, never the value (it may be a
    password or PHI): ``username (String should have at most 64 characters)``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'the body'} ({e['msg']})"
        for e in error.errors(include_url=False, include_input=False, include_context=False)
    )


@functools.cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


class UnexpectedAnswer(ValueError):
    """A success whose body is not what the API documents (another version of the server?).
    A request model refusing the caller's input before sending raises pydantic's
    ``ValidationError`` instead, so the two are told apart."""


class ApiError(Exception):
    """A 4xx or 5xx answer; ``problem`` is its problem document (type, title, status, detail)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")
        self.status = status
        self.problem = problem

    @property
    def type(self) -> str:
        return str(self.problem.get("type", ""))


class BadRequest(ApiError):
    """400: malformed JSON, or a domain rule refused the request."""


class Unauthorized(ApiError):
    """401: no session, an ended one, or wrong credentials."""


class Forbidden(ApiError):
    """403: the user's roles do not allow this."""


class NotFound(ApiError):
    """404: no such record or route."""


class Conflict(ApiError):
    """409: the record's state does not allow this (e.g. a signed note edited)."""


class PayloadTooLarge(ApiError):
    """413: the body is over the server's limit."""


class Unprocessable(ApiError):
    """422: a field is missing or malformed."""


class TooManyRequests(ApiError):
    """429: locked out after repeated failures; retry after ``Retry-After`` seconds."""


class ServerError(ApiError):
    """5xx."""


ERRORS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: Unprocessable,
    429: TooManyRequests,
}


def problem_of_outcome(outcome: dict[str, Any], status: int) -> dict[str, Any]:
    """The problem an OperationOutcome (api/fhir_outcome.py) says, for the error classes."""
    issue = (outcome.get("issue") or [{}])[0]
    details = issue.get("details") or {}
    code = ((details.get("coding") or [{}])[0]).get("code", "internal")
    return {
        "type": f"urn:chartledger:problem:{code}",
        "title": details.get("text", ""),
        "status": status,
        "detail": issue.get("diagnostics", ""),
        "outcome": outcome,
    }


class Client:
    """``Client("http://127.0.0.1:8000")``, or ``Client(http=...)`` over any httpx.Client.

    Each write made in a session carries a new Idempotency-Key and is retried with it on a lost
    connection, a 503 or its own key still in flight (``retry``; docs/IDEMPOTENCY.md), so it is
    kept once or raises ``api.client_retry.Unanswered`` saying it may have been kept."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        http: httpx.Client | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        retry: Retry | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.http = http if http is not None else httpx.Client(base_url=base_url, timeout=timeout)
        self.token = token
        self.retry = retry if retry is not None else Retry()
        # Where jobs this client waits for report their progress (api/progress_bar.py).
        self.on_progress = on_progress

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        if self.token is not None and method.upper() in WRITES:
            # One key per logical write: every retry of it sends the same (docs/IDEMPOTENCY.md).
            headers.setdefault("Idempotency-Key", serialize_key(str(uuid.uuid4())))
            response = self.retry.send(self.http, method, path, headers, kwargs)
        else:
            response = self.http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"status": response.status_code, "title": response.reason_phrase}
            if not isinstance(problem, dict):
                problem = {"status": response.status_code}
            if problem.get("resourceType") == "OperationOutcome":  # under /fhir
                problem = problem_of_outcome(problem, response.status_code)
            kind = ERRORS.get(response.status_code)
            if kind is None:
                kind = ServerError if response.status_code >= 500 else ApiError
            raise kind(response.status_code, problem)
        return response

    @staticmethod
    def _read(kind: type[T], response: httpx.Response) -> T:
        """The answer's body as ``kind``; one that does not fit is ``UnexpectedAnswer``."""
        try:
            return _adapter(kind).validate_python(response.json())
        except ValueError as e:  # pydantic's ValidationError, or a body that is not JSON
            where = f"{response.request.method} {response.request.url.path}"
            fields = invalid_fields(e) if isinstance(e, ValidationError) else "not JSON"
            raise UnexpectedAnswer(f"the answer to {where} is not what the API documents: "
                                   f"{fields}") from None  # fmt: skip

    def _get(self, model: type[M], path: str, **kwargs: Any) -> M:
        return self._read(model, self.request("GET", path, **kwargs))

    def _send(self, model: type[M], method: str, path: str, body: BaseModel | None = None) -> M:
        json = None if body is None else body.model_dump(mode="json", exclude_none=True)
        return self._read(model, self.request(method, path, json=json))

    def _list(self, model: type[M], path: str, **kwargs: Any) -> list[M]:
        return self._read(list[model], self.request("GET", path, **kwargs))  # type: ignore[valid-type]

    # -- jobs (docs/JOBS.md): long work answered 202 with the job, followed until it ends ------

    def _job(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Start a job and wait for it; its result (what the request once answered)."""
        job = self.wait_for_job(self.request(method, path, **kwargs).json())
        result: dict[str, Any] = job.get("result") or {}
        return result

    def wait_for_job(
        self,
        job: dict[str, Any],
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll the job until it ends; the finished job. A failed or cancelled job raises its
        problem as the request would have (``Unprocessable`` for a rejected import, say)."""
        show = on_progress if on_progress is not None else self.on_progress
        wait = JOB_POLL_FIRST
        while True:
            if show is not None:
                show(job)
            if job.get("state") in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(wait)
            wait = min(wait * 1.5, JOB_POLL_MOST)
            job = self._poll(job)
        if job["state"] != "succeeded":
            problem = job.get("error") or {"status": 500, "title": f"job {job['state']}"}
            status = int(problem.get("status") or 500)
            kind = ERRORS.get(status) or (ServerError if status >= 500 else ApiError)
            raise kind(status, problem)
        return job

    def _poll(self, job: dict[str, Any]) -> dict[str, Any]:
        """The job now; a lost connection or a 503 (a server restarting) is tried again for
        up to JOB_POLL_PATIENCE seconds: the job goes on, or is found interrupted, meanwhile."""
        deadline = time.monotonic() + JOB_POLL_PATIENCE
        while True:
            try:
                return self.job(job["job_id"])
            except (httpx.TransportError, ServerError) as e:
                status = getattr(e, "status", 503)
                if status != 503 or time.monotonic() > deadline:
                    raise
                time.sleep(JOB_POLL_MOST)

    def job(self, job_id: UUID | str) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", f"/jobs/{job_id}").json()
        return found

    def jobs(self, *, everyone: bool = False) -> list[dict[str, Any]]:
        """The caller's newest jobs; ``everyone``: all users' (owners and auditors)."""
        params = {"all": "true"} if everyone else None
        listed: list[dict[str, Any]] = self.request("GET", "/jobs", params=params).json()
        return listed

    def cancel_job(self, job_id: UUID | str) -> dict[str, Any]:
        cancelled: dict[str, Any] = self.request("DELETE", f"/jobs/{job_id}").json()
        return cancelled

    def start_job(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Start a job and return it at once (202's body), without waiting."""
        started: dict[str, Any] = self.request(method, path, **kwargs).json()
        return started

    # -- sessions ------------------------------------------------------------------------------

    def login(self, username: str, password: str, totp_code: str | None = None) -> UUID:
        """Start a session; this client then uses its token. Returns the session id."""
        body = schemas.LoginIn(username=username, password=password, totp_code=totp_code)
        session = self._send(schemas.SessionOut, "POST", "/auth/login", body)
        self.token = session.token
        return session.session_id

    def recover(self, username: str, recovery_code: str, new_password: str) -> UUID:
        body = schemas.RecoverIn(
            username=username, recovery_code=recovery_code, new_password=new_password
        )
        session = self._send(schemas.SessionOut, "POST", "/auth/recover", body)
        self.token = session.token
        return session.session_id

    def recover_approved(
        self, username: str, approval_code: str, new_password: str
    ) -> schemas.RecoveredOut:
        """Spend a second owner's approval code; this client then uses the new session. The
        answer holds the account's new TOTP secret, shown this once."""
        body = schemas.RecoverApprovedIn(
            username=username, approval_code=approval_code, new_password=new_password
        )
        recovered = self._send(schemas.RecoveredOut, "POST", "/auth/recover-approved", body)
        self.token = recovered.token
        return recovered

    def issue_recovery_codes(self, password: str) -> schemas.RecoveryCodesOut:
        """As an owner in a session started with a TOTP code, and giving the current password
        again: ten new recovery codes, shown this once; every earlier code stops working."""
        body = schemas.RecoveryCodesIn(password=password)
        return self._send(schemas.RecoveryCodesOut, "POST", "/auth/recovery-codes", body)

    def enroll(self, username: str, enrollment_code: str, new_password: str) -> schemas.EnrolledOut:
        """Spend an enrollment code: one's own new password and, if the account held no
        authenticator, its new TOTP secret (in the answer, this once). Starts no session."""
        body = schemas.EnrollIn(
            username=username, enrollment_code=enrollment_code, new_password=new_password
        )
        return self._send(schemas.EnrolledOut, "POST", "/auth/enroll", body)

    def change_password(self, current_password: str, new_password: str) -> None:
        """One's own new password; every other session of the user ends, this one stays."""
        body = schemas.PasswordChangeIn(
            current_password=current_password, new_password=new_password
        )
        self.request("POST", "/auth/password", json=body.model_dump())

    def logout(self) -> None:
        self.request("POST", "/auth/logout")
        self.token = None

    def me(self) -> schemas.MeOut:
        return self._get(schemas.MeOut, "/auth/me")

    # -- users (owners) ------------------------------------------------------------------------

    def create_user(self, username: str, name: str, role: str) -> schemas.NewUserOut:
        """A new user; the answer holds their enrollment code, shown this once, to hand over."""
        body = schemas.UserIn(username=username, name=name, role=role)
        return self._send(schemas.NewUserOut, "POST", "/users", body)

    def users(self) -> list[schemas.UserOut]:
        return self._list(schemas.UserOut, "/users")

    def grant_role(self, user_id: UUID, role: str) -> schemas.UserOut:
        return self._send(
            schemas.UserOut, "POST", f"/users/{user_id}/roles", schemas.RoleIn(role=role)
        )

    def revoke_role(self, user_id: UUID, role: str) -> schemas.UserOut:
        return self._send(schemas.UserOut, "DELETE", f"/users/{user_id}/roles/{role}")

    def deactivate_user(self, user_id: UUID, reason: str) -> schemas.UserOut:
        body = schemas.ReasonIn(reason=reason)
        return self._send(schemas.UserOut, "POST", f"/users/{user_id}/deactivate", body)

    def reset_user(self, user_id: UUID, *, authenticator: bool = False) -> schemas.ResetOut:
        """Reset a user's password (and, as an owner, their authenticator): their sessions
        end, and the answer holds a new enrollment code, shown this once, to hand over."""
        body = schemas.ResetIn(authenticator=authenticator)
        return self._send(schemas.ResetOut, "POST", f"/users/{user_id}/reset", body)

    def approve_recovery(self, user_id: UUID) -> schemas.RecoveryApprovalOut:
        """As an owner, approve another owner's recovery: the one-time code to hand over."""
        path = f"/users/{user_id}/recovery-approvals"
        return self._send(schemas.RecoveryApprovalOut, "POST", path)

    # -- patients, labs, notes, chart ---------------------------------------------------------

    def register_patient(self, patient: schemas.PatientIn) -> schemas.PatientOut:
        return self._send(schemas.PatientOut, "POST", "/patients", patient)

    def search_patients(self, text: str, purpose: str = "TREAT") -> list[schemas.PatientOut]:
        return self._list(schemas.PatientOut, "/patients", params={"q": text, "purpose": purpose})

    def record_lab(self, lab: schemas.LabIn) -> schemas.LabOut:
        return self._send(schemas.LabOut, "POST", "/labs", lab)

    def convert_lab(self, lab_id: UUID, to_unit: str) -> schemas.ConversionOut:
        body = schemas.ConversionIn(to_unit=to_unit)
        return self._send(schemas.ConversionOut, "POST", f"/labs/{lab_id}/conversions", body)

    def draft_note(self, patient_id: UUID, kind: str, text: str) -> schemas.NoteOut:
        body = schemas.NoteIn(patient_id=patient_id, kind=kind, text=text)
        return self._send(schemas.NoteOut, "POST", "/notes", body)

    def edit_note(self, note_id: UUID, text: str) -> schemas.NoteOut:
        body = schemas.NoteEditIn(text=text)
        return self._send(schemas.NoteOut, "PUT", f"/notes/{note_id}", body)

    def sign_note(self, note_id: UUID) -> schemas.NoteOut:
        return self._send(schemas.NoteOut, "POST", f"/notes/{note_id}/sign")

    def amend_note(self, note_id: UUID, text: str, reason: str) -> schemas.NoteOut:
        body = schemas.AddendumIn(text=text, reason=reason)
        return self._send(schemas.NoteOut, "POST", f"/notes/{note_id}/addenda", body)

    def chart(
        self, patient_id: UUID, as_of: datetime | None = None, purpose: str = "TREAT"
    ) -> schemas.ChartOut:
        params = {"purpose": purpose}
        if as_of is not None:
            params["as_of"] = as_of.isoformat()
        return self._get(schemas.ChartOut, f"/patients/{patient_id}/chart", params=params)

    # -- problems, medications, allergies, vitals ----------------------------------------------

    def record_problem(self, problem: schemas.ProblemIn) -> schemas.EntryOut:
        return self._send(schemas.EntryOut, "POST", "/problems", problem)

    def resolve_problem(self, problem_id: UUID, body: schemas.ResolveIn) -> schemas.EntryOut:
        return self._send(schemas.EntryOut, "POST", f"/problems/{problem_id}/resolve", body)

    def start_medication(self, medication: schemas.MedicationIn) -> schemas.EntryOut:
        return self._send(schemas.EntryOut, "POST", "/medications", medication)

    def change_dose(self, medication_id: UUID, body: schemas.DoseChangeIn) -> schemas.EntryOut:
        return self._send(schemas.EntryOut, "POST", f"/medications/{medication_id}/dose", body)

    def stop_medication(self, medication_id: UUID, body: schemas.StopIn) -> schemas.EntryOut:
        return self._send(schemas.EntryOut, "POST", f"/medications/{medication_id}/stop", body)

    def record_allergy(self, allergy: schemas.AllergyIn) -> schemas.EntryOut:
        return self._send(schemas.EntryOut, "POST", "/allergies", allergy)

    def record_vital(self, vital: schemas.VitalIn) -> schemas.EntryOut:
        return self._send(schemas.EntryOut, "POST", "/vitals", vital)

    # -- appointments and the schedule ---------------------------------------------------------

    def book(self, appointment: schemas.AppointmentIn) -> schemas.AppointmentOut:
        return self._send(schemas.AppointmentOut, "POST", "/appointments", appointment)

    def reschedule(
        self, appointment_id: UUID, start: datetime, end: datetime
    ) -> schemas.AppointmentOut:
        body = schemas.RescheduleIn(start=start, end=end)
        path = f"/appointments/{appointment_id}/reschedule"
        return self._send(schemas.AppointmentOut, "POST", path, body)

    def cancel_appointment(self, appointment_id: UUID, reason: str) -> schemas.AppointmentOut:
        body = schemas.ReasonIn(reason=reason)
        path = f"/appointments/{appointment_id}/cancel"
        return self._send(schemas.AppointmentOut, "POST", path, body)

    def check_in(self, appointment_id: UUID) -> schemas.AppointmentOut:
        path = f"/appointments/{appointment_id}/check-in"
        return self._send(schemas.AppointmentOut, "POST", path)

    def no_show(self, appointment_id: UUID) -> schemas.AppointmentOut:
        return self._send(schemas.AppointmentOut, "POST", f"/appointments/{appointment_id}/no-show")

    def schedule(self, provider_id: UUID, day: date) -> schemas.ScheduleOut:
        return self._get(schemas.ScheduleOut, f"/schedule/{provider_id}/{day.isoformat()}")

    # -- the care team -------------------------------------------------------------------------

    def assign_care(self, patient_id: UUID, user_id: UUID) -> schemas.CareMemberOut:
        body = schemas.CareMemberIn(user_id=user_id)
        path = f"/patients/{patient_id}/care-team"
        return self._send(schemas.CareMemberOut, "POST", path, body)

    def end_care(self, patient_id: UUID, user_id: UUID) -> schemas.CareMemberOut:
        path = f"/patients/{patient_id}/care-team/{user_id}"
        return self._send(schemas.CareMemberOut, "DELETE", path)

    def set_registered_provider(self, patient_id: UUID, user_id: UUID) -> schemas.CareMemberOut:
        body = schemas.CareMemberIn(user_id=user_id)
        path = f"/patients/{patient_id}/registered-provider"
        return self._send(schemas.CareMemberOut, "PUT", path, body)

    def clear_registered_provider(self, patient_id: UUID) -> schemas.CareMemberOut:
        path = f"/patients/{patient_id}/registered-provider"
        return self._send(schemas.CareMemberOut, "DELETE", path)

    # -- documents and messages ----------------------------------------------------------------

    def upload_document(
        self,
        content: bytes,
        filename: str,
        media_type: str = "application/octet-stream",
        patient_id: UUID | None = None,
    ) -> schemas.DocumentOut:
        params = {"filename": filename, "media_type": media_type}
        if patient_id is not None:
            params["patient_id"] = str(patient_id)
        headers = {"Content-Type": "application/octet-stream"}
        response = self.request(
            "POST", "/documents", content=content, params=params, headers=headers
        )
        return self._read(schemas.DocumentOut, response)

    def document(self, document_id: UUID) -> bytes:
        return self.request("GET", f"/documents/{document_id}").content

    def start_thread(self, thread: schemas.ThreadIn) -> schemas.ThreadOut:
        return self._send(schemas.ThreadOut, "POST", "/threads", thread)

    def post_message(self, thread_id: UUID, body: str) -> schemas.ThreadOut:
        path = f"/threads/{thread_id}/messages"
        return self._send(schemas.ThreadOut, "POST", path, schemas.PostIn(body=body))

    def ingest_email(self, thread_id: UUID, raw: bytes) -> schemas.ThreadOut:
        headers = {"Content-Type": "message/rfc822"}
        response = self.request("POST", f"/threads/{thread_id}/email", content=raw, headers=headers)
        return self._read(schemas.ThreadOut, response)

    def ingest_sms(self, thread_id: UUID, sms: schemas.SmsIn) -> schemas.ThreadOut:
        return self._send(schemas.ThreadOut, "POST", f"/threads/{thread_id}/sms", sms)

    def thread(self, thread_id: UUID) -> schemas.ThreadReadOut:
        return self._get(schemas.ThreadReadOut, f"/threads/{thread_id}")

    # -- amendments and disclosures ------------------------------------------------------------

    def request_amendment(self, body: schemas.AmendmentIn) -> schemas.AmendmentOut:
        return self._send(schemas.AmendmentOut, "POST", "/amendment-requests", body)

    def decide_amendment(
        self, request_id: UUID, action: str, body: BaseModel
    ) -> schemas.AmendmentOut:
        """``action``: accept, deny, disagreement or rebuttal."""
        path = f"/amendment-requests/{request_id}/{action}"
        return self._send(schemas.AmendmentOut, "POST", path, body)

    def record_disclosure(self, body: schemas.DisclosureIn) -> schemas.EntryOut:
        return self._send(schemas.EntryOut, "POST", "/disclosures", body)

    def disclosures(self, patient_id: UUID) -> list[schemas.DisclosureRowOut]:
        return self._list(schemas.DisclosureRowOut, f"/patients/{patient_id}/disclosures")

    # -- break-glass ---------------------------------------------------------------------------

    def break_glass(
        self, patient_id: UUID, reason: str, minutes: int = 60
    ) -> schemas.BreakGlassOut:
        body = schemas.BreakGlassIn(reason=reason, minutes=minutes)
        return self._send(
            schemas.BreakGlassOut, "POST", f"/patients/{patient_id}/break-glass", body
        )

    def break_glass_queue(self, reviewed: bool | None = None) -> list[schemas.BreakGlassOut]:
        params = {} if reviewed is None else {"reviewed": str(reviewed).lower()}
        return self._list(schemas.BreakGlassOut, "/break-glass", params=params)

    def review_break_glass(
        self, emergency_access_id: UUID, outcome: str, note: str | None = None
    ) -> schemas.BreakGlassOut:
        body = schemas.ReviewIn(outcome=outcome, note=note)  # type: ignore[arg-type]
        path = f"/break-glass/{emergency_access_id}/review"
        return self._send(schemas.BreakGlassOut, "POST", path, body)

    def alerts(self, acknowledged: bool | None = None) -> list[schemas.AlertOut]:
        params = {} if acknowledged is None else {"acknowledged": str(acknowledged).lower()}
        return self._list(schemas.AlertOut, "/alerts", params=params)

    def acknowledge_alert(self, alert_id: UUID) -> schemas.AlertOut:
        return self._send(schemas.AlertOut, "POST", f"/alerts/{alert_id}/acknowledge")

    # -- audit ---------------------------------------------------------------------------------

    def audit(self, **filters: Any) -> list[schemas.AuditRowOut]:
        """The audit view; ``filters``: since, until, sort_by, descending, patient_id, user_id,
        action, purpose."""
        return self._list(schemas.AuditRowOut, "/audit", params=_params(filters))

    def audit_csv(self, **filters: Any) -> str:
        """The audit view as CSV (``api/csv_export.py``), with the filters of ``audit``."""
        return self.request("GET", "/audit.csv", params=_params(filters)).text

    def access_report(self, patient_id: UUID) -> list[schemas.AccessRowOut]:
        return self._list(schemas.AccessRowOut, f"/patients/{patient_id}/access-report")

    def access_report_csv(self, patient_id: UUID) -> str:
        return self.request("GET", f"/patients/{patient_id}/access-report.csv").text

    # -- checkpoints ---------------------------------------------------------------------------

    def latest_checkpoint(self) -> str:
        return self.request("GET", "/checkpoints/latest").text

    def issue_checkpoint(self) -> schemas.CheckpointOut:
        return self._send(schemas.CheckpointOut, "POST", "/checkpoints")

    def verify_store(self) -> schemas.VerificationOut:
        return self._get(schemas.VerificationOut, "/store/verification")

    def status(self) -> BackgroundStatus:
        """The server's background loops: each one's last good round, and whether it is late."""
        return self._get(BackgroundStatus, "/status")

    # -- legal holds and retention (risk managers; acknowledgements by the custodian) ---------

    def open_matter(self, name: str, number: str, forum: str | None = None) -> hs.MatterOut:
        body = hs.MatterIn(name=name, number=number, forum=forum)
        return self._send(hs.MatterOut, "POST", "/matters", body)

    def matters(self) -> list[hs.MatterOut]:
        return self._list(hs.MatterOut, "/matters")

    def close_matter(self, matter_id: UUID, reason: str) -> hs.MatterOut:
        body = hs.MatterCloseIn(reason=reason)
        return self._send(hs.MatterOut, "POST", f"/matters/{matter_id}/close", body)

    def place_hold(self, matter_id: UUID, hold: hs.HoldIn) -> hs.HoldOut:
        return self._send(hs.HoldOut, "POST", f"/matters/{matter_id}/holds", hold)

    def holds(self, matter_id: UUID | None = None, active: bool | None = None) -> list[hs.HoldOut]:
        params = {} if matter_id is None else {"matter_id": str(matter_id)}
        if active is not None:
            params["active"] = str(active).lower()
        return self._list(hs.HoldOut, "/holds", params=params)

    def hold(self, hold_id: UUID) -> hs.HoldOut:
        return self._get(hs.HoldOut, f"/holds/{hold_id}")

    def change_hold_scope(self, hold_id: UUID, scope: hs.ScopeIn, reason: str) -> hs.HoldOut:
        body = hs.ScopeChangeIn(scope=scope, reason=reason)
        return self._send(hs.HoldOut, "PUT", f"/holds/{hold_id}/scope", body)

    def release_hold(
        self,
        hold_id: UUID,
        reason: str,
        patients: list[UUID] | None = None,
        custodians: list[UUID] | None = None,
    ) -> hs.HoldOut:
        """Release the whole hold, or only the ``patients`` and ``custodians`` named."""
        body = hs.ReleaseIn(reason=reason, patients=patients or [], custodians=custodians or [])
        return self._send(hs.HoldOut, "POST", f"/holds/{hold_id}/release", body)

    def issue_notice(self, hold_id: UUID, text: str) -> hs.HoldOut:
        body = hs.NoticeIn(text=text)
        return self._send(hs.HoldOut, "POST", f"/holds/{hold_id}/notices", body)

    def acknowledge_hold(self, hold_id: UUID, version: int) -> hs.AcknowledgementOut:
        """As the signed-in custodian, acknowledge notice ``version`` of the hold."""
        body = hs.AcknowledgeIn(version=version)
        path = f"/holds/{hold_id}/acknowledgements"
        return self._send(hs.AcknowledgementOut, "POST", path, body)

    def my_holds(self) -> list[hs.CustodianHoldOut]:
        return self._list(hs.CustodianHoldOut, "/holds/mine")

    def remind(self) -> list[hs.SentOut]:
        """Send every notice, reminder and escalation due now."""
        return self._read(list[hs.SentOut], self.request("POST", "/holds/remind"))

    def hold_report(self, hold_id: UUID) -> hs.HoldReportOut:
        return self._get(hs.HoldReportOut, f"/holds/{hold_id}/report")

    def adopt_policy(self, policy: hs.PolicyIn) -> hs.AdoptedPolicyOut:
        """As an owner, adopt ``policy`` as the next version of its name (409
        ``below-retention-floor`` if it keeps any record less than the practice's floor)."""
        return self._send(hs.AdoptedPolicyOut, "POST", "/retention/policies", policy)

    def retention_policies(self) -> hs.PoliciesOut:
        return self._get(hs.PoliciesOut, "/retention/policies")

    def retention_run(self, policy: str, version: int) -> list[hs.CandidateOut]:
        body = hs.PolicyRefIn(policy=policy, version=version)
        response = self.request("POST", "/retention/runs", json=body.model_dump(exclude_none=True))
        return self._read(list[hs.CandidateOut], response)

    def propose_disposal(self, patient_id: UUID, policy: str, version: int) -> hs.ProposalOut:
        """Propose disposing of the patient's record under an adopted policy; a second person
        approves it (``approve_disposal``). Nothing is destroyed until then."""
        body = hs.PolicyRefIn(policy=policy, version=version)
        response = self.request(
            "POST", f"/patients/{patient_id}/disposal", json=body.model_dump(exclude_none=True)
        )
        return self._read(hs.ProposalOut, response)

    def disposal_proposals(self) -> list[hs.ProposalOut]:
        return self._list(hs.ProposalOut, "/disposals")

    def approve_disposal(self, proposal_id: UUID) -> hs.DisposalOut:
        """Approve someone else's proposal: the record is disposed of now (409
        ``under-legal-hold`` while a hold covers it)."""
        response = self.request("POST", f"/disposals/{proposal_id}/approve")
        return self._read(hs.DisposalOut, response)

    def disposed_record(self, patient_id: UUID) -> hs.DisposedRecordOut:
        return self._get(hs.DisposedRecordOut, f"/patients/{patient_id}/disposal")

    # -- imports (docs/IMPORTS.md): 201 with the report, or Unprocessable (422) whose
    # ``problem["report"]`` lists every rejection; nothing is written then.

    def _import(self, path: str, content: bytes, media_type: str, **params: Any) -> ImportReportOut:
        query = {k: v for k, v in params.items() if v is not None}
        if "accept_valid" in query:
            query["accept_valid"] = "true" if query["accept_valid"] else "false"
        report = self._job(
            "POST", path, content=content, headers={"Content-Type": media_type}, params=query
        )
        return _adapter(ImportReportOut).validate_python(report)  # type: ignore[no-any-return]

    def import_patients(
        self,
        csv: bytes,
        mapping: str,
        *,
        accept_valid: bool = False,
        source_name: str | None = None,
    ) -> ImportReportOut:
        """Patients from a billing CSV; ``mapping`` is the column map's JSON text."""
        return self._import(
            "/imports/patients", csv, "text/csv", mapping=mapping,
            accept_valid=accept_valid, source_name=source_name,
        )  # fmt: skip

    def import_labs(
        self, hl7: bytes, *, accept_valid: bool = False, source_name: str | None = None
    ) -> ImportReportOut:
        """Lab results from HL7 v2 ORU^R01 messages, each kept as a Document."""
        return self._import(
            "/imports/labs", hl7, "x-application/hl7-v2+er7",
            accept_valid=accept_valid, source_name=source_name,
        )  # fmt: skip

    def import_email(
        self,
        raw: bytes,
        patient_id: UUID,
        *,
        accept_valid: bool = False,
        source_name: str | None = None,
    ) -> ImportReportOut:
        """One .eml or an mbox of them into the patient's email threads, bytes kept exactly."""
        return self._import(
            "/imports/email", raw, "message/rfc822", patient_id=str(patient_id),
            accept_valid=accept_valid, source_name=source_name,
        )  # fmt: skip

    def import_sms(
        self,
        xml: bytes,
        patient_id: UUID,
        *,
        accept_valid: bool = False,
        source_name: str | None = None,
    ) -> ImportReportOut:
        """An SMS Backup & Restore XML export into the patient's SMS threads."""
        return self._import(
            "/imports/sms", xml, "application/xml", patient_id=str(patient_id),
            accept_valid=accept_valid, source_name=source_name,
        )  # fmt: skip

    def import_fhir(
        self,
        body: bytes,
        *,
        source: str | None = None,
        accept_valid: bool = False,
        source_name: str | None = None,
    ) -> ImportReportOut:
        """A FHIR Bulk Data export (a ZIP of its folder, or one NDJSON file) (owners)."""
        media = "application/zip" if body.startswith(b"PK\x03\x04") else "application/fhir+ndjson"
        return self._import(
            "/imports/fhir", body, media, source=source, accept_valid=accept_valid,
            source_name=source_name,
        )  # fmt: skip

    # -- EHI export (owners and risk managers) ---------------------------------------------------

    def export_ehi(
        self, patient_id: UUID | None = None, *, all_patients: bool = False, purpose: str = "PATRQT"
    ) -> dict[str, Any]:
        """Export one patient's (or, with ``all_patients``, everyone's) EHI; returns the Bulk
        Data manifest, whose file URLs are absolute (``<server>/exports/<id>/<file>``)."""
        body: dict[str, Any] = {"purpose": purpose}
        if patient_id is not None:
            body["patient_id"] = str(patient_id)
        if all_patients:
            body["all"] = True
        return self._job("POST", "/exports", json=body)

    def export(
        self, patient_id: UUID | None = None, *, all_patients: bool = False, purpose: str = "PATRQT"
    ) -> dict[str, Any]:
        """``export_ehi`` by its shorter name."""
        return self.export_ehi(patient_id, all_patients=all_patients, purpose=purpose)

    def export_file(self, export_id: UUID | str, name: str) -> bytes:
        """One file of a finished export (``Patient.ndjson``, ``native/records.msgpack``, ...),
        by its name or by its manifest's absolute URL."""
        folder = f"/exports/{export_id}/"
        name = name.rpartition(folder)[2] if folder in name else name
        return self.request("GET", f"{folder}{name}").content

    # -- e-discovery productions (risk managers) -----------------------------------------------

    def produce(
        self,
        matter_id: UUID,
        *,
        withhold: dict[int, str] | None = None,
        since_checkpoint: int | None = None,
    ) -> dict[str, Any]:
        """Produce the matter's bundle on the server; returns the production (its ``download``
        path, SHA-256, size, events, checkpoint size, subjects)."""
        body: dict[str, Any] = {
            "withhold": [{"position": p, "claim": c} for p, c in (withhold or {}).items()]
        }
        if since_checkpoint is not None:
            body["since_checkpoint"] = since_checkpoint
        return self._job("POST", f"/matters/{matter_id}/productions", json=body)

    def download_production(self, production_id: UUID | str) -> bytes:
        """The bundle's bytes, exactly as produced."""
        return self.request("GET", f"/productions/{production_id}/bundle").content

    # -- backups (owners) ------------------------------------------------------------------------

    def backup(self) -> dict[str, Any]:
        """Back the practice's ledger up on the server (``<CHARTLEDGER_HOME>/backups/<id>/``);
        returns the backup's manifest summary."""
        return self._job("POST", "/backups")


def _params(filters: dict[str, Any]) -> dict[str, str]:
    """Query parameters as the API spells them (booleans in lower case)."""
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in filters.items()}
