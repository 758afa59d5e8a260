"""A lab import stopped part-way is finished, not doubled, by importing the file again, on both
stores (docs/IMPORTS.md §1, §4). A lab import writes in transactions of ``LAB_BATCH`` results so
other users go on meanwhile; a job cancelled, a server killed or a database lost between two of
them leaves the results written so far and no summary. Each message's Document and each of its
results has an id derived from the message (its bytes and patient) and the result's segment, so
importing the file again writes exactly what is missing, and the same message sent twice (in
one file or in two) is stored once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from typing import Any
from uuid import UUID

import pytest

from api.importing import LAB_BATCH, import_labs
from api.jobs.runner import JobCancelled
from domain.imports.summary import ImportRun
from domain.labs import LabResult
from domain.patients import Patient
from events.config import StoreConfig
from events.context import acting
from events.ledger import Ledger
from projections.chart import chart
from projections.runner import read_entries
from tests.integration.test_fhir_import import owner_of
from tests.support import init_practice, oru_r01

RESULTS = 7 * LAB_BATCH + 3  # the last batch a short one
RECEIVED = LabResult.Received


def logged(ledger: Ledger, kind: type) -> list[Any]:
    """The events of ``kind`` the log holds, oldest first."""
    return [e.event for e in read_entries(ledger, 0, limit=100_000) if isinstance(e.event, kind)]


def results_in_log(ledger: Ledger) -> Counter[tuple[UUID | None, int | None]]:
    """Each stored lab result's (document, segment), counted: one of each when nothing doubled."""
    return Counter((e.source_document_id, e.source_segment) for e in logged(ledger, RECEIVED))


def summaries(ledger: Ledger) -> list[Any]:
    return logged(ledger, ImportRun.Completed)


def stop_after(results: int) -> Callable[[int, int], None]:
    """A job's progress callback asked to cancel once ``results`` are done: the runner's own
    way of stopping an import between two of its transactions."""

    def progress(done: int, total: int) -> None:
        if done >= results:
            raise JobCancelled()

    return progress


@pytest.fixture
def ledger(store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config)
    yield ledger
    ledger.close()


def registered(ledger: Ledger, mrn: str) -> Patient:
    patient = Patient.register(
        mrn=mrn, given_name="Jane", family_name="Doe", birth_date=date(1980, 3, 14), sex="female"
    )
    with acting("system:test", "test"):
        ledger.save(patient)
    return patient


def test_an_import_stopped_part_way_is_finished_by_importing_the_file_again(
    ledger: Ledger,
) -> None:
    patient = registered(ledger, "MRN-R1")
    importer = owner_of(ledger)
    message = oru_r01("MRN-R1", RESULTS, control_id="RESUME01")
    stopped = replace(importer, progress=stop_after(3 * LAB_BATCH))
    with pytest.raises(JobCancelled):
        import_labs(stopped, message, "labs.hl7")
    assert sum(results_in_log(ledger).values()) == 3 * LAB_BATCH  # three batches, then stopped
    assert summaries(ledger) == []  # no summary: the import did not happen whole

    report = import_labs(importer, message, "labs.hl7")

    stored = results_in_log(ledger)
    (document,) = {doc for doc, _ in stored}
    assert stored == Counter({(document, segment): 1 for segment in range(4, RESULTS + 4)})
    assert len(report.created) == RESULTS - 3 * LAB_BATCH  # only what was missing
    (summary,) = summaries(ledger)
    (link,) = summary.links
    assert len(link["lab_ids"]) == len(set(link["lab_ids"])) == RESULTS  # names all of them
    importer.runner.catch_up_to()
    labs = [e for e in chart(ledger.db, patient.id) if e.kind == "LabResult"]
    assert sorted(e.entry_id for e in labs) == sorted(link["lab_ids"])


def test_the_same_message_twice_is_stored_once_and_another_message_is_not(
    ledger: Ledger,
) -> None:
    registered(ledger, "MRN-R2")
    importer = owner_of(ledger)
    message = oru_r01("MRN-R2", 4, control_id="TWICE01")
    other = oru_r01("MRN-R2", 4, control_id="OTHER01")  # the same results, another message

    first = import_labs(importer, message + message, "twice.hl7")
    again = import_labs(importer, message + other, "again.hl7")

    stored = results_in_log(ledger)
    assert len({doc for doc, _ in stored}) == 2 and set(stored.values()) == {1}
    assert len(stored) == 8
    assert len(first.created) == 1 + 4  # the document and its results, once
    assert len(again.created) == 1 + 4  # only the other message's
    assert len(summaries(ledger)) == 2  # each import is recorded, whatever it wrote


def test_two_imports_of_one_file_at_once_both_finish_and_store_each_result_once(
    ledger: Ledger,
) -> None:
    """Two users import the same file at the same instant: each reads what is stored before
    writing, so both may set out to write the same results. Forced here: A is overtaken after
    its first transaction by B, which finds that batch and writes all the rest; A's next batch
    is then already stored. Both finish, neither doubles a result, and each says what it wrote."""
    patient = registered(ledger, "MRN-R3")
    importer = owner_of(ledger)
    message = oru_r01("MRN-R3", RESULTS, control_id="RACE01")
    overtaken: dict[str, Any] = {}

    def b_overtakes_a(done: int, total: int) -> None:
        if done == LAB_BATCH and not overtaken:
            overtaken["b"] = import_labs(importer, message, "b.hl7")

    a = import_labs(replace(importer, progress=b_overtakes_a), message, "a.hl7")
    b = overtaken["b"]

    stored = results_in_log(ledger)
    (document,) = {doc for doc, _ in stored}
    assert stored == Counter({(document, segment): 1 for segment in range(4, RESULTS + 4)})
    assert len(a.created) == 1 + LAB_BATCH  # the document and its first batch
    assert len(b.created) == RESULTS - LAB_BATCH  # the rest
    assert len(summaries(ledger)) == 2
    importer.runner.catch_up_to()
    labs = [e for e in chart(ledger.db, patient.id) if e.kind == "LabResult"]
    assert len(labs) == RESULTS
