"""The console's legal pages over HTTP as a browser sends them (forms, cookies, CSRF tokens), on
both stores: the API's rules hold there too, and every refusal is recorded as the API records
it. The stories in a real browser are tests/browser/test_stories.py; these play the attempts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.client import Client
from api.hold_schemas import HoldIn, ScopeIn
from legal_hold import holds as lh
from tests.e2e.conftest import (
    OWNER,
    OWNER_PASSWORD,
    Member,
    Practice,
    add_member,
    events_of_type,
)
from tests.e2e.console import form_token, member_signs_in, sign_in
from tests.e2e.test_clinical import ada, in_care
from tests.e2e.test_two_person_disposal import written

ROLE_REFUSED = "domain.refusals:RoleRefusal.Refused"
PROPOSAL_REFUSED = "legal_hold.refusals:ProposalRefusal.Refused"


@pytest.fixture(autouse=True)
def no_floor(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A floor of 0 years, so a record with activity today may be disposed of (read by
    ``chartledger init``; autouse, so set before the practice fixture runs it)."""
    for name in ("ADULT_YEARS", "MINOR_YEARS"):
        monkeypatch.setenv(f"CHARTLEDGER_RETENTION_FLOOR_{name}", "0")
    yield


def post(tab: TestClient, page: str, url: str, data: dict[str, object]) -> object:
    """Submit a form of ``page`` (GET first, for its token) as the browser would."""
    shown = tab.get(page)
    assert shown.status_code == 200, shown.text
    return tab.post(url, data={**data, "csrf_token": form_token(shown.text)})


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def owner_api(practice: Practice) -> Client:
    """The owner over the API, signed in once (a TOTP code signs in once: the console's
    sign-in takes the next)."""
    return practice.owner()


@pytest.fixture
def staff(practice: Practice, owner_api: Client) -> dict[str, Member]:
    owner = owner_api
    return {
        "rita": add_member(practice, owner, "rita", "Rita Risk", "risk_manager"),
        "rory": add_member(practice, owner, "rory", "Rory Risk", "risk_manager"),
        "casey": add_member(practice, owner, "casey", "Dr. Casey", "clinician"),
    }


def test_a_risk_manager_places_a_hold_by_name_and_username_and_the_custodian_acknowledges(
    practice: Practice, staff: dict[str, Member], owner_api: Client
) -> None:
    casey = staff["casey"].client()
    patient = casey.register_patient(ada()).patient_id
    in_care(owner_api, patient, casey)
    rita = member_signs_in(staff["rita"])

    opened = post(rita, "/console/matters", "/console/matters", {"number": "CV-1", "name": "Doe"})
    assert opened.status_code == 303
    matter_url = opened.headers["location"]
    matter_id = UUID(matter_url.rsplit("/", 1)[1])
    new = f"{matter_url}/holds/new"

    # The search finds the patient by name; the page names them, never by id alone.
    found = post(rita, new, f"{matter_url}/holds", {"action": "search", "query": "quill"})
    assert found.status_code == 200
    assert "Quill, Ada — MRN MRN-7" in found.text and "casey — Dr. Casey" in found.text
    reads = [
        e
        for e in events_of_type(practice, "domain.access:Access.Recorded")
        if getattr(e, "detail", None) and e.detail.get("query") == "quill"
    ]
    assert [(r.purpose_of_use, r.patient_id) for r in reads] == [("HLEGAL", patient)]

    placed = rita.post(
        f"{matter_url}/holds",
        data={
            "action": "place",
            "name": "Doe records",
            "notice": "Preserve every record of the patient.",
            "patients": str(patient),
            "custodians": str(staff["casey"].user_id),
            "reminder_days": "7",
            "escalation_days": "14",
            "csrf_token": form_token(found.text),
        },
    )
    assert placed.status_code == 303, placed.text
    hold_url = placed.headers["location"]
    shown = text_of(rita.get(hold_url).text)
    assert "Quill, Ada (MRN MRN-7)" in shown and "Dr. Casey (casey)" in shown
    assert "outstanding" in shown
    ledger = practice.http.app.state.services.ledger  # type: ignore[attr-defined]
    (hold,) = lh.all_holds(ledger, matter_id)
    assert hold.scope.patients == (patient,) and hold.scope.custodians == (staff["casey"].user_id,)

    # The custodian, a clinician, signs in to acknowledge; the notice is theirs to read.
    casey_tab = member_signs_in(staff["casey"])
    mine = casey_tab.get("/console/my-holds")
    assert "Preserve every record of the patient." in mine.text
    acknowledged = post(
        casey_tab,
        "/console/my-holds",
        f"/console/my-holds/{hold.id}/acknowledge",
        {"version": "1"},
    )
    assert acknowledged.status_code == 303
    assert "You acknowledged version 1" in casey_tab.get("/console/my-holds").text
    report = text_of(rita.get(f"{hold_url}/report").text)
    assert "Nothing outstanding." in report and "Dr. Casey (casey)" in report


def test_an_owner_is_refused_the_hold_pages_and_the_refusal_is_recorded(
    practice: Practice, staff: dict[str, Member]
) -> None:
    owner = sign_in(practice, OWNER, OWNER_PASSWORD, practice.totp_secret)
    before = practice.leaves()
    refused = owner.get("/console/matters")
    assert refused.status_code == 403 and "risk_manager" in refused.text
    kinds = [k for k, _ in written(practice, before)]
    assert kinds == [ROLE_REFUSED]


def test_a_form_without_its_token_writes_nothing(
    practice: Practice, staff: dict[str, Member]
) -> None:
    rita = member_signs_in(staff["rita"])
    assert rita.get("/console/matters").status_code == 200
    before = practice.leaves()
    for token in (None, "0" * 64):
        data = {"number": "CV-9", "name": "Forged"}
        if token:
            data["csrf_token"] = token
        assert rita.post("/console/matters", data=data).status_code == 403
    assert practice.leaves() == before


def test_a_held_records_disposal_is_refused_in_words_and_an_owner_approves_another(
    practice: Practice, staff: dict[str, Member], owner_api: Client
) -> None:
    owner_client = owner_api
    casey = staff["casey"].client()
    held = casey.register_patient(ada()).patient_id
    other = casey.register_patient(ada().model_copy(update={"mrn": "MRN-8", "given_name": "Bo"}))
    rita_api = staff["rita"].client()
    matter = rita_api.open_matter("Doe v. Practice", "CV-2026-1")
    rita_api.place_hold(
        matter.matter_id,
        HoldIn(name="Doe records", scope=ScopeIn(patients=[held]), silent=True),
    )
    owner = sign_in(practice, OWNER, OWNER_PASSWORD, practice.totp_secret)
    adopted = post(
        owner,
        "/console/retention",
        "/console/retention/policies",
        {"name": "adults-0y", "adult_years": "0", "minor_years": "0", "majority_age": "18"},
    )
    assert adopted.status_code == 303
    assert [p.name for p in owner_client.retention_policies().policies] == ["adults-0y"]

    rita = member_signs_in(staff["rita"])
    run = rita.get("/console/retention/run?policy=adults-0y&version=1")
    assert run.status_code == 200
    assert "Quill, Ada (MRN MRN-7)" in run.text and "Quill, Bo (MRN MRN-8)" in run.text
    before = practice.leaves()
    refused = rita.post(
        "/console/disposals",
        data={
            "patient_id": str(held),
            "policy": "adults-0y",
            "version": "1",
            "csrf_token": form_token(run.text),
        },
    )
    assert refused.status_code == 409
    words = text_of(refused.text)
    assert "Disposal refused: the record is under legal hold" in words
    assert "“Doe records” of matter CV-2026-1" in words and str(held) not in words
    assert PROPOSAL_REFUSED in [k for k, _ in written(practice, before)]

    proposed = rita.post(
        "/console/disposals",
        data={
            "patient_id": str(other.patient_id),
            "policy": "adults-0y",
            "version": "1",
            "csrf_token": form_token(run.text),
        },
    )
    assert proposed.status_code == 303
    (proposal,) = owner_client.disposal_proposals()
    # The proposer may not approve their own proposal: refused on the page, recorded.
    own = rita.post(
        f"/console/disposals/{proposal.proposal_id}/approve",
        data={"csrf_token": form_token(run.text)},
    )
    assert own.status_code == 403 and "two-person rule" in own.text
    approved = post(
        owner, "/console/retention", f"/console/disposals/{proposal.proposal_id}/approve", {}
    )
    assert approved.status_code == 303
    (done,) = owner_client.disposal_proposals()
    assert done.state == "approved" and done.approved_by == UUID(practice.owner_id)


def test_a_holds_scope_notice_and_release_change_on_the_page_and_the_matter_closes(
    practice: Practice, staff: dict[str, Member], owner_api: Client
) -> None:
    casey = staff["casey"].client()
    first = casey.register_patient(ada()).patient_id
    second = casey.register_patient(ada().model_copy(update={"mrn": "MRN-8", "given_name": "Bo"}))
    rita_api = staff["rita"].client()
    matter = rita_api.open_matter("Doe v. Practice", "CV-2026-2")
    hold = rita_api.place_hold(
        matter.matter_id,
        HoldIn(
            name="Doe records",
            scope=ScopeIn(patients=[first], custodians=[staff["casey"].user_id]),
            notice="Preserve the record.",
        ),
    )
    rita = member_signs_in(staff["rita"])
    hold_url = f"/console/holds/{hold.hold_id}"
    scope_url = f"{hold_url}/scope"

    # The scope form keeps what is ticked, finds the second patient, and needs a reason.
    form = rita.get(scope_url)
    assert "Quill, Ada — MRN MRN-7" in form.text
    token = form_token(form.text)
    keep = {"patients": [str(first)], "custodians": [str(staff["casey"].user_id)]}
    found = rita.post(
        scope_url, data={**keep, "action": "search", "query": "MRN-8", "csrf_token": token}
    )
    assert "Quill, Ada — MRN MRN-7" in found.text and "Quill, Bo — MRN MRN-8" in found.text
    wider = {**keep, "patients": [str(first), str(second.patient_id)]}
    unexplained = rita.post(scope_url, data={**wider, "action": "change", "csrf_token": token})
    assert unexplained.status_code == 422 and "reason" in unexplained.text
    changed = rita.post(
        scope_url,
        data={**wider, "action": "change", "reason": "the brother too", "csrf_token": token},
    )
    assert changed.status_code == 303
    assert set(rita_api.hold(hold.hold_id).scope.patients) == {first, second.patient_id}

    reissued = post(rita, hold_url, f"{hold_url}/notices", {"text": "Preserve the messages too."})
    assert reissued.status_code == 303 and rita_api.hold(hold.hold_id).notice_version == 2
    report = text_of(rita.get(f"{hold_url}/report").text)
    assert "the brother too" in report and "Quill, Bo (MRN MRN-8)" in report

    # Another risk manager may not release it (the two-person rule, recorded); its placer may.
    rory = member_signs_in(staff["rory"])
    before = practice.leaves()
    refused = post(rory, hold_url, f"{hold_url}/release", {"reason": "done"})
    assert refused.status_code == 403 and "two-person rule" in refused.text
    assert "legal_hold.refusals:ReleaseRefusal.Refused" in [k for k, _ in written(practice, before)]
    part = post(
        rita,
        hold_url,
        f"{hold_url}/release",
        {"reason": "not him", "patients": str(second.patient_id)},
    )
    assert part.status_code == 303
    assert rita_api.hold(hold.hold_id).scope.patients == [first]

    # The matter closes only once its holds are released.
    matter_url = f"/console/matters/{matter.matter_id}"
    early = post(rita, matter_url, f"{matter_url}/close", {"reason": "settled"})
    assert early.status_code == 409 and "Matter state" in early.text
    assert post(rita, hold_url, f"{hold_url}/release", {"reason": "settled"}).status_code == 303
    assert post(rita, matter_url, f"{matter_url}/close", {"reason": "settled"}).status_code == 303
    (closed,) = rita_api.matters()
    assert closed.close_reason == "settled"
    assert "closed" in text_of(rita.get("/console/matters").text)
