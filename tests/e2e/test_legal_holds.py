"""Legal holds and disposal over HTTP, on both stores: a risk manager (TOTP) opens a matter and
places a hold, the notice goes to the custodian through the outbox, the custodian acknowledges
it, disposal is refused under the hold (and the refusal is in the audit view), the hold is
released, disposal succeeds, the store still verifies and the disposed events keep their
metadata. Disposal takes two people under an adopted policy (tests/e2e/test_two_person_disposal.py
plays the attempts to do it alone): here the risk manager proposes and the owner approves."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from api.cli import main as chartledger
from api.client import Client, Conflict, Forbidden, NotFound, Unprocessable
from api.hold_schemas import DisposalOut, HoldIn, PolicyIn, RuleIn, ScopeIn
from tests.e2e.conftest import Practice
from tests.e2e.test_clinical import ada, in_care, staffed

POLICY = PolicyIn(name="adults-0y-test", adult_years=0, minor_years=0)


@pytest.fixture(autouse=True)
def no_floor(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A practice whose floor lets a record with activity today be disposed of (read by
    ``chartledger init``; autouse, so set before the practice fixture runs it)."""
    for name in ("ADULT_YEARS", "MINOR_YEARS"):
        monkeypatch.setenv(f"CHARTLEDGER_RETENTION_FLOOR_{name}", "0")
    yield


def dispose(proposer: Client, approver: Client, patient: UUID) -> DisposalOut:
    """Disposal as it is done: one person proposes under the adopted policy, another approves."""
    proposal = proposer.propose_disposal(patient, POLICY.name, 1)
    return approver.approve_disposal(proposal.proposal_id)


def test_a_hold_preserves_a_record_until_its_release_and_then_disposal_shreds_it(
    practice: Practice, capsys: pytest.CaptureFixture[str]
) -> None:
    owner, casey, risk = staffed(practice)
    casey_id, risk_id = casey.me().user_id, risk.me().user_id
    patient = casey.register_patient(ada()).patient_id
    in_care(owner, patient, casey)
    casey.draft_note(patient, "progress", "SECRET-HISTORY")

    # Risk managers only: an owner or a clinician is refused with a problem.
    for other in (owner, casey):
        with pytest.raises(Forbidden) as refused:
            other.open_matter("Doe v. Practice", "CV-2026-1")
        assert refused.value.type.endswith(":forbidden")
    matter = risk.open_matter("Doe v. Practice", "CV-2026-1", "Superior Court")
    hold = risk.place_hold(
        matter.matter_id,
        HoldIn(
            name="Doe records",
            scope=ScopeIn(patients=[patient], custodians=[casey_id]),
            notice="Preserve every record of the patient named in the matter.",
        ),
    )
    silent = risk.place_hold(
        matter.matter_id,
        HoldIn(name="quiet", scope=ScopeIn(patients=[patient], custodians=[casey_id]), silent=True),
    )
    assert hold.notice_version == 1 and silent.notice_version is None

    # The notice goes out through the outbox (files here); the silent hold sends nothing.
    sent = risk.remind()
    assert [(s.due.hold_id, s.due.custodian_id, s.due.kind) for s in sent] == [
        (hold.hold_id, casey_id, "notice")
    ]
    (eml,) = (practice.settings.store.home / "outbox").glob("*.eml")
    message = eml.read_text()
    assert str(hold.hold_id) in message and "CV-2026-1" in message
    assert "Quill" not in message and "SECRET" not in message
    assert risk.remind() == []  # nothing more is due now

    # The custodian sees their notice (not the silent hold) and acknowledges it themself.
    (mine,) = casey.my_holds()
    assert (mine.hold_id, mine.version, mine.acknowledged_at) == (hold.hold_id, 1, None)
    with pytest.raises(Conflict) as not_custodian:
        owner.acknowledge_hold(hold.hold_id, 1)
    assert not_custodian.value.type.endswith("notice-state")
    casey.acknowledge_hold(hold.hold_id, 1)
    report = risk.hold_report(hold.hold_id)
    assert [(a.custodian_id, a.version) for a in report.acknowledgements] == [(casey_id, 1)]
    assert report.outstanding == [] and [d.kind for d in report.deliveries] == ["notice"]
    with pytest.raises(Forbidden):
        casey.hold_report(hold.hold_id)

    # Re-issue: a new version to acknowledge; every version is kept.
    assert risk.issue_notice(hold.hold_id, "Preserve also the messages.").notice_version == 2
    assert risk.hold_report(hold.hold_id).outstanding == [casey_id]
    casey.acknowledge_hold(hold.hold_id, 2)

    # The policy allows disposal, but the holds win: 409, and the refusal is a ledger event.
    owner.adopt_policy(POLICY)
    (candidate,) = [c for c in risk.retention_run(POLICY.name, 1) if c.patient_id == patient]
    assert candidate.eligible and not candidate.disposable
    assert set(candidate.held_by) == {hold.hold_id, silent.hold_id}
    with pytest.raises(Conflict) as held:
        dispose(risk, owner, patient)
    assert held.value.type.endswith("under-legal-hold")
    assert "2 active legal hold" in held.value.problem["detail"]
    assert "Quill" not in str(held.value.problem)
    refusals = [
        r
        for r in risk.audit(user_id=risk_id)
        if r.event_type == "legal_hold.refusals:ProposalRefusal.Refused"
    ]
    assert [(r.outcome, r.user_id, r.data_category, r.patient_id) for r in refusals] == [
        ("failure", str(risk_id), "retention", str(patient))
    ]

    # Released (one partly, then both): disposal goes through.
    # 'quiet' no longer names the patient, but its custodian wrote in the record: it still holds.
    risk.release_hold(silent.hold_id, "not needed", patients=[patient], custodians=[])
    with pytest.raises(Conflict) as still:
        dispose(risk, owner, patient)
    assert "2 active legal hold" in still.value.problem["detail"]
    assert risk.release_hold(hold.hold_id, "settled").active is False
    risk.release_hold(silent.hold_id, "settled")
    disposal = dispose(risk, owner, patient)
    assert disposal.description.startswith(f"disposed under policy {POLICY.name} v1 on ")
    assert disposal.description.endswith(f"by user {owner.me().user_id}")
    with pytest.raises(Conflict) as twice:
        dispose(risk, owner, patient)
    assert twice.value.type.endswith("already-disposed")

    # The store still verifies, with the patient's payloads counted as disposed.
    capsys.readouterr()
    assert chartledger(["verify"]) == 0
    assert "4 disposed" in capsys.readouterr().out  # registration, MRN claim, care team, note

    # The disposed events keep their metadata in the audit view and read as disposed.
    rows = risk.audit(patient_id=patient)
    assert {"domain.patients:Patient.Registered", "domain.notes:Note.Drafted"} <= {
        r.event_type for r in rows
    }
    record = risk.disposed_record(patient)
    assert [e.type for e in record.events] == [
        "domain.patients:Patient.Registered",
        "domain.identifiers:MrnClaim.Claimed",
        "domain.care_team:CareAssignment.Assigned",
        "domain.notes:Note.Drafted",
    ]
    assert {e.disposal for e in record.events} == {disposal.description}
    assert risk.matters()[0].closed_at is None
    assert risk.close_matter(matter.matter_id, "settled").closed_at is not None


def test_every_hold_and_retention_route_is_for_risk_managers_and_checks_its_input(
    practice: Practice,
) -> None:
    owner, casey, risk = staffed(practice)
    casey_id = casey.me().user_id
    patient = casey.register_patient(ada()).patient_id
    matter = risk.open_matter("Roe v. Practice", "CV-2026-2")
    hold = risk.place_hold(
        matter.matter_id, HoldIn(name="custodian only", scope=ScopeIn(custodians=[casey_id]))
    )
    some = hold.hold_id
    owner.adopt_policy(POLICY)
    refused = [
        lambda c: c.open_matter("x", "y"),
        lambda c: c.matters(),
        lambda c: c.close_matter(matter.matter_id, "done"),
        lambda c: c.place_hold(
            matter.matter_id, HoldIn(name="h", scope=ScopeIn(all_patients=True))
        ),
        lambda c: c.holds(),
        lambda c: c.hold(some),
        lambda c: c.change_hold_scope(some, ScopeIn(patients=[patient]), "widen"),
        lambda c: c.issue_notice(some, "text"),
        lambda c: c.remind(),
        lambda c: c.hold_report(some),
    ]
    before = practice.leaves()
    for call in refused:
        for other in (owner, casey):
            with pytest.raises(Forbidden):
                call(other)
    # Retention runs, a disposed record and a hold's release: for owners too, not clinicians.
    for call in (
        lambda c: c.retention_run(POLICY.name, 1),
        lambda c: c.disposed_record(patient),
        lambda c: c.release_hold(some, "done"),
    ):
        with pytest.raises(Forbidden):
            call(casey)
    # Refused before anything is read or done: each refusal writes its one row, and nothing else
    # (issue 17: every access decision is an audit row).
    refusals = 2 * len(refused) + 3
    assert practice.leaves() == before + refusals
    rows = owner.audit(sort_by="position")[-refusals - 1 : -1]  # the last: this very query
    assert {r.event_type for r in rows} == {"domain.refusals:RoleRefusal.Refused"}
    assert {r.user_id for r in rows} == {str(owner.me().user_id), str(casey_id)}

    # Bad input: a 422 problem naming the field, never echoing the value.
    with pytest.raises(Unprocessable) as empty:
        risk.place_hold(matter.matter_id, HoldIn(name="empty", scope=ScopeIn()))
    assert empty.value.type.endswith("invalid-entry")
    with pytest.raises(Unprocessable):
        owner.adopt_policy(
            PolicyIn(
                name="p",
                adult_years=1,
                minor_years=1,
                rules={"x-rays": RuleIn(adult_years=1, minor_years=1)},
            )
        )
    with pytest.raises(NotFound):
        risk.hold(matter.matter_id)  # a matter's id is no hold's
    with pytest.raises(NotFound):
        risk.disposed_record(patient)  # never disposed of

    # Scope changes are kept over time; a closed matter takes no hold; holds list by matter.
    widened = risk.change_hold_scope(
        some, ScopeIn(patients=[patient], custodians=[casey_id]), "add"
    )
    assert widened.scope.patients == [patient]
    report = risk.hold_report(some)
    assert [c.change for c in report.scope_history] == ["placed", "changed"]
    assert [h.hold_id for h in risk.holds(matter_id=matter.matter_id, active=True)] == [some]
    with pytest.raises(Conflict) as open_holds:
        risk.close_matter(matter.matter_id, "settled")
    assert open_holds.value.type.endswith("matter-state")
    risk.release_hold(some, "settled")
    with pytest.raises(Conflict) as released:
        risk.issue_notice(some, "too late")
    assert released.value.type.endswith("hold-state")
    risk.close_matter(matter.matter_id, "settled")
    with pytest.raises(Conflict):
        risk.place_hold(matter.matter_id, HoldIn(name="late", scope=ScopeIn(patients=[patient])))

    # A patient the policy keeps is refused with its own problem type.
    keep = owner.adopt_policy(PolicyIn(name="adults-10y", adult_years=10, minor_years=10))
    with pytest.raises(Conflict) as early:
        risk.propose_disposal(patient, keep.name, keep.version)
    assert early.value.type.endswith("not-eligible") and "Quill" not in str(early.value.problem)
