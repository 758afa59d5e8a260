"""projections/state_codec.py: a view row's state deflated against the fixed dictionary reads
back as exactly the canonical bytes it was given, rows written before (plain msgpack) read as
they are, and anything else under the marker is refused rather than read as a state."""

from __future__ import annotations

import hashlib
import zlib
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.encoding import CanonicalTranscoder
from projections import state_codec
from verify.canonical import format_timestamp

_transcoder = CanonicalTranscoder()
_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
_values = st.recursive(
    _scalars | st.binary() | st.uuids() | st.dates(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
states = st.dictionaries(st.text(), _values, max_size=12)


@given(states)
def test_a_state_reads_back_as_the_bytes_it_was_packed_from(state: dict[str, Any]) -> None:
    encoded = _transcoder.encode(state)
    packed = state_codec.pack(encoded)
    assert packed.startswith(state_codec.DEFLATED)
    assert state_codec.unpack(packed) == encoded
    assert state_codec.pack(encoded) == packed  # the same row however it is reached


@given(states)
def test_a_state_written_before_reads_as_it_is(state: dict[str, Any]) -> None:
    encoded = _transcoder.encode(state)  # a canonical map never starts with the marker
    assert not encoded.startswith(state_codec.DEFLATED)
    assert state_codec.unpack(encoded) == encoded


@given(st.binary(max_size=64))
def test_anything_else_under_the_marker_is_refused_or_read_whole(junk: bytes) -> None:
    try:
        out = state_codec.unpack(state_codec.DEFLATED + junk)
    except (ValueError, zlib.error):
        return
    # What inflates must be one whole stream: packing what came out gives back the same bytes
    # only if junk was a deflate stream against the dictionary; either way nothing trails it.
    inflater = zlib.decompressobj(-15, zdict=state_codec.DICTIONARY)
    assert inflater.decompress(junk) + inflater.flush() == out and inflater.eof


def test_trailing_bytes_after_the_stream_are_refused() -> None:
    packed = state_codec.pack(_transcoder.encode({"a": 1}))
    with pytest.raises(ValueError, match="one whole deflate stream"):
        state_codec.unpack(packed + b"x")
    with pytest.raises((ValueError, zlib.error)):
        state_codec.unpack(packed[:-2])


def test_a_lab_results_state_packs_to_a_fraction_of_its_size() -> None:
    state = {
        "_id": __import__("uuid").UUID(int=1), "_version": 1, "patient_id": None,
        "loinc_code": "2345-7", "test_name": "Glucose", "value": "5.2", "unit": "mg/dL",
        "reference_range": "3.9-5.5", "reference_low": None, "reference_high": None,
        "abnormal_flag": "N", "performing_lab": "Acme Lab", "collected_at": "202611200715",
        "source_message": None, "source_format": "HL7v2 ORU^R01", "source_segment": 4,
        "source_set_id": "1", "value_version": 1, "conversions": [],
        "history": [{"version": 1, "value": "5.2", "unit": "mg/dL"}],
    }  # fmt: skip
    encoded = _transcoder.encode(state)
    assert len(state_codec.pack(encoded)) < len(encoded) / 2


def test_the_dictionary_is_the_one_rows_were_deflated_against() -> None:
    """Rows deflated against another dictionary could no longer be read: a change to it (or to
    what builds it, the canonical encoding included) must come with a new marker byte."""
    digest = hashlib.sha256(state_codec.DICTIONARY).hexdigest()
    assert digest == "245163068ba9f235c948a1c4ffdba7dd9375defb34544b0eff6d783c9455f55f"


_rows = st.tuples(st.text(min_size=1), st.text())


@given(states, _rows)
def test_a_state_packed_with_its_rows_texts_reads_back_only_with_them(
    state: dict[str, Any], row: tuple[str, str]
) -> None:
    encoded = _transcoder.encode(state)
    packed = state_codec.pack(encoded, row)
    assert packed.startswith(state_codec.DEFLATED_WITH_ROW)
    assert state_codec.unpack(packed, row) == encoded
    assert state_codec.pack(encoded, row) == packed
    with pytest.raises(ValueError, match="needs the row's own texts"):
        state_codec.unpack(packed)


@given(st.uuids(), st.datetimes(timezones=st.just(UTC)))
def test_a_state_repeating_its_rows_id_and_time_packs_smaller_with_them(
    entry: UUID, first: datetime
) -> None:
    state = {"_id": entry, "_created_on": first, "_modified_on": first, "unit": "mg/dL"}
    encoded = _transcoder.encode(state)
    row = (str(entry), format_timestamp(first))  # the row's texts, as the ledger writes times
    assert len(state_codec.pack(encoded, row)) < len(state_codec.pack(encoded)) - 15
