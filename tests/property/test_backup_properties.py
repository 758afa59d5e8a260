"""The backup's encodings (docs/BACKUP_FORMAT.md): chunk records round-trip exactly, any change
to a file's bytes is refused, only canonical encodings are read, signing keys open only under
their master key and name, and the streamed roots equal the reference tree's."""

from __future__ import annotations

import functools
import hashlib
import tempfile
import uuid
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.backup_format import (
    EVENT_KEYS,
    EVENT_TYPES,
    BackupInvalid,
    FileEntry,
    RecordWriter,
    event_record,
    event_row,
    read_records,
)
from events.backup_keys import SigningKeyUnwrapError, unwrap_signing_key, wrap_signing_key
from events.backup_log import LogRoots
from events.keys import SigningKey
from tests import reference_merkle
from verify.records import head_bytes, leaf_bytes

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

rows = st.lists(
    st.tuples(
        st.uuids(version=4).map(str),
        st.integers(min_value=1, max_value=2**63 - 1),
        st.text(min_size=1, max_size=40),
        st.binary(max_size=300),
        st.binary(max_size=120),
    ),
    max_size=25,
)


def write(folder: Path, name: str, records: list[bytes]) -> FileEntry:
    writer = RecordWriter(folder, name)
    for record in records:
        writer.write(record)
    return writer.close()


def encoded(values: list[tuple[str, int, str, bytes, bytes]]) -> list[bytes]:
    return [
        event_record(position, stream, version, topic, state, leaf)
        for position, (stream, version, topic, state, leaf) in enumerate(values)
    ]


@SETTINGS
@given(values=rows)
def test_event_records_come_back_exactly_as_written(
    tmp_path_factory: pytest.TempPathFactory, values: list[tuple[str, int, str, bytes, bytes]]
) -> None:
    folder = tmp_path_factory.mktemp("chunks")
    entry = write(folder, "events/00000000.msgpack", encoded(values))
    back = [event_row(v, "record") for v in read_records(folder, entry, EVENT_KEYS, EVENT_TYPES)]
    assert [(r.stream, r.version, r.topic, r.state, r.leaf) for r in back] == values
    assert [r.position for r in back] == list(range(len(values)))
    assert entry.sha256 == hashlib.sha256(b"".join(encoded(values))).hexdigest()


@SETTINGS
@given(values=rows.filter(bool), data=st.data())
def test_any_changed_byte_of_a_file_is_refused(
    tmp_path_factory: pytest.TempPathFactory,
    values: list[tuple[str, int, str, bytes, bytes]],
    data: st.DataObject,
) -> None:
    folder = tmp_path_factory.mktemp("chunks")
    entry = write(folder, "events/00000000.msgpack", encoded(values))
    path = folder / entry.path
    original = path.read_bytes()
    index = data.draw(st.integers(min_value=0, max_value=len(original) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    changed = bytearray(original)
    changed[index] ^= flip
    path.write_bytes(bytes(changed))
    with pytest.raises(BackupInvalid):
        list(read_records(folder, entry, EVENT_KEYS, EVENT_TYPES))


@SETTINGS
@given(
    version=st.integers(min_value=1, max_value=127),
    order=st.permutations(list(EVENT_KEYS)).filter(lambda o: tuple(o) != EVENT_KEYS),
)
def test_only_canonical_records_are_read_even_when_the_hash_matches(
    tmp_path_factory: pytest.TempPathFactory, version: int, order: list[str]
) -> None:
    folder = tmp_path_factory.mktemp("chunks")
    value = {
        "leaf": b"l",
        "state": b"s",
        "topic": "t",
        "stream": str(uuid.UUID(int=7)),
        "version": version,
        "position": 0,
    }
    # Keys out of their canonical order.
    unordered = msgpack.packb({k: value[k] for k in order}, use_bin_type=True)
    # An integer in a wider form than it needs (uint 16 for a value below 128).
    canonical = event_record(0, value["stream"], version, "t", b"s", b"l")
    wide = canonical.replace(b"\xa7version" + bytes([version]),
                             b"\xa7version\xcd" + version.to_bytes(2, "big"))  # fmt: skip
    assert wide != canonical
    for data in (unordered, wide):
        (folder / "events").mkdir(exist_ok=True)
        (folder / "events" / "00000000.msgpack").write_bytes(data)
        entry = FileEntry("events/00000000.msgpack", hashlib.sha256(data).hexdigest(), len(data), 1)
        with pytest.raises(BackupInvalid, match=r"keys .* in order|canonical encoding"):
            list(read_records(folder, entry, EVENT_KEYS, EVENT_TYPES))


KEY = SigningKey.generate()


@functools.cache
def _pem() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "key.pem"
        KEY.save(path)
        return path.read_bytes()


@settings(max_examples=25, deadline=None)
@given(
    master=st.binary(min_size=32, max_size=32),
    other=st.binary(min_size=32, max_size=32),
    origin=st.text(min_size=1, max_size=30),
)
def test_a_signing_key_opens_only_under_its_master_key_and_as_itself(
    master: bytes, other: bytes, origin: str
) -> None:
    wrapped = wrap_signing_key(master, origin, KEY.key_id, _pem())
    assert unwrap_signing_key(master, origin, KEY.key_id, wrapped) == _pem()
    if other != master:
        with pytest.raises(SigningKeyUnwrapError):
            unwrap_signing_key(other, origin, KEY.key_id, wrapped)
    with pytest.raises(SigningKeyUnwrapError):
        unwrap_signing_key(master, origin + "x", KEY.key_id, wrapped)
    with pytest.raises(SigningKeyUnwrapError):
        unwrap_signing_key(master, origin, "0" * 64, wrapped)


POOL = ["patient:b", "patient:aa", "user:a", "user:0"]


@SETTINGS
@given(events=st.lists(st.lists(st.sampled_from(POOL), max_size=3, unique=True), max_size=40))
def test_streamed_roots_equal_the_reference_trees(events: list[list[str]]) -> None:
    roots = LogRoots()
    leaves, heads = [], {}
    for position, subjects in enumerate(events):
        subjects = sorted(subjects, key=str.encode)
        links = []
        for subject in subjects:
            seq, prev = heads.get(subject, (0, None))
            links.append((subject, seq + 1, prev))
            heads[subject] = (seq + 1, position)
        leaf = leaf_bytes(hashlib.sha256(str(position).encode()).digest(), links)
        leaves.append(leaf)
        roots.add(position, leaf, [list(link) for link in links])
    assert roots.root() == reference_merkle.mth(leaves)
    head_leaves = [
        head_bytes(s, seq, position)
        for s, (seq, position) in sorted(heads.items(), key=lambda kv: kv[0].encode())
    ]
    assert roots.subjects_root() == reference_merkle.mth(head_leaves)
