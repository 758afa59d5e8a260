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
