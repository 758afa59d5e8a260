"""The two-person disposal through the real ledger, on SQLite and on PostgreSQL: the approval
checks eligibility again on the record as it is then, and the approval and the disposal are one
append (both or neither)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.cli import main as chartledger
from domain.users import User
from events.config import StoreConfig
from events.ledger import Ledger
from legal_hold import holds as lh
from legal_hold.disposal_approvals import Actor, approve_disposal, get_proposal, propose_disposal
from legal_hold.errors import BelowFloor, NotEligible, UnderLegalHold
from legal_hold.holds import Scope
from legal_hold.policies import DEFAULT_FLOOR, Floor, adopt_policy, load_book
from legal_hold.retention import Policy, patient_record
from projections.runner import read_entries
from tests.integration.test_legal_hold import LATER, a_matter, a_patient
from tests.support import set_env

LIFETIME = timedelta(hours=72)


def people(ledger: Ledger) -> tuple[Actor, Actor]:
    risk = User.register(name="Rita Risk", role="risk_manager")
    owner = User.register(name="Olga Owner", role="owner")
    ledger.save(risk, owner)
    return Actor(risk.id, ("risk_manager",), True), Actor(owner.id, ("owner",), True)


def types_since(ledger: Ledger, start: int) -> list[str]:
    return [e.header.type for e in read_entries(ledger, start, limit=1_000)]


def size(ledger: Ledger) -> int:
    with ledger.db.read() as c:
        c.execute("SELECT COUNT(*) FROM ledger_leaves")
        return int(c.fetchone()[0])


def test_a_bare_practice_has_the_default_floor_recorded_with_its_first_adoption(
    ledger: Ledger,
) -> None:
    now = datetime.now(UTC)
    book = load_book(ledger, at=now)
    assert book.floor == DEFAULT_FLOOR and book.adoptions == []
    assert "legal_hold.policies:PolicyBook.FloorSet" not in types_since(ledger, 0)
    _, owner = people(ledger)
    with pytest.raises(BelowFloor):
        adopt_policy(ledger, Policy.simple("short", 6, 3), by=owner.user_id, at=now)
    before = size(ledger)
    adopted = adopt_policy(ledger, Policy.simple("state-10y", 10, 3), by=owner.user_id, at=now)
    assert types_since(ledger, before) == [
        "legal_hold.policies:PolicyBook.FloorSet",
        "legal_hold.policies:PolicyBook.PolicyAdopted",
    ]
    assert (adopted.version, load_book(ledger, at=now).policy("state-10y", 1)) == (1, adopted)


def test_init_records_the_floor_it_is_given(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(store_config, monkeypatch)
    assert chartledger(["init", "--floor-minor-years", "-1"]) == 2
    assert not store_config.practice_path.exists()  # refused before anything was made
    assert chartledger(["init", "--floor-adult-years", "10", "--floor-majority-age", "21"]) == 0
    ledger = Ledger(store_config)
    try:
        book = load_book(ledger, at=datetime.now(UTC))
        assert book.floor == Floor(adult_years=10, minor_years=3, majority_age=21)
        assert types_since(ledger, 0)[-1] == "legal_hold.policies:PolicyBook.FloorSet"
    finally:
        ledger.close()


def test_approval_checks_eligibility_again_and_disposes_only_with_its_approval(
    ledger: Ledger,
) -> None:
    risk, owner = people(ledger)
    now = datetime.now(UTC)
    adopt_policy(ledger, Policy.simple("adults-7y", 7, 3), by=owner.user_id, at=now)
    patient = a_patient(ledger)
    # Proposed as of eight years on, when the record is eligible; approved today, when it is
    # not: the approval is refused and recorded, nothing destroyed.
    proposal = propose_disposal(
        ledger,
        patient,
        policy_name="adults-7y",
        policy_version=1,
        actor=risk,
        at=LATER,
        lifetime=LIFETIME,
    )
    before = size(ledger)
    with pytest.raises(NotEligible):
        approve_disposal(ledger, proposal.id, actor=owner, at=now)
    assert types_since(ledger, before) == ["legal_hold.refusals:ApprovalRefusal.Refused"]
    assert patient_record(ledger, patient).live_keys
    assert get_proposal(ledger, proposal.id).state(now) == "pending"

    # A hold placed since: refused at execution, as a DisposalRefusal.
    matter = a_matter(ledger)
    hold = lh.place_hold(
        ledger,
        matter_id=matter,
        name="h",
        scope=Scope.of(patients=[patient]),
        at=now,
        by=risk.user_id,
    )
    before = size(ledger)
    with pytest.raises(UnderLegalHold):
        approve_disposal(ledger, proposal.id, actor=owner, at=LATER)
    assert types_since(ledger, before) == ["legal_hold.retention:DisposalRefusal.Refused"]
    lh.release_hold(ledger, hold.id, reason="settled", at=now, by=risk.user_id)

    before = size(ledger)
    disposal = approve_disposal(ledger, proposal.id, actor=owner, at=LATER)
    assert sorted(types_since(ledger, before)) == [
        "legal_hold.disposal_approvals:DisposalProposal.Approved",
        "legal_hold.retention:Disposal.Disposed",
        "legal_hold.retention:DisposalRegister.Listed",
        "legal_hold.retention:DisposalRegister.Started",  # the practice's first disposal
    ]
    assert disposal.proposal_id == proposal.id and disposal.by == owner.user_id
    assert not patient_record(ledger, patient).live_keys
    done = get_proposal(ledger, proposal.id)
    assert (done.state(LATER), done.approved_by, done.disposal_id) == (
        "approved",
        owner.user_id,
        disposal.id,
    )
