"""Hold notices through the real ledger and the file outbox, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

from events.ledger import Ledger
from legal_hold import holds as lh
from legal_hold.custodians import report
from legal_hold.holds import Scope
from legal_hold.notices import FileOutbox, send_due

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
RISK = uuid4()


def a_matter(ledger: Ledger, number: str = "CV-1") -> UUID:
    return lh.open_matter(ledger, name="A v. B", number=number, forum="Court", at=T0, by=RISK).id


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
