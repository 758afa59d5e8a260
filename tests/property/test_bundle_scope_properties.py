"""Properties of the production's scope rules (docs/BUNDLE_FORMAT.md §2): an event naming a
patient outside the scope is never produced; dates and categories only narrow; a practice-wide
hold covers every patient's event; a claim outranks scope, which outranks disposal; a login
credential in scope is withheld under its own claim, never produced."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from legal_hold.holds import CATEGORIES, Scope
from legal_hold.production_scope import (
    CREDENTIAL_CLAIM,
    CREDENTIAL_EVENTS,
    category_of,
    covers,
    status_of,
)
from verify import bundle_format as bf
from verify.records import Header

IDS = [UUID(int=i) for i in range(1, 7)]
TYPES = [
    "domain.notes:Note.Drafted",
    "domain.labs:LabResult.Recorded",
    "domain.access:Access.Recorded",
    "domain.access:Disclosure.Recorded",
    "domain.users:User.Registered",
    "domain.messages:Thread.EmailIngested",
    "domain.credentials:Account.TotpEnrolled",
    "domain.credentials:Account.LoggedIn",
    "domain.sessions:Session.Started",
]
days = st.dates(date(2020, 1, 1), date(2030, 12, 31))


@st.composite
def headers(draw: st.DrawFn) -> Header:
    patients = draw(st.sets(st.sampled_from(IDS), max_size=2))
    users = draw(st.sets(st.sampled_from(IDS), max_size=2))
    subjects = sorted(
        [f"patient:{p}" for p in patients] + [f"user:{u}" for u in users], key=str.encode
    )
    day = draw(days)
    return Header(
        type=draw(st.sampled_from(TYPES)),
        stream=str(IDS[0]),
        version=1,
        actor=None,
        session=None,
        recorded=f"{day.isoformat()}T12:00:00.000000Z",
        original=None,
        subjects=tuple(subjects),
        key="practice#" + "0" * 32,
        commitment=b"\x00" * 32,
        sealed=b"\x00" * 32,
    )


@st.composite
def scopes(draw: st.DrawFn) -> Scope:
    start, end = sorted([draw(days), draw(days)])
    return Scope(
        patients=tuple(draw(st.sets(st.sampled_from(IDS), max_size=3))),
        custodians=tuple(draw(st.sets(st.sampled_from(IDS), max_size=2))),
        all_patients=draw(st.booleans()),
        start=draw(st.none() | st.just(start)),
        end=draw(st.none() | st.just(end)),
        categories=tuple(draw(st.sets(st.sampled_from(CATEGORIES), max_size=3))),
    )


def patients_of(header: Header) -> list[UUID]:
    return [UUID(s[len("patient:") :]) for s in header.subjects if s.startswith("patient:")]


@given(scopes(), headers())
def test_an_event_naming_a_patient_outside_the_scope_is_never_covered(
    scope: Scope, header: Header
) -> None:
    if any(not scope.covers(p) for p in patients_of(header)):
        assert not covers(scope, header)


@given(scopes(), headers())
def test_dates_and_categories_only_narrow(scope: Scope, header: Header) -> None:
    wide = Scope(scope.patients, scope.custodians, scope.all_patients)
    if covers(scope, header):
        assert covers(wide, header)
        day = header.recorded[:10]
        assert scope.start is None or day >= scope.start.isoformat()
        assert scope.end is None or day <= scope.end.isoformat()
        assert not scope.categories or category_of(header.type) in scope.categories


@given(headers())
def test_a_practice_wide_hold_covers_every_event_about_a_patient(header: Header) -> None:
    everyone = Scope(all_patients=True)
    assert covers(everyone, header) == bool(patients_of(header))


@given(
    st.lists(scopes(), max_size=3),
    headers(),
    st.none() | st.text(min_size=1, max_size=10),
    st.booleans(),
)
def test_a_claim_outranks_scope_which_outranks_disposal(
    held: list[Scope], header: Header, claim: str | None, disposed: bool
) -> None:
    claims = {} if claim is None else {7: claim}
    status, given_claim = status_of(7, header, held, claims, disposed)
    if claim is not None:
        assert (status, given_claim) == (bf.PRIVILEGED, claim)
    elif not any(covers(s, header) for s in held):
        assert (status, given_claim) == (bf.OUT_OF_SCOPE, None)
    elif disposed:
        assert (status, given_claim) == (bf.DISPOSED, None)
    elif header.type in CREDENTIAL_EVENTS:
        assert (status, given_claim) == (bf.PRIVILEGED, CREDENTIAL_CLAIM)
    else:
        assert (status, given_claim) == (bf.PRODUCED, None)


@given(st.lists(scopes(), max_size=3), headers(), st.booleans())
def test_a_login_credential_is_never_produced(
    held: list[Scope], header: Header, disposed: bool
) -> None:
    status, _ = status_of(7, header, held, {}, disposed)
    if header.type in CREDENTIAL_EVENTS:
        assert status != bf.PRODUCED
