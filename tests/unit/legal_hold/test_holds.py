"""Matters, holds, notices and the reminder schedule, on in-memory persistence (no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from legal_hold.custodians import due, status
from legal_hold.errors import (
    HoldStateError,
    InvalidHoldEntry,
    MatterStateError,
    NoticeStateError,
)
from legal_hold.holds import Hold, Scope
from legal_hold.matters import Matter
from tests.unit.domain.memory import assert_round_trips, new_memory, subjects

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
RISK = uuid4()


def a_hold(**scope) -> Hold:  # type: ignore[no-untyped-def]
    return Hold.place(
        matter_id=uuid4(), name="Smith v. Clinic", scope=Scope.of(**scope), at=T0, by=RISK
    )


def test_a_matter_is_opened_and_closed_once() -> None:
    memory = new_memory()
    matter = Matter.open(
        name="Smith v. Clinic", number="CV-26-001", forum="Superior Court", at=T0, by=RISK
    )
    matter.close(reason="settled", at=T0 + DAY, by=RISK)
    with pytest.raises(MatterStateError, match="already closed"):
        matter.close(reason="again", at=T0 + 2 * DAY, by=RISK)
    (loaded,) = assert_round_trips(memory, matter)
    assert (loaded.closed_at, loaded.is_open) == (T0 + DAY, False)
    assert subjects(memory, matter) == {()}


def test_a_matter_needs_a_name_and_an_aware_time() -> None:
    with pytest.raises(InvalidHoldEntry, match="name"):
        Matter.open(name=" ", number="1", forum=None, at=T0, by=RISK)
    with pytest.raises(InvalidHoldEntry, match="at must be a timezone-aware"):
        Matter.open(name="M", number="1", forum=None, at=T0.replace(tzinfo=None), by=RISK)


def test_a_scope_names_someone_and_its_dates_run_forward() -> None:
    with pytest.raises(InvalidHoldEntry, match="at least one patient or custodian"):
        Scope.of(categories=["notes"])
    with pytest.raises(InvalidHoldEntry, match="end is before start"):
        Scope.of(patients=[uuid4()], start=date(2026, 2, 1), end=date(2026, 1, 1))
    with pytest.raises(InvalidHoldEntry, match="categories"):
        Scope.of(patients=[uuid4()], categories=["gossip"])


def test_hold_events_concern_its_custodians_and_never_its_patients() -> None:
    memory = new_memory()
    patient, custodian = uuid4(), uuid4()
    hold = a_hold(patients=[patient], custodians=[custodian])
    (loaded,) = assert_round_trips(memory, hold)
    assert subjects(memory, hold) == {(f"user:{custodian}",)}
    assert loaded.covers(patient) and not loaded.covers(uuid4())


def test_scope_changes_are_kept_over_time_and_partial_release_narrows_it() -> None:
    memory = new_memory()
    p1, p2, p3, custodian = uuid4(), uuid4(), uuid4(), uuid4()
    hold = a_hold(patients=[p1], custodians=[custodian])
    hold.change_scope(
        scope=Scope.of(patients=[p1, p2, p3], custodians=[custodian]),
        reason="amended complaint",
        at=T0 + DAY,
        by=RISK,
    )
    hold.release(patients=[p2], reason="dismissed as to p2", at=T0 + 2 * DAY, by=RISK)
    (loaded,) = assert_round_trips(memory, hold)
    assert [h.change for h in loaded.history] == ["placed", "changed", "partly released"]
    assert [len(h.scope.patients) for h in loaded.history] == [1, 3, 2]
    assert loaded.covers(p1) and loaded.covers(p3) and not loaded.covers(p2)
    with pytest.raises(HoldStateError, match="does not name"):
        loaded.release(patients=[p2], reason="again", at=T0 + 3 * DAY, by=RISK)


def test_a_full_release_ends_the_hold_and_nothing_changes_afterwards() -> None:
    p = uuid4()
    hold = a_hold(patients=[p])
    with pytest.raises(HoldStateError, match="empty scope"):
        hold.release(patients=[p], reason="r", at=T0 + DAY, by=RISK)
    hold.release(reason="matter settled", at=T0 + DAY, by=RISK)
    assert not hold.active and not hold.covers(p)
    with pytest.raises(HoldStateError, match="was released"):
        hold.change_scope(scope=Scope.of(patients=[uuid4()]), reason="r", at=T0 + DAY, by=RISK)


def test_reissue_needs_a_new_acknowledgement_and_keeps_every_version() -> None:
    memory = new_memory()
    custodian = uuid4()
    hold = a_hold(custodians=[custodian])
    assert hold.issue_notice(text="Preserve everything about the matter.", at=T0, by=RISK) == 1
    hold.record_delivery(custodian_id=custodian, kind="notice", at=T0)
    hold.acknowledge(custodian_id=custodian, version=1, at=T0 + DAY)
    assert not status(hold)[0].outstanding
    assert hold.issue_notice(text="Also preserve text messages.", at=T0 + 2 * DAY, by=RISK) == 2
    assert status(hold)[0].outstanding
    with pytest.raises(NoticeStateError, match="not the current one"):
        hold.acknowledge(custodian_id=custodian, version=1, at=T0 + 3 * DAY)
    hold.record_delivery(custodian_id=custodian, kind="notice", at=T0 + 2 * DAY)
    hold.acknowledge(custodian_id=custodian, version=2, at=T0 + 3 * DAY)
    (loaded,) = assert_round_trips(memory, hold)
    assert [n.text for n in loaded.notices] == [
        "Preserve everything about the matter.",
        "Also preserve text messages.",
    ]
    assert [(a.version, a.at) for a in loaded.acknowledgements] == [
        (1, T0 + DAY),
        (2, T0 + 3 * DAY),
    ]
    with pytest.raises(NoticeStateError, match="already acknowledged"):
        loaded.acknowledge(custodian_id=custodian, version=2, at=T0 + 4 * DAY)
    with pytest.raises(NoticeStateError, match="not a custodian"):
        loaded.acknowledge(custodian_id=uuid4(), version=2, at=T0 + 4 * DAY)


def test_a_silent_hold_issues_no_notice_and_has_nothing_due() -> None:
    hold = Hold.place(
        matter_id=uuid4(),
        name="Internal review",
        scope=Scope.of(custodians=[uuid4()]),
        at=T0,
        by=RISK,
        silent=True,
    )
    with pytest.raises(HoldStateError, match="silent"):
        hold.issue_notice(text="Preserve.", at=T0, by=RISK)
    assert due(hold, at=T0 + 365 * DAY) == []


def test_reminders_and_escalation_fall_due_at_the_right_times() -> None:
    fast, slow = uuid4(), uuid4()
    hold = Hold.place(
        matter_id=uuid4(),
        name="Smith v. Clinic",
        scope=Scope.of(custodians=[fast, slow]),
        at=T0,
        by=RISK,
        reminder_days=3,
        escalation_days=7,
    )
    assert due(hold, at=T0) == []  # nothing issued yet
    hold.issue_notice(text="Preserve.", at=T0, by=RISK)
    assert {(d.custodian_id, d.kind) for d in due(hold, at=T0)} == {
        (fast, "notice"),
        (slow, "notice"),
    }
    for custodian in (fast, slow):
        hold.record_delivery(custodian_id=custodian, kind="notice", at=T0)
    hold.acknowledge(custodian_id=fast, version=1, at=T0 + DAY)
    assert due(hold, at=T0 + 3 * DAY - timedelta(seconds=1)) == []
    (reminder,) = due(hold, at=T0 + 3 * DAY)
    assert (reminder.custodian_id, reminder.kind, reminder.since) == (
        slow,
        "reminder",
        T0 + 3 * DAY,
    )
    hold.record_delivery(custodian_id=slow, kind="reminder", at=T0 + 3 * DAY)
    assert due(hold, at=T0 + 6 * DAY - timedelta(seconds=1)) == []
    assert [d.kind for d in due(hold, at=T0 + 6 * DAY)] == ["reminder"]
    hold.record_delivery(custodian_id=slow, kind="reminder", at=T0 + 6 * DAY)
    assert [d.kind for d in due(hold, at=T0 + 7 * DAY)] == ["escalation"]
    hold.record_delivery(custodian_id=slow, kind="escalation", at=T0 + 7 * DAY)
    assert due(hold, at=T0 + 8 * DAY) == []  # escalated once per version
    assert [d.kind for d in due(hold, at=T0 + 9 * DAY)] == ["reminder"]
    hold.acknowledge(custodian_id=slow, version=1, at=T0 + 9 * DAY)
    assert due(hold, at=T0 + 90 * DAY) == []
    # A re-issue starts over for everyone, the fast custodian included.
    hold.issue_notice(text="Preserve more.", at=T0 + 10 * DAY, by=RISK)
    assert {(d.custodian_id, d.kind, d.version) for d in due(hold, at=T0 + 10 * DAY)} == {
        (fast, "notice", 2),
        (slow, "notice", 2),
    }
    hold.release(reason="settled", at=T0 + 11 * DAY, by=RISK)
    assert due(hold, at=T0 + 90 * DAY) == []
