"""How a view row keeps an aggregate's encoded state: deflated against a fixed dictionary.

A chart row's state is the canonical msgpack of its aggregate, most of it the same field names
and type tags in every row (``_created_on``, ``{"_data_": ..., "_type_": "uuid"}``, ...): a lab
result's 675 bytes deflate to about 166 against a dictionary of them, where deflating each row on
its own saves a third (issue 17: the 20,000 results of one import took 13 MB of chart state,
now 3.3 MB). A view is not the record (the ledger is, and the view can be rebuilt from it),
so this changes nothing the ledger proves.

A deflated state starts with ``DEFLATED`` (``Z``) or ``DEFLATED_WITH_ROW`` (``Y``), bytes no
canonical msgpack map begins with (maps start 0x80-0x8f, 0xde or 0xdf), so rows written before
them, plain msgpack, read as ever.
``DICTIONARY`` may never change: rows deflated against it could no longer be read (so it is
built from literals, and the canonical encoding, which docs/LEDGER_FORMAT.md fixes). A new one
would take a new marker byte.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

import msgpack

from events.encoding import CanonicalTranscoder

DEFLATED = b"Z"
# Deflated against the dictionary followed by texts of the row itself (a chart row's entry id,
# patient id and first recorded time), which its state repeats (``_id``, ``patient_id``,
# ``_created_on``) and deflate cannot otherwise find in a state of its own: about 50 bytes of a
# lab result's 156 (issue 17). Only what a row never changes once written may be used.
DEFLATED_WITH_ROW = b"Y"
# The names and tags aggregates' states repeat, packed as msgpack strings as the states carry
# them; deflate finds nearer (cheaper) matches at the end, so the commonest come last.
_WORDS = (
    "addenda", "author_id", "code", "code_system", "content", "dose_unit", "dose_value", "drug",
    "frequency", "in_error", "kind", "measured_at", "measured_by", "media_type", "name",
    "original_filename", "prescriber_id", "route", "signed_at", "signed_by", "size",
    "source_created", "source_modified", "started_on", "stopped_on", "text", "uploader_id",
    "birth_date", "family_name", "given_name", "identifiers", "mrn", "sex", "date", "decimal",
    "abnormal_flag", "collected_at", "conversions", "reference_high", "reference_low",
    "reference_range", "performing_lab", "source_message", "source_format", "HL7v2 ORU^R01",
    "source_segment", "source_set_id", "source_document_id", "value_version", "loinc_code",
    "test_name", "history", "version", "unit", "value", "patient_id",
    "_modified_on", "_created_on", "datetime", "_version", "_id", "_data_", "_type_", "uuid",
)  # fmt: skip
# A lab result's state in full, its values stand-ins: a row then costs little more than its own
# ids, times and values (about 170 bytes where the words alone leave 270).
_LAB = {
    "_id": UUID(int=0), "unit": "mg/dL", "value": "0.0",
    "history": [{"unit": "mg/dL", "value": "0.0", "version": 1}], "_version": 1,
    "test_name": "Glucose", "loinc_code": "2345-7", "patient_id": UUID(int=0),
    "_created_on": datetime(2026, 1, 1, tzinfo=UTC), "conversions": [],
    "_modified_on": datetime(2026, 1, 1, tzinfo=UTC), "collected_at": "20260101000000",
    "abnormal_flag": "N", "reference_low": None, "source_format": "HL7v2 ORU^R01",
    "source_set_id": "1", "value_version": 1, "performing_lab": "Lab", "reference_high": None,
    "source_message": None, "source_segment": 1, "reference_range": None,
    "source_document_id": UUID(int=0),
}  # fmt: skip
DICTIONARY: bytes = b"".join(msgpack.packb(word) for word in _WORDS) + CanonicalTranscoder().encode(
    _LAB
)
_LEVEL = 6  # level 9 saves under 1% more here, at twice the time


def pack(encoded: bytes, row: Sequence[str] = ()) -> bytes:
    """``encoded`` (canonical msgpack) as a row keeps it: deterministic for the same bytes.
    ``row``: texts of the row that never change once it is written (its key, its first time),
    which ``unpack`` must then be given the same."""
    marker, dictionary = (DEFLATED_WITH_ROW, _with_row(row)) if row else (DEFLATED, DICTIONARY)
    deflater = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, dictionary)
    return marker + deflater.compress(encoded) + deflater.flush()


def _with_row(row: Sequence[str]) -> bytes:
    # Packed as msgpack strings, as the state carries them; nearest (cheapest) at the end.
    return DICTIONARY + b"".join(msgpack.packb(text) for text in row)


def unpack(stored: bytes, row: Sequence[str] = ()) -> bytes:
    """The canonical msgpack a row keeps, deflated (``pack``, with the same ``row``) or as rows
    were written before."""
    if stored.startswith(DEFLATED_WITH_ROW):
        if not row:
            raise ValueError("a view row's state needs the row's own texts to be read")
        dictionary = _with_row(row)
    elif stored.startswith(DEFLATED):
        dictionary = DICTIONARY
    else:
        return stored
    inflater = zlib.decompressobj(-15, zdict=dictionary)
    encoded = inflater.decompress(stored[1:]) + inflater.flush()
    if not inflater.eof or inflater.unused_data:
        raise ValueError("a view row's state is not one whole deflate stream")
    return encoded
