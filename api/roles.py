"""Who may use which route. An owner may use every route; the others only their own.

- clinician: charts (patients, labs, notes, chart reads)
- staff: schedule and demographics (register and search patients), no chart
- risk_manager: audit views, holds, productions; the user directory and the patient search,
  to name custodians and patients (each patient shown is recorded as a read of their demographics)
- auditor: audit views and the user directory
- owner: users, keys, everything
- user_admin (granted by an owner, e.g. to an office manager): clinician and staff users only
  (``domain/authority.py``)
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.deps import Caller, CurrentUser
from api.errors import Forbidden


def allowed(principal: Principal, roles: tuple[str, ...] | None) -> Principal:
    """The principal if they hold one of ``roles`` (or are an owner; None: any role), else
    ``Forbidden``."""
    if roles is None or "owner" in principal.roles or any(r in principal.roles for r in roles):
        return principal
    raise Forbidden(f"this needs the role {' or '.join(roles)}")


def require_role(*roles: str) -> Any:
    """A dependency passing callers who hold one of ``roles`` (or are an owner)."""

    # async: it only compares roles, so FastAPI runs it on the event loop instead of handing it
    # to a worker thread (each such hand-off costs more than the check).
    async def check(principal: CurrentUser, request: Request) -> Principal:
        try:
            return allowed(principal, roles)
        except Forbidden:
            # Only for a route api.routing does not wrap (it checks, and records, itself).
            caller = Caller.of(request, None)
            await run_in_threadpool(caller.refuse_role, principal, roles)
            raise

    check.__name__ = f"require_{'_or_'.join(roles)}"
    check.roles = roles  # type: ignore[attr-defined]  # read by api.routing
    return Depends(check)


Clinician = Annotated[Principal, require_role("clinician")]
FrontDesk = Annotated[Principal, require_role("clinician", "staff")]
# Who may find a patient by MRN or name: the front desk, and risk managers placing holds.
PatientFinder = Annotated[Principal, require_role("clinician", "staff", "risk_manager")]
# Who may read the user directory (usernames, names, roles): to name custodians and audit users.
Directory = Annotated[Principal, require_role("user_admin", "risk_manager", "auditor")]
AuditReader = Annotated[Principal, require_role("auditor", "risk_manager")]
Owner = Annotated[Principal, require_role("owner")]
UserAdmin = Annotated[Principal, require_role("user_admin")]
