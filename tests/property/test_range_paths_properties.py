"""The store check's fast path passes an event only when the precise path finds nothing wrong.

``_RangeWalk._fast_event`` answers "every check passes" with early exits and caches; anything
else goes to ``_check_event``, which words the problem. If the fast path ever said yes where
the precise path says no, a tampered event would pass unreported, so both run here on valid
events and on events changed byte by byte and value by value.
"""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from verify.canonical import encode
from verify.ranges import RangeResult, _RangeWalk
from verify.records import leaf_bytes

STREAM = "d76f48c9-e5c2-4ce0-82fc-a34441f85697"
SUBJECTS = ["patient:0001", "patient:0002", "user:07"]
POSITION = 40


def _header(subjects: list[str], version: int) -> dict:
    owner = subjects[0] if subjects else "practice"
    return {
        "key": f"{owner}#{'ab' * 16}",
        "type": "common:Chart.Noted",
        "actor": None,
        "format": 1,
        "sealed": b"",  # set from the sealed bytes
        "stream": STREAM,
        "session": None,
        "version": version,
        "original": None,
        "recorded": "2026-11-25T10:29:26.994331Z",
        "subjects": subjects,
        "commitment": b"\x07" * 32,
    }


def _event(subjects: list[str], version: int, links: list[list]) -> tuple[bytes, bytes]:
    sealed = b"nonce-and-ciphertext" * 3
    header = _header(subjects, version)
    header["sealed"] = hashlib.sha256(sealed).digest()
    header_bytes = encode(header)
    state = encode({"header": header_bytes, "sealed": sealed})
    digest = hashlib.sha256(header_bytes).digest()
    return state, leaf_bytes(digest, [tuple(link) for link in links])


def _walk(known: dict[str, tuple[int, int]]) -> _RangeWalk:
    walk = _RangeWalk(RangeResult(start=32, stop=32), [])
    walk.heads.update(known)
    return walk


def _both(state: bytes, leaf: bytes, known: dict[str, tuple[int, int]], version: int = 3):
    fast, slow = _walk(known), _walk(known)
    stream = STREAM.replace("-", "")
    passed = fast._fast_event(POSITION, stream, version, leaf, "common:Chart.Noted", state)
    slow._check_event(
        POSITION, f"position {POSITION}", stream, version, leaf, "common:Chart.Noted", state
    )
    return passed, fast, slow


def _agree(passed: bool, fast: _RangeWalk, slow: _RangeWalk) -> None:
    if passed:
        assert slow.result.problems == []
        assert fast.heads == slow.heads
        assert fast.links == slow.links
        assert fast.result.first_links == slow.result.first_links


subject_sets = st.lists(st.sampled_from(SUBJECTS), max_size=3, unique=True).map(sorted)


@st.composite
def events(draw: st.DrawFn) -> tuple[bytes, bytes, dict[str, tuple[int, int]]]:
    subjects = draw(subject_sets)
    known: dict[str, tuple[int, int]] = {}
    links = []
    for subject in subjects:
        if draw(st.booleans()):  # seen earlier in the range
            seq, prev = draw(st.integers(1, 50)), draw(st.integers(0, POSITION - 1))
            known[subject] = (seq, prev)
            links.append([subject, seq + 1, prev])
        else:
            seq = draw(st.integers(1, 50))
            links.append([subject, seq, None if seq == 1 else draw(st.integers(0, 39))])
    state, leaf = _event(subjects, 3, links)
    return state, leaf, known


@settings(max_examples=150, deadline=None)
@given(events())
def test_a_valid_event_passes_both_paths_alike(event: tuple) -> None:
    state, leaf, known = event
    passed, fast, slow = _both(state, leaf, known)
    assert passed
    _agree(passed, fast, slow)


@settings(max_examples=400, deadline=None)
@given(events(), st.booleans(), st.data())
def test_a_changed_byte_never_passes_the_fast_path_alone(
    event: tuple, in_leaf: bool, data: st.DataObject
) -> None:
    state, leaf, known = event
    target = bytearray(leaf if in_leaf else state)
    index = data.draw(st.integers(0, len(target) - 1))
    target[index] = data.draw(st.integers(0, 255).filter(lambda b: b != target[index]))
    if in_leaf:
        leaf = bytes(target)
    else:
        state = bytes(target)
    _agree(*_both(state, leaf, known))


odd_values = st.sampled_from(
    [None, True, False, 0, 1, -1, 2.0, 1.5, "", "x", b"", b"\x00" * 32, [], {}, [1], 10**19]
)


@settings(max_examples=400, deadline=None)
@given(events(), st.data(), odd_values)
def test_a_header_value_of_another_type_or_value_is_judged_alike(
    event: tuple, data: st.DataObject, value: object
) -> None:
    from verify.canonical import decode

    state, leaf, known = event
    record = decode(state)
    header = decode(record["header"])
    key = data.draw(st.sampled_from(sorted(header)))
    header[key] = value
    try:
        header_bytes = encode(header)
    except TypeError:
        return  # no canonical encoding (a float): cannot be stored canonically either
    forged = encode({"header": header_bytes, "sealed": record["sealed"]})
    _agree(*_both(forged, leaf, known))


@settings(max_examples=400, deadline=None)
@given(events(), st.data(), odd_values)
def test_a_leaf_link_value_of_another_type_or_value_is_judged_alike(
    event: tuple, data: st.DataObject, value: object
) -> None:
    import msgpack

    from verify.canonical import decode
    from verify.records import LEAF_KEYS

    state, leaf, known = event
    claimed = decode(leaf)
    if not claimed["links"]:
        return
    link = data.draw(st.sampled_from(claimed["links"]))
    link[data.draw(st.integers(0, 2))] = value
    # msgpack's own packer, so that floats survive into the bytes as a forger could write them
    forged = msgpack.packb({k: claimed[k] for k in LEAF_KEYS}, use_bin_type=True)
    _agree(*_both(state, forged, known))


@settings(max_examples=200, deadline=None)
@given(events(), st.integers(-2, 5))
def test_a_row_version_other_than_the_headers_is_judged_alike(event: tuple, version: int) -> None:
    state, leaf, known = event
    _agree(*_both(state, leaf, known, version=version))


@st.composite
def windows(draw: st.DrawFn) -> tuple[list[tuple], list[int]]:
    """Rows of consecutive events on one stream, their links chained, one of them perhaps
    changed by a byte; and checkpoint sizes among their positions."""
    count = draw(st.integers(1, 12))
    heads: dict[str, tuple[int, int]] = {}
    rows = []
    for i in range(count):
        position = POSITION + i
        subjects = draw(subject_sets)
        links = []
        for subject in subjects:
            seq, prev = heads.get(subject, (0, None))
            links.append([subject, seq + 1, prev])
            heads[subject] = (seq + 1, position)
        state, leaf = _event(subjects, i + 1, links)
        rows.append((position, STREAM.replace("-", ""), i + 1, leaf, "common:Chart.Noted", state,
                     position))  # fmt: skip
    if draw(st.booleans()):
        i = draw(st.integers(0, count - 1))
        column = draw(st.sampled_from([3, 5]))  # the leaf or the stored record
        target = bytearray(rows[i][column])
        index = draw(st.integers(0, len(target) - 1))
        target[index] = draw(st.integers(0, 255).filter(lambda b: b != target[index]))
        row = list(rows[i])
        row[column] = bytes(target)
        rows[i] = tuple(row)
    sizes = draw(st.lists(st.integers(POSITION + 1, POSITION + count), unique=True))
    return rows, sorted(sizes)


def _slow_only(walk: _RangeWalk, rows: list[tuple]) -> None:
    """What ``rows`` does, with every event sent down the slow path."""
    for row in rows:
        walk.hashes.append(hashlib.sha256(b"\x00" + row[3]).digest())
        walk._slow_event(*row)
        walk.next = row[0] + 1
        if walk.pending and walk.pending[-1] == walk.next:
            walk._checkpoints_due()


def _outcome(walk: _RangeWalk) -> tuple:
    walk.finish(walk.next)
    r = walk.result
    problems = [(where, type(e), str(e)) for where, e in r.problems]
    return (problems, r.events, r.first_links, r.at_sizes, r.tail_heads, r.heads, r.nodes,
            walk.links)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(windows())
def test_a_window_of_events_comes_out_as_from_the_slow_path_alone(window: tuple) -> None:
    rows, sizes = window
    fast = _RangeWalk(RangeResult(start=POSITION, stop=POSITION), sizes)
    fast.next = POSITION
    fast.rows(rows)
    slow = _RangeWalk(RangeResult(start=POSITION, stop=POSITION), sizes)
    slow.next = POSITION
    _slow_only(slow, rows)
    assert _outcome(fast) == _outcome(slow)


def _widened(value: object, target: int) -> bytes:
    """The canonical encoding of ``value`` except at its ``target``-th widenable item (in
    preorder), written in a longer form msgpack also reads: the same value, other bytes. For
    a positive integer that is a signed form where one of the same length exists."""
    import msgpack

    seen = -1

    def enc(v: object) -> bytes:
        nonlocal seen
        if v is None or type(v) is bool:
            return msgpack.packb(v)
        seen += 1
        wide = seen == target
        if type(v) is int:
            if not wide:
                return msgpack.packb(v)
            if 0 <= v < 2**15:
                return b"\xd1" + v.to_bytes(2, "big")  # int 16
            return b"\xd3" + v.to_bytes(8, "big", signed=True)  # int 64
        if type(v) in (str, bytes):
            raw = v.encode() if type(v) is str else v
            if not wide:
                return msgpack.packb(v, use_bin_type=True)
            if len(raw) < 256:
                code = b"\xda" if type(v) is str else b"\xc5"  # str 16, bin 16
                return code + len(raw).to_bytes(2, "big") + raw
            code = b"\xdb" if type(v) is str else b"\xc6"  # str 32, bin 32
            return code + len(raw).to_bytes(4, "big") + raw
        if type(v) is list:
            head = bytes([0x90 + len(v)]) if len(v) < 16 else b"\xdc" + len(v).to_bytes(2, "big")
            if wide:
                head = b"\xdc" + len(v).to_bytes(2, "big")  # array 16
            return head + b"".join(enc(item) for item in v)
        assert type(v) is dict
        head = b"\xde" + len(v).to_bytes(2, "big") if wide else bytes([0x80 + len(v)])  # map 16
        return head + b"".join(enc(k) + enc(item) for k, item in v.items())

    return enc(value)


def _widenable(value: object) -> int:
    if value is None or type(value) is bool:
        return 0
    if type(value) is list:
        return 1 + sum(map(_widenable, value))
    if type(value) is dict:
        return 1 + sum(_widenable(k) + _widenable(v) for k, v in value.items())
    return 1


@settings(max_examples=400, deadline=None)
@given(events(), st.sampled_from(["record", "header", "leaf"]), st.data())
def test_a_value_re_encoded_in_a_longer_form_is_judged_alike(
    event: tuple, part: str, data: st.DataObject
) -> None:
    # The hashes that cover the re-encoded bytes are recomputed, so only the canonical
    # checks can tell.
    from verify.canonical import decode

    state, leaf, known = event
    record = decode(state)
    header_bytes, claimed = record["header"], decode(leaf)
    if part == "header":
        header = decode(header_bytes)
        header_bytes = _widened(header, data.draw(st.integers(0, _widenable(header) - 1)))
        state = encode({"header": header_bytes, "sealed": record["sealed"]})
        claimed["event"] = hashlib.sha256(header_bytes).digest()
        leaf = encode(claimed)
    elif part == "record":
        state = _widened(record, data.draw(st.integers(0, _widenable(record) - 1)))
    else:
        leaf = _widened(claimed, data.draw(st.integers(0, _widenable(claimed) - 1)))
    passed, fast, slow = _both(state, leaf, known)
    assert not passed
    _agree(passed, fast, slow)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from([*SUBJECTS, "patient:0001", "Patient:0001", "patient:", "practice"]),
        min_size=1,
        max_size=4,
    )
)
def test_subjects_out_of_order_or_malformed_are_judged_alike_after_valid_ones(
    subjects: list[str],
) -> None:
    # The leaf links exactly the header's subjects, so only the subjects' own checks can
    # tell; a valid event of the same stream and key goes first, so that anything the fast
    # path remembers about them is at hand.
    valid = sorted(set(subjects) & set(SUBJECTS)) or ["patient:0001"]
    state, leaf = _event([valid[0]], 3, [[valid[0], 1, None]])
    assert _both(state, leaf, {})[0]
    header = _header([valid[0]], 3)
    header["subjects"] = subjects
    sealed = b"nonce-and-ciphertext" * 3
    header["sealed"] = hashlib.sha256(sealed).digest()
    header_bytes = encode(header)
    state = encode({"header": header_bytes, "sealed": sealed})
    links = [(subject, 1, None) for subject in subjects]
    leaf = leaf_bytes(hashlib.sha256(header_bytes).digest(), links)
    _agree(*_both(state, leaf, {}))


@settings(max_examples=300, deadline=None)
@given(
    events(),
    st.tuples(
        st.sampled_from(["0000", "0001", "1999", "2000", "2024", "2026", "9999"]),
        st.sampled_from(["00", "01", "02", "12", "13", "99"]),
        st.sampled_from(["00", "01", "28", "29", "30", "31", "32"]),
        st.sampled_from(["00", "23", "24", "99"]),
        st.sampled_from(["00", "59", "60"]),
        st.sampled_from(["00", "59", "60", "61"]),
        st.sampled_from(["000000", "999999", "123456"]),
    ),
    st.sampled_from(["Z", "z", "+", " "]),
)
def test_a_recorded_time_of_the_form_but_not_of_the_calendar_is_judged_alike(
    event: tuple, parts: tuple[str, ...], zone: str
) -> None:
    from verify.canonical import decode

    state, leaf, known = event
    record = decode(state)
    header = decode(record["header"])
    year, month, day, hour, minute, second, fraction = parts
    header["recorded"] = f"{year}-{month}-{day}T{hour}:{minute}:{second}.{fraction}{zone}"
    header_bytes = encode(header)
    forged = encode({"header": header_bytes, "sealed": record["sealed"]})
    claimed = decode(leaf)
    claimed["event"] = hashlib.sha256(header_bytes).digest()
    _agree(*_both(forged, encode(claimed), known))
