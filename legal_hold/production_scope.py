"""Which events a production holds, and how each is produced (docs/BUNDLE_FORMAT.md §2).

Pure rules over the holds' scopes and the events' headers: no I/O.

A production holds every event of every subject in scope (each patient named by a hold, every
patient for a practice-wide hold, and each custodian), so each subject's chain can be proven
complete. An event's payload goes in only when some hold's scope covers it whole: it concerns a
patient or custodian in that scope, names no patient outside it, falls within its dates and
categories. Otherwise the bundle keeps its header and commitment only. A login credential event
(a password hash, TOTP secret, code or token hash: ``CREDENTIAL_EVENTS``) is never produced: in
scope, it is withheld under ``CREDENTIAL_CLAIM`` and listed with the privileged items.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from uuid import UUID

from domain.base import patient_subject, user_subject
from domain.categories import RECORD_CATEGORIES
from domain.credentials import SECRET_EVENT_TYPES
from legal_hold.holds import Scope
from verify.bundle_format import DISPOSED, OUT_OF_SCOPE, PRIVILEGED, PRODUCED
from verify.records import Header

PATIENT, USER = "patient:", "user:"
# Every event holding a login secret or a hash of one, and the claim it is withheld under.
CREDENTIAL_EVENTS = SECRET_EVENT_TYPES
CREDENTIAL_CLAIM = "security credential: not produced"
# Every hold's events are produced, the matter's or another's a custodian's chain brings along:
# a reader cannot tell which matter an unproduced one belongs to (docs/BUNDLE_FORMAT.md §2.2).
HOLD_EVENTS = "legal_hold.holds:Hold."


def subjects_in_scope(scopes: Iterable[Scope], known_patients: Iterable[str]) -> list[str]:
    """Every subject whose chain the production proves complete, sorted by UTF-8 bytes.

    ``known_patients`` are the patient subjects the log holds, for practice-wide holds."""
    found: set[str] = set()
    known = list(known_patients)
    for scope in scopes:
        if scope.all_patients:
            found.update(known)
        found.update(patient_subject(p) for p in scope.patients)
        found.update(user_subject(c) for c in scope.custodians)
    return sorted(found, key=str.encode)


def category_of(event_type: str) -> str | None:
    """The hold category of an event type (legal_hold.holds.CATEGORIES), None if it has none."""
    module, _, qualname = event_type.partition(":")
    if module == "domain.access":
        return "access" if qualname.startswith("Access.") else "disclosures"
    return RECORD_CATEGORIES.get(module)


def covers(scope: Scope, header: Header) -> bool:
    """Whether ``scope`` covers the event whole, so that its payload may be produced."""
    patients = [UUID(s[len(PATIENT) :]) for s in header.subjects if s.startswith(PATIENT)]
    users = {s for s in header.subjects if s.startswith(USER)}
    custodians = {user_subject(c) for c in scope.custodians}
    if not (any(scope.covers(p) for p in patients) or users & custodians):
        return False
    if not all(scope.covers(p) for p in patients):
        return False  # it is also about a patient the matter does not reach
    day = header.recorded[:10]
    if scope.start is not None and day < scope.start.isoformat():
        return False
    if scope.end is not None and day > scope.end.isoformat():
        return False
    return not scope.categories or category_of(header.type) in scope.categories


def status_of(
    position: int,
    header: Header,
    scopes: Sequence[Scope],
    claims: Mapping[int, str],
    disposed: bool,
    evidence: bool = False,
) -> tuple[str, str | None]:
    """(status, claim) of one event of the production: an evidence event (the matter's hold
    events, its patients' disposals) is produced whatever the scope, so that a reader can
    derive the scope and check disposals from them; otherwise a claim of the producer wins,
    then scope, then disposal (an event out of scope is out-of-scope even when its key was
    destroyed: the disposal that destroyed it may be no evidence of this matter); an event in
    scope that holds a login secret is withheld under ``CREDENTIAL_CLAIM`` rather than
    produced."""
    if evidence or header.type.startswith(HOLD_EVENTS):
        return PRODUCED, None
    claim = claims.get(position)
    if claim is not None:
        return PRIVILEGED, claim
    if not any(covers(scope, header) for scope in scopes):
        return OUT_OF_SCOPE, None
    if disposed:
        return DISPOSED, None
    if header.type in CREDENTIAL_EVENTS:
        return PRIVILEGED, CREDENTIAL_CLAIM
    return PRODUCED, None
