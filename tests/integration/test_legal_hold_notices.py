"""Hold notices through the real ledger and the file outbox, on SQLite and on PostgreSQL; a
delivery that fails, as the server's rounds track it for the hold report (a file in the home on
SQLite, a table of the store on PostgreSQL, read by the hold report on any host)."""

from __future__ import annotations

import os
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from api.cli import main as chartledger
from events.config import StoreConfig
from events.ledger import Ledger
from events.notice_failure_rows import TABLE as FAILURES_TABLE
from legal_hold import holds as lh
from legal_hold.custodians import report
from legal_hold.holds import Scope
from legal_hold.notice_failures import (
    FILE,
    DeliveryState,
    delivery_states,
    failing,
    record_round,
)
from legal_hold.notices import (
    FileOutbox,
    Notice,
    NoticesNotDelivered,
    OutboxError,
    send_due,
    send_due_alone,
)
from tests.support import QUIET

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
RISK = uuid4()


def a_matter(ledger: Ledger, number: str = "CV-1") -> UUID:
    return lh.open_matter(ledger, name="A v. B", number=number, forum="Court", at=T0, by=RISK).id


def a_hold_on_two_custodians(ledger: Ledger) -> tuple[lh.Hold, UUID, UUID]:
    """A hold with a notice on two custodians: (the hold, one to be reached, one not)."""
    reached, unreachable = uuid4(), uuid4()
    hold = lh.place_hold(
        ledger,
        matter_id=a_matter(ledger),
        name="Preserve",
        scope=Scope.of(custodians=[reached, unreachable]),
        at=T0,
        by=RISK,
        notice="Preserve every record.",
    )
    return hold, reached, unreachable


def test_notices_reissue_reminders_escalation_and_silent_holds_through_the_outbox(
    ledger: Ledger, tmp_path: Path
) -> None:
    fast, slow, quiet = uuid4(), uuid4(), uuid4()
    matter = a_matter(ledger)
    hold = lh.place_hold(
        ledger,
        matter_id=matter,
        name="Preserve cardiology",
        scope=Scope.of(custodians=[fast, slow], categories=["notes"]),
        at=T0,
        by=RISK,
        reminder_days=3,
        escalation_days=7,
        notice="Preserve every note about the matter.",
    )
    lh.place_hold(
        ledger,
        matter_id=matter,
        name="Quiet",
        scope=Scope.of(custodians=[quiet]),
        at=T0,
        by=RISK,
        silent=True,
    )
    outbox = FileOutbox(tmp_path / "outbox")
    sent = send_due(ledger, outbox, at=T0)
    assert {(s.due.custodian_id, s.due.kind) for s in sent} == {
        (fast, "notice"),
        (slow, "notice"),
    }
    assert send_due(ledger, outbox, at=T0 + DAY) == []  # recorded: not sent twice
    files = sorted((tmp_path / "outbox").iterdir())
    assert len(files) == 2 and not any(str(quiet) in f.name for f in files)
    lh.acknowledge(ledger, hold.id, custodian_id=fast, version=1, at=T0 + DAY)
    assert [
        (s.due.custodian_id, s.due.kind) for s in send_due(ledger, outbox, at=T0 + 3 * DAY)
    ] == [(slow, "reminder")]
    kinds = [s.due.kind for s in send_due(ledger, outbox, at=T0 + 7 * DAY)]
    assert sorted(kinds) == ["escalation", "reminder"]
    escalation = next(f for f in (tmp_path / "outbox").iterdir() if "-escalation-" in f.name)
    assert f"To: user:{RISK}" in escalation.read_text()

    # Re-issue: both must acknowledge version 2; version 1 and its acknowledgement stay.
    assert lh.issue_notice(ledger, hold.id, text="Also texts.", at=T0 + 8 * DAY, by=RISK) == 2
    assert {s.due.custodian_id for s in send_due(ledger, outbox, at=T0 + 8 * DAY)} == {fast, slow}
    lh.acknowledge(ledger, hold.id, custodian_id=slow, version=2, at=T0 + 9 * DAY)
    seen = report(lh.get_hold(ledger, hold.id), at=T0 + 9 * DAY)
    assert seen.outstanding == [fast]
    assert [(a["custodian_id"], a["version"]) for a in seen.acknowledgements] == [
        (fast, 1),
        (slow, 2),
    ]
    assert [n["version"] for n in seen.notices] == [1, 2]
    assert [c["change"] for c in seen.scope_history] == ["placed"]
    assert not any(str(quiet) in f.name for f in (tmp_path / "outbox").iterdir())


class RefusingFor:
    """An outbox that refuses the messages for some users and hands the rest to a real
    ``FileOutbox``: an SMTP server without their address, as ``SmtpOutbox`` refuses them."""

    def __init__(self, folder: Path, refused: set[UUID]) -> None:
        self.files = FileOutbox(folder)
        self.refused = refused

    def send(self, notice: Notice, *, at: datetime) -> str:
        if notice.to in self.refused:
            raise OutboxError(f"no e-mail address for user {notice.to}")
        return self.files.send(notice, at=at)


def test_a_failing_delivery_stops_no_other_is_tracked_until_it_goes_and_reaches_the_report(
    ledger: Ledger, tmp_path: Path
) -> None:
    hold, reached, unreachable = a_hold_on_two_custodians(ledger)
    home = ledger.config.home
    outbox = RefusingFor(tmp_path / "outbox", {unreachable})

    def states(at: datetime) -> dict[UUID, DeliveryState]:
        seen = report(lh.get_hold(ledger, hold.id), at=at)
        found = delivery_states(hold.id, seen.custodians, seen.due, failing(ledger), sends=True)
        return {s.custodian_id: s for s in found}

    assert {c: s.state for c, s in states(T0).items()} == {reached: "due", unreachable: "due"}
    for n, at in enumerate((T0, T0 + timedelta(minutes=1)), start=1):
        with pytest.raises(NoticesNotDelivered, match=r"^1 notice\(s\) not delivered") as e:
            send_due_alone(ledger, outbox, at=at, keep_going=True)
        assert [(d.custodian_id, d.kind, failure) for d, failure in e.value.failed] == [
            (unreachable, "notice", "OutboxError")
        ]
        record_round(ledger, e.value.failed, at=at)
        if ledger.db.dialect == "sqlite":
            assert stat.S_IMODE(os.stat(home / "status" / FILE).st_mode) == 0o600
        else:  # the group's, in the store: no file in any home
            assert not (home / "status" / FILE).exists()
            assert ledger.db.query(f"SELECT count(*) FROM {FAILURES_TABLE}") == [(1,)]
        now = states(at)
        assert now[reached].state == "sent"  # the other went out, the first time, once
        assert (now[unreachable].state, now[unreachable].tries) == ("failing", n)
        assert now[unreachable].failing_since == T0 and now[unreachable].failure == "OutboxError"
    assert [d.custodian_id for d in lh.get_hold(ledger, hold.id).deliveries] == [reached]

    # Without keep_going (holds remind), the first refusal ends the run with its own error.
    with pytest.raises(OutboxError) as first:
        send_due_alone(ledger, outbox, at=T0 + timedelta(minutes=2))
    assert type(first.value) is OutboxError

    outbox.refused.clear()  # the address is added: the next round delivers, and clears it
    at = T0 + timedelta(minutes=3)
    assert [s.due.custodian_id for s in send_due_alone(ledger, outbox, at=at)] == [unreachable]
    record_round(ledger, [], at=at)
    assert failing(ledger) == []
    assert {c: s.state for c, s in states(at).items()} == {reached: "sent", unreachable: "sent"}
    lh.acknowledge(ledger, hold.id, custodian_id=reached, version=1, at=at)
    assert states(at)[reached].state == "acknowledged"


def test_a_failure_no_longer_due_is_not_reported_and_a_silent_hold_sends_nothing(
    ledger: Ledger, tmp_path: Path
) -> None:
    custodian = uuid4()
    hold = lh.place_hold(
        ledger,
        matter_id=a_matter(ledger),
        name="Preserve",
        scope=Scope.of(custodians=[custodian]),
        at=T0,
        by=RISK,
        notice="Preserve every record.",
    )
    with pytest.raises(NoticesNotDelivered) as e:
        send_due(ledger, RefusingFor(tmp_path, {custodian}), at=T0, keep_going=True)
    record_round(ledger, e.value.failed, at=T0)
    # Sent since by someone else (a remind with a working outbox): not failing any more.
    send_due_alone(ledger, FileOutbox(tmp_path / "outbox"), at=T0)
    seen = report(lh.get_hold(ledger, hold.id), at=T0)
    (state,) = delivery_states(hold.id, seen.custodians, seen.due, failing(ledger), sends=True)
    assert state.state == "sent" and state.failure is None
    (state,) = delivery_states(hold.id, seen.custodians, seen.due, failing(ledger), sends=False)
    assert state.state == "none"


@pytest.mark.parametrize("store_config", ["postgres"], indirect=True)
def test_the_failures_of_a_round_sent_at_one_host_are_in_the_other_host_s_hold_report(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Host A sends the round (its ledger, its home); host B, a home of its own on the same
    store, reads the hold report: the custodian A could not reach is failing there too."""
    hold, reached, unreachable = a_hold_on_two_custodians(ledger)
    with pytest.raises(NoticesNotDelivered) as e:
        send_due_alone(
            ledger, RefusingFor(tmp_path / "outbox", {unreachable}), at=T0, keep_going=True
        )
    record_round(ledger, e.value.failed, at=T0)  # at A

    home_b = tmp_path / "b"
    home_b.mkdir(mode=0o700)
    shutil.copy2(ledger.config.home / "practice.json", home_b / "practice.json")
    shutil.copytree(ledger.config.home / "keys", home_b / "keys")
    at_b = Ledger(StoreConfig(home=home_b, database_url=ledger.config.database_url), **QUIET)
    try:
        assert failing(at_b) == failing(ledger) and len(failing(at_b)) == 1
    finally:
        at_b.close()
    monkeypatch.setenv("CHARTLEDGER_HOME", str(home_b))
    capsys.readouterr()
    assert chartledger(["holds", "report", str(hold.id)]) == 0
    lines = capsys.readouterr().out.splitlines()
    (failing_line,) = [line for line in lines if f"custodian {unreachable}" in line]
    assert failing_line.endswith(
        "delivery failing since 2026-03-02 09:00:00+00:00 (OutboxError, 1 tries)"
    )
    (sent_line,) = [line for line in lines if f"custodian {reached}" in line]
    assert sent_line.endswith("delivery sent")
