"""domain/jobs.py: a job's kind is a lower-case word (never data: no names, ids or values in
it), its outcome one of three, and it ends once."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import EntryStateError, InvalidEntry
from domain.jobs import KINDS, Job

WORD = st.from_regex(r"[a-z][a-z-]{0,39}", fullmatch=True)


def begun(kind: str) -> Job:
    return Job.begin(job_id=uuid4(), kind=kind, started_by=uuid4(), started_at=datetime.now(UTC))


@given(WORD)
def test_a_lower_case_word_is_a_kind(kind: str) -> None:
    assert begun(kind).kind == kind


@given(st.text(min_size=0, max_size=60))
def test_anything_else_is_refused(kind: str) -> None:
    allowed = set(string.ascii_lowercase + "-")
    is_word = 0 < len(kind) <= 40 and kind[0].isascii() and kind[0].islower()
    if is_word and set(kind) <= allowed:
        assert begun(kind).kind == kind
    else:
        with pytest.raises(InvalidEntry):
            begun(kind)


def test_the_kinds_started_over_http_are_words_and_a_job_ends_once() -> None:
    for kind in KINDS:
        begun(kind)
    job = begun("production")
    with pytest.raises(InvalidEntry):
        job.end("done", datetime.now(UTC))
    job.end("failed", datetime.now(UTC), "urn:chartledger:problem:storage-full")
    assert job.outcome == "failed"
    with pytest.raises(EntryStateError):
        job.end("succeeded", datetime.now(UTC))
    events = job.collect_events()
    assert [type(e).__qualname__ for e in events] == ["Job.Started", "Job.Finished"]
    assert all(e.subjects == (f"user:{job.started_by}",) for e in events)
