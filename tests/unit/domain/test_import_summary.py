"""domain/imports/summary.py: a lab import's summary lists each record it created once (its
results under their message's link, not in ``created`` as well), and a version 1 summary, which
listed them twice, reads the same way."""

from __future__ import annotations

from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent

from domain.imports.summary import ImportRun
from tests.unit.domain.memory import Memory


def lab_summary(patients: list[UUID], document: UUID, labs: list[UUID]) -> ImportRun:
    link = {"location": "message 1", "document_id": document, "document_sha256": "ab",
            "lab_ids": labs}  # fmt: skip
    return ImportRun.complete(
        kind="labs", source_name="x.hl7", source_sha256="ab", items=1, rejections=[],
        created=[*patients, document, *labs], accept_valid=False, by=uuid4(), links=[link],
    )  # fmt: skip


def test_a_lab_import_lists_each_result_once_under_its_link(memory: Memory) -> None:
    other, document, labs = uuid4(), uuid4(), [uuid4(), uuid4()]
    summary = lab_summary([other], document, labs)
    memory.save(summary)
    again = memory.repository.get(summary.id)
    assert again.created == [other, document]
    assert again.links[0]["lab_ids"] == labs
    assert again.all_created == [other, document, *labs]


def test_a_version_1_summary_listing_results_twice_reads_them_once(memory: Memory) -> None:
    document, labs = uuid4(), [uuid4(), uuid4()]
    summary = lab_summary([], document, labs)
    memory.save(summary)
    [stored] = memory.recorder.select_events(summary.id)
    state = memory.mapper.transcoder.decode(stored.state)
    assert state.pop("class_version") == 2
    state["created"] = [document, *labs]  # as version 1 wrote it
    old = StoredEvent(
        originator_id=uuid4(),
        originator_version=1,
        topic=stored.topic,
        state=memory.mapper.transcoder.encode(state),
    )
    memory.recorder.insert_events([old])
    again = memory.repository.get(old.originator_id)
    assert again.created == [document]
    assert again.all_created == [document, *labs]
