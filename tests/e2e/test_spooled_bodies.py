"""Document uploads and imports reach their routes through the spool (``api/spool.py``): the
body arrives whole and exact, the spool folder is 0700 under umask 022, and nothing is left in
it after the request, answered or refused."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterator

import pytest

from api.client import Unprocessable
from api.spool import STALE_SECONDS
from tests.e2e.conftest import Practice, add_member


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_an_upload_arrives_exactly_and_leaves_nothing_in_the_spool(
    practice: Practice, umask_022: None
) -> None:
    clinician = add_member(practice, practice.owner(), "casey", "Casey", "clinician").client()
    content = bytes(range(256)) * 3_000  # 768,000 bytes, every byte value
    doc = clinician.upload_document(content, "scan.pdf", "application/pdf")
    assert (doc.sha256, doc.size) == (hashlib.sha256(content).hexdigest(), len(content))
    assert clinician.document(doc.document_id) == content
    spool = practice.settings.store.home / "spool"
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert list(spool.iterdir()) == []

    with pytest.raises(Unprocessable):  # a refused import is removed as well
        clinician.import_labs(b"MSH|^~\\&|not a result\r")
    with pytest.raises(Unprocessable):  # and a missing body is refused as before
        clinician.upload_document(b"", "empty.pdf", "application/pdf")
    assert list(spool.iterdir()) == []


def test_a_body_file_a_crashed_request_left_is_removed_by_a_later_request(
    practice: Practice,
) -> None:
    spool = practice.settings.store.home / "spool"
    spool.mkdir(mode=0o700, exist_ok=True)
    left, recent = spool / "crashed.body", spool / "in-flight.body"
    for path in (left, recent):
        path.write_bytes(b"PHI")
    a_day_ago = time.time() - STALE_SECONDS - 60
    os.utime(left, (a_day_ago, a_day_ago))
    clinician = add_member(practice, practice.owner(), "casey", "Casey", "clinician").client()
    clinician.upload_document(b"%PDF-1.4", "letter.pdf", "application/pdf")
    assert sorted(p.name for p in spool.iterdir()) == ["in-flight.body"]  # a live one stays
