"""Disposal by two people under a policy the practice adopted, over HTTP on both stores.

The story: an owner adopts a policy, a risk manager proposes disposing of an eligible patient's
record, the owner approves, the key is destroyed and ``Disposed`` recorded. And each way one
person might try it alone, or under rules nobody adopted, is refused, writing nothing but its
refusal event, which the audit view shows with the actor, the patient and the action (the
event type). Attack 1's tail too: a risk manager releasing another's hold is refused while the
hold stands; an owner releases it.

The practice is made with a floor of 0 adult years (2 minor years past majority at 18), so a
record with activity today can be disposed of.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main as chartledger
from api.client import ApiError, Client, Conflict, Forbidden, Unprocessable
from api.hold_schemas import HoldIn, PolicyIn, ScopeIn
from projections.runner import read_entries
from tests.e2e.conftest import (
    OWNER,
    OWNER_PASSWORD,
    Practice,
    add_member,
    one_line_refusal,
    owner_logs_in_remotely,
)
from tests.e2e.test_clinical import ada, in_care
from tests.e2e.test_recovery_approval import served

POLICY = PolicyIn(name="adults-0y", adult_years=0, minor_years=2)
REFUSALS = "legal_hold.refusals:"
PROPOSAL_REFUSED = REFUSALS + "ProposalRefusal.Refused"
APPROVAL_REFUSED = REFUSALS + "ApprovalRefusal.Refused"
RELEASE_REFUSED = REFUSALS + "ReleaseRefusal.Refused"
ADOPTION_REFUSED = REFUSALS + "AdoptionRefusal.Refused"
HELD = "legal_hold.retention:DisposalRefusal.Refused"
DISPOSED = "legal_hold.retention:Disposal.Disposed"


@pytest.fixture(autouse=True)
def low_floor(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Read by ``chartledger init`` (autouse: set before the practice fixture runs it)."""
    monkeypatch.setenv("CHARTLEDGER_RETENTION_FLOOR_ADULT_YEARS", "0")
    monkeypatch.setenv("CHARTLEDGER_RETENTION_FLOOR_MINOR_YEARS", "2")
    monkeypatch.setenv("CHARTLEDGER_RETENTION_FLOOR_MAJORITY_AGE", "18")
    yield


def written(practice: Practice, since: int) -> list[tuple[str, Any]]:
    """Each event appended at or after log position ``since``: its type and decoded event."""
    ledger = practice.http.app.state.services.ledger  # type: ignore[attr-defined]
    return [(e.header.type, e.event) for e in read_entries(ledger, since, limit=1_000)]


def refused(
    practice: Practice, call: Callable[[], object], error: type[ApiError], slug: str
) -> tuple[str, Any]:
    """``call`` must be refused with ``error`` and problem type ``slug``, having written exactly
    one event (the refusal), which is returned."""
    before = practice.leaves()
    with pytest.raises(error) as answer:
        call()
    problem = answer.value.problem
    assert str(problem["type"]).endswith(f":{slug}"), problem
    assert "Quill" not in str(problem) and "SECRET" not in str(problem)
    (only,) = written(practice, before)
    return only


def keys_of(practice: Practice, patient: UUID) -> int:
    ledger = practice.http.app.state.services.ledger  # type: ignore[attr-defined]
    with ledger.db.read() as c:
        c.execute(
            "SELECT COUNT(*) FROM ledger_data_keys WHERE subject = ?", (f"patient:{patient}",)
        )
        return int(c.fetchone()[0])


def test_one_person_alone_cannot_dispose_and_two_with_an_owner_do(
    practice: Practice, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = practice.owner()
    rita_m = add_member(practice, owner, "rita", "Rita Risk", "risk_manager")
    rory_m = add_member(practice, owner, "rory", "Rory Risk", "risk_manager")
    casey_m = add_member(practice, owner, "casey", "Dr. Casey", "clinician")
    rita, rory, casey = rita_m.client(), rory_m.client(), casey_m.client()
    rita_id, rory_id, owner_id = rita_m.user_id, rory_m.user_id, UUID(practice.owner_id)
    patient = casey.register_patient(ada()).patient_id
    in_care(owner, patient, casey)
    casey.draft_note(patient, "progress", "SECRET-HISTORY")

    # Policies: an owner adopts them; a risk manager may not, and none goes below the floor.
    kind, event = refused(practice, lambda: rita.adopt_policy(POLICY), Forbidden, "two-person-rule")
    assert (kind, event.by) == (ADOPTION_REFUSED, rita_id)
    low = PolicyIn(name="too-short", adult_years=0, minor_years=1)
    kind, event = refused(
        practice, lambda: owner.adopt_policy(low), Conflict, "below-retention-floor"
    )
    assert (kind, event.by, event.policy_name) == (ADOPTION_REFUSED, owner_id, "too-short")
    young = PolicyIn(name="young-majority", adult_years=0, minor_years=2, majority_age=16)
    refused(practice, lambda: owner.adopt_policy(young), Conflict, "below-retention-floor")
    adopted = owner.adopt_policy(POLICY)
    assert (adopted.name, adopted.version, adopted.adopted_by) == (POLICY.name, 1, owner_id)
    book = rita.retention_policies()
    assert (book.floor.adult_years, book.floor.minor_years, book.floor.majority_age) == (0, 2, 18)
    assert [(p.name, p.version) for p in book.policies] == [(POLICY.name, 1)]
    (candidate,) = [c for c in rita.retention_run(POLICY.name, 1) if c.patient_id == patient]
    assert candidate.disposable

    # A policy carried in the request (today's old body) is refused, proposing or disposing.
    old_body = {"name": "adults-0y", "adult_years": 0, "minor_years": 0, "majority_age": 1}
    path = f"/patients/{patient}/disposal"
    kind, event = refused(
        practice,
        lambda: rita.request("POST", path, json=old_body),
        Unprocessable,
        "per-call-policy",
    )
    assert (kind, event.by, event.patient_id) == (PROPOSAL_REFUSED, rita_id, patient)
    with pytest.raises(Unprocessable) as run_body:
        rita.request("POST", "/retention/runs", json=old_body)
    assert str(run_body.value.problem["type"]).endswith(":per-call-policy")

    # A policy nobody adopted (or a version never adopted) is refused.
    for name, version in (("made-up", 1), (POLICY.name, 2)):
        kind, event = refused(
            practice,
            lambda n=name, v=version: rita.propose_disposal(patient, n, v),
            Conflict,
            "policy-not-adopted",
        )
        assert (kind, event.by, event.patient_id) == (PROPOSAL_REFUSED, rita_id, patient)
    # A clinician may not propose.
    kind, event = refused(
        practice,
        lambda: casey.propose_disposal(patient, POLICY.name, 1),
        Forbidden,
        "two-person-rule",
    )
    assert (kind, event.by) == (PROPOSAL_REFUSED, casey_m.user_id)

    # The risk manager proposes: nothing is destroyed yet.
    proposal = rita.propose_disposal(patient, POLICY.name, 1)
    assert (proposal.state, proposal.proposed_by, proposal.patient_id) == (
        "pending",
        rita_id,
        patient,
    )
    assert proposal.expires_at - proposal.proposed_at == timedelta(hours=72)
    assert keys_of(practice, patient) == 1

    # Alone: the proposer approving their own proposal; another risk manager (no owner among
    # the two); a clinician. Each refused, recorded, and the key is still there.
    for who, actor in ((rita, rita_id), (rory, rory_id), (casey, casey_m.user_id)):
        kind, event = refused(
            practice,
            lambda c=who: c.approve_disposal(proposal.proposal_id),
            Forbidden,
            "two-person-rule",
        )
        assert (kind, event.by, event.patient_id, event.proposal_id) == (
            APPROVAL_REFUSED,
            actor,
            patient,
            proposal.proposal_id,
        )
    kind, event = refused(
        practice,
        lambda: owner.approve_disposal(UUID(int=7)),
        Conflict,
        "proposal-state",
    )
    assert (kind, event.by, event.patient_id) == (APPROVAL_REFUSED, owner_id, None)
    assert keys_of(practice, patient) == 1
    assert casey.chart(patient).patient_id == patient  # the record is all there

    # The owner approves: the key is destroyed and Disposed recorded, linked to the proposal.
    before = practice.leaves()
    disposal = owner.approve_disposal(proposal.proposal_id)
    assert disposal.proposal_id == proposal.proposal_id and disposal.keys_destroyed == 1
    assert disposal.description.startswith(f"disposed under policy {POLICY.name} v1 on ")
    assert disposal.description.endswith(f"by user {owner_id}")
    assert keys_of(practice, patient) == 0
    kinds = [k for k, _ in written(practice, before)]
    assert DISPOSED in kinds and "legal_hold.disposal_approvals:DisposalProposal.Approved" in kinds
    (listed,) = rita.disposal_proposals()
    assert (listed.state, listed.approved_by, listed.disposal_id) == (
        "approved",
        owner_id,
        disposal.disposal_id,
    )
    kind, _ = refused(
        practice,
        lambda: owner.approve_disposal(proposal.proposal_id),
        Conflict,
        "proposal-state",
    )
    assert kind == APPROVAL_REFUSED
    capsys.readouterr()
    assert chartledger(["verify"]) == 0
    # registration, MRN claim, Casey's care assignment, the note, and Casey's chart read
    assert "5 disposed" in capsys.readouterr().out

    # The audit view names, for each refusal, the actor, the patient and the action.
    rows = owner.audit(patient_id=patient)
    failures = [(r.user_id, r.event_type) for r in rows if r.outcome == "failure"]
    assert failures == [
        (str(rita_id), PROPOSAL_REFUSED),
        (str(rita_id), PROPOSAL_REFUSED),
        (str(rita_id), PROPOSAL_REFUSED),
        (str(casey_m.user_id), PROPOSAL_REFUSED),
        (str(rita_id), APPROVAL_REFUSED),
        (str(rory_id), APPROVAL_REFUSED),
        (str(casey_m.user_id), APPROVAL_REFUSED),
        (str(owner_id), APPROVAL_REFUSED),  # approving it again, once it was done
    ]
    assert {r.data_category for r in rows if r.outcome == "failure"} == {"retention"}
    done = [r for r in rows if r.event_type == DISPOSED]
    assert [(r.user_id, r.patient_id, r.outcome) for r in done] == [
        (str(owner_id), str(patient), "success")
    ]
    adoption_failures = [
        (r.user_id, r.outcome)
        for r in owner.audit(action="create")
        if r.event_type == ADOPTION_REFUSED
    ]
    assert adoption_failures == [(str(rita_id), "failure"), *[(str(owner_id), "failure")] * 2]


def test_a_hold_wins_at_proposal_and_at_approval_and_only_its_placer_or_an_owner_releases_it(
    practice: Practice,
) -> None:
    owner = practice.owner()
    rita_m = add_member(practice, owner, "rita", "Rita Risk", "risk_manager")
    rory_m = add_member(practice, owner, "rory", "Rory Risk", "risk_manager")
    casey_m = add_member(practice, owner, "casey", "Dr. Casey", "clinician")
    rita, rory, casey = rita_m.client(), rory_m.client(), casey_m.client()
    owner_id = UUID(practice.owner_id)
    patient = casey.register_patient(ada()).patient_id
    owner.adopt_policy(POLICY)

    # Proposed while free; then a hold is placed before anyone approves.
    proposal = rita.propose_disposal(patient, POLICY.name, 1)
    matter = rita.open_matter("Doe v. Practice", "CV-2026-9")
    hold = rita.place_hold(
        matter.matter_id, HoldIn(name="Doe", scope=ScopeIn(patients=[patient]), silent=True)
    )
    # At approval the hold is seen: nothing destroyed, the refusal recorded.
    kind, event = refused(
        practice,
        lambda: owner.approve_disposal(proposal.proposal_id),
        Conflict,
        "under-legal-hold",
    )
    assert (kind, event.by, event.patient_id, event.hold_ids) == (
        HELD,
        owner_id,
        patient,
        [hold.hold_id],
    )
    assert keys_of(practice, patient) == 1
    # A new proposal under the hold is refused at once.
    kind, event = refused(
        practice,
        lambda: rory.propose_disposal(patient, POLICY.name, 1),
        Conflict,
        "under-legal-hold",
    )
    assert (kind, event.by, event.patient_id) == (PROPOSAL_REFUSED, rory_m.user_id, patient)

    # Attack 1's tail: another risk manager releases Rita's hold: refused, recorded, it stands.
    kind, event = refused(
        practice,
        lambda: rory.release_hold(hold.hold_id, "no longer needed"),
        Forbidden,
        "two-person-rule",
    )
    assert (kind, event.by, event.hold_id, event.placed_by) == (
        RELEASE_REFUSED,
        rory_m.user_id,
        hold.hold_id,
        rita_m.user_id,
    )
    kind, _ = refused(  # nor in part
        practice,
        lambda: rory.release_hold(hold.hold_id, "part", patients=[patient]),
        Forbidden,
        "two-person-rule",
    )
    assert kind == RELEASE_REFUSED
    assert rita.hold(hold.hold_id).active
    with pytest.raises(Forbidden):
        casey.release_hold(hold.hold_id, "mine now")
    assert [r.user_id for r in owner.audit() if r.event_type == RELEASE_REFUSED] == [
        str(rory_m.user_id)
    ] * 2
    with pytest.raises(Conflict):
        owner.approve_disposal(proposal.proposal_id)
    assert keys_of(practice, patient) == 1

    # An owner releases it (in their own name); then the pending proposal is approved.
    released = owner.release_hold(hold.hold_id, "matter settled")
    assert released.active is False
    disposal = owner.approve_disposal(proposal.proposal_id)
    assert disposal.patient_id == patient and keys_of(practice, patient) == 0

    # The placer may release their own hold.
    other = casey.register_patient(ada().model_copy(update={"mrn": "MRN-8"})).patient_id
    own = rita.place_hold(matter.matter_id, HoldIn(name="own", scope=ScopeIn(patients=[other])))
    assert rita.release_hold(own.hold_id, "done").active is False


def test_a_proposal_expires_and_an_owner_proposing_needs_a_risk_manager_to_approve(
    practice: Practice,
) -> None:
    owner = practice.owner()
    rita_m = add_member(practice, owner, "rita", "Rita Risk", "risk_manager")
    casey_m = add_member(practice, owner, "casey", "Dr. Casey", "clinician")
    rita, casey = rita_m.client(), casey_m.client()
    first = casey.register_patient(ada()).patient_id
    second = casey.register_patient(ada().model_copy(update={"mrn": "MRN-8"})).patient_id
    owner.adopt_policy(POLICY)

    # A server whose proposals live one second, on the same store and the same session.
    short = replace(practice.settings, disposal_approval_lifetime=timedelta(seconds=1))
    with TestClient(create_app(short), raise_server_exceptions=False) as http:
        quick = Client(http=http, token=rita.token)
        stale = quick.propose_disposal(first, POLICY.name, 1)
    time.sleep(1.2)
    kind, event = refused(
        practice,
        lambda: owner.approve_disposal(stale.proposal_id),
        Conflict,
        "proposal-state",
    )
    assert kind == APPROVAL_REFUSED and "expired" in event.reason
    assert [p.state for p in rita.disposal_proposals()] == ["expired"]
    assert keys_of(practice, first) == 1

    # The owner proposes; a risk manager is the second person (the owner is one of the two).
    mine = owner.propose_disposal(second, POLICY.name, 1)
    refused(
        practice,
        lambda: owner.approve_disposal(mine.proposal_id),
        Forbidden,
        "two-person-rule",
    )
    assert rita.approve_disposal(mine.proposal_id).keys_destroyed == 1


def test_a_session_without_a_totp_code_can_neither_propose_nor_approve(
    practice: Practice,
) -> None:
    owner = practice.owner()
    rita_m = add_member(practice, owner, "rita", "Rita Risk", "risk_manager")
    casey_m = add_member(practice, owner, "casey", "Dr. Casey", "clinician")
    rita, casey = rita_m.client(), casey_m.client()
    patient = casey.register_patient(ada()).patient_id
    owner.adopt_policy(POLICY)
    proposal = rita.propose_disposal(patient, POLICY.name, 1)

    # The owner signs in with a recovery code (no TOTP code): not enough to dispose.
    recovered = practice.client()
    recovered.recover(OWNER, practice.recovery_codes[0], "a-new-owner-password-1")
    for call in (
        lambda: recovered.approve_disposal(proposal.proposal_id),
        lambda: recovered.propose_disposal(patient, POLICY.name, 1),
    ):
        _, event = refused(practice, call, Forbidden, "two-person-rule")
        assert "TOTP" in event.reason and event.by == UUID(practice.owner_id)
    assert keys_of(practice, patient) == 1


@pytest.mark.usefixtures("token_file")
def test_the_command_line_adopts_proposes_lists_and_approves(
    practice: Practice, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = practice.owner()
    rita_m = add_member(practice, owner, "rita", "Rita Risk", "risk_manager")
    casey_m = add_member(practice, owner, "casey", "Dr. Casey", "clinician")
    rita, casey = rita_m.client(), casey_m.client()
    first = casey.register_patient(ada()).patient_id
    second = casey.register_patient(ada().model_copy(update={"mrn": "MRN-8"})).patient_id
    monkeypatch.setenv("CHARTLEDGER_PASSWORD", OWNER_PASSWORD)

    with served(practice) as url:
        owner_logs_in_remotely(practice, url, capsys)
        adopt = ["policies", "adopt", "--name", "adults-0y", "--adult-years", "0"]
        assert chartledger(["--server", url, *adopt, "--minor-years", "2"]) == 0
        assert "Adopted policy adults-0y version 1" in capsys.readouterr().out
        assert "409" in one_line_refusal(capsys, url, *adopt, "--minor-years", "1")
        assert chartledger(["--server", url, "policies", "list"]) == 0
        listed = capsys.readouterr().out
        assert "floor: adults 0y, minors 2y past majority at 18" in listed
        assert "adults-0y v1: majority 18; * 0y/2y" in listed

        # Rita proposes; the owner lists and approves on the command line.
        proposal = rita.propose_disposal(first, "adults-0y", 1)
        assert chartledger(["--server", url, "disposals", "list"]) == 0
        assert f"{proposal.proposal_id}  pending" in capsys.readouterr().out
        approve = ["disposals", "approve", str(proposal.proposal_id)]
        assert chartledger(["--server", url, *approve]) == 0
        assert "disposed under policy adults-0y v1" in capsys.readouterr().out
        assert "409" in one_line_refusal(capsys, url, *approve)

        # The owner proposes on the command line and cannot approve their own proposal.
        propose = ["disposals", "propose", str(second), "--policy", "adults-0y", "--version", "1"]
        assert chartledger(["--server", url, *propose]) == 0
        mine = UUID(capsys.readouterr().out.split()[2])
        assert "403" in one_line_refusal(capsys, url, "disposals", "approve", str(mine))
        assert "409" in one_line_refusal(
            capsys, url, *propose[:3], "--policy", "x", "--version", "1"
        )
    assert rita.approve_disposal(mine).patient_id == second
