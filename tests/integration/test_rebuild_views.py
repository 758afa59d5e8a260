"""Replaying the views, on SQLite and on PostgreSQL: in two processes, and with what the chart
keeps from one batch to the next, the views come out as the live ones, row for row."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from itertools import pairwise
from uuid import uuid4

import pytest

from domain.notes import Note
from domain.patients import Patient
from events.context import acting
from events.ledger import Ledger
from projections import runner as runner_module
from projections.chart import ChartView
from projections.rebuild import rebuild, runner_for
from projections.runner import Runner, read_entries
from tests.integration.test_clinical_views import snapshot

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def a_practice_at_work(ledger: Ledger, patients: int = 6) -> list[Note]:
    """Patients, and notes drafted, edited, signed and amended over several saves."""
    author = uuid4()
    notes = []
    with acting(f"user:{author}", "s-1"):
        for i in range(patients):
            patient = Patient.register(
                mrn=f"MRN-{i}", given_name="Ada", family_name="Quill", birth_date=AT.date(),
                sex="female",
            )  # fmt: skip
            note = Note.draft(patient_id=patient.id, author_id=author, kind="progress", text="a")
            ledger.save(patient, note)
            notes.append(note)
        for note in notes:
            note.edit("b")
        ledger.save(*notes)
        for note in notes:
            note.sign(signed_by=author, at=AT)
        ledger.save(*notes)
        for note in notes:
            note.add_addendum(text="c", reason="late entry", author_id=author, at=AT)
        ledger.save(*notes)
    return notes


@pytest.mark.parametrize("other_thread", [False, True], ids=["alone", "beside-a-thread"])
def test_a_replay_in_two_processes_equals_the_live_views_row_for_row(
    ledger: Ledger, other_thread: bool
) -> None:
    """Forked, or (with another thread running, as beside a connection pool's) started from
    the fork server: the same views either way."""
    a_practice_at_work(ledger)
    runner = runner_for(ledger)
    size = runner.catch_up()
    live = snapshot(ledger)
    stop = threading.Event()
    waiting = threading.Thread(target=stop.wait)
    if other_thread:
        waiting.start()
    try:
        assert rebuild(ledger, workers=2) == size
        assert snapshot(ledger) == live
        assert set(runner.positions().values()) == {size}
        assert rebuild(ledger, ["chart", "audit"], workers=2) == size
        assert snapshot(ledger) == live
    finally:
        stop.set()
        if other_thread:
            waiting.join()


def test_the_chart_kept_from_batch_to_batch_equals_the_chart_read_back_from_the_store(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small batches, so each entry changes in several of them."""
    a_practice_at_work(ledger)
    runner_for(ledger).catch_up()
    live = snapshot(ledger)
    monkeypatch.setattr(runner_module, "BATCH", 5)
    runner = Runner(ledger, [ChartView()])
    runner.rebuild()
    assert snapshot(ledger)["chart_entries"] == live["chart_entries"]


def test_what_the_chart_kept_is_not_used_after_another_runner_moved_the_view(
    ledger: Ledger,
) -> None:
    """Runner one applies a batch, runner two the next (a note is signed), runner one the
    third (it is amended): runner one must fold the third from the store's rows, which hold
    the signing, not from what it kept after the first."""
    notes = a_practice_at_work(ledger, patients=2)
    live_runner = runner_for(ledger)
    live_runner.catch_up()
    live = snapshot(ledger)["chart_entries"]
    size = live_runner.positions()["chart"]
    one, two = Runner(ledger, [ChartView()]), Runner(ledger, [ChartView()])
    one.reset()
    signed_at = _position_after(ledger, notes, "Note.Signed")
    cuts = [0, signed_at - 1, signed_at + 1, size]  # the signings fall in the second batch
    for runner, (start, stop) in zip((one, two, one), pairwise(cuts), strict=True):
        entries = list(read_entries(ledger, start, stop - start))
        assert [e.position for e in entries] == list(range(start, stop))
        runner._apply(runner.positions(), entries)
    assert snapshot(ledger)["chart_entries"] == live


def _position_after(ledger: Ledger, notes: list[Note], event: str) -> int:
    """One past the position of the last ``event`` of the notes."""
    ids = {str(n.id) for n in notes}
    found = [
        e.position
        for e in read_entries(ledger, 0, 10_000)
        if e.header.stream in ids and e.header.type.endswith(event)
    ]
    return max(found) + 1
