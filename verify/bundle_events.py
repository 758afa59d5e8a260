"""Checking a bundle's event records (docs/BUNDLE_FORMAT.md §5), each on its own, spread over
worker processes when there are many.

Each record is checked without the others, so the records are split into spans of frames and
checked in parallel; what comes back per record is only what the later checks need (its
position, status, leaf hash and links), never its payload.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple

from verify import bundle_format as bf
from verify.bundle_scope import SECRET_EVENT_TYPES, expected_owner, key_owner
from verify.errors import MalformedInput, VerificationError
from verify.hashing import commitment, event_digest, short
from verify.merkle import leaf_hash
from verify.records import Link, parse_header, parse_leaf

PARALLEL_AFTER = 20_000  # records; fewer are checked faster than a pool starts
SPAN = 5_000  # records per job

Progress = Callable[[int, int], None]
Frame = tuple[int, int, int]  # (offset of the frame, start of the record, end of the record)
# fixmap, map 16, map 32: the payload is a map (LEDGER_FORMAT.md §4.2); its commitment binds it.
MAP_HEADERS = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])


class Checked(NamedTuple):
    position: int
    status: str
    leaf_hash: bytes
    links: tuple[Link, ...]
    offset: int  # of the record's frame in events.bin
    # What the scope and disposal checks (verify.bundle_scope) need of the header.
    type: str
    recorded: str
    key: str
    stream: str
    version: int
    commitment: bytes
    subjects: tuple[str, ...]


class Outcome(NamedTuple):
    checked: Checked | None  # None when the record failed
    item: str
    text: str
    # Rules of the record alone that do not make it unusable for the proofs (§10 rules 26-27):
    # each a FAIL line of its own, while the record still counts for inclusion and completeness.
    problems: tuple[str, ...] = ()


# What forked workers read: set before the pool forks, so the bytes are shared, not copied.
_shared: tuple[bytes, list[Frame], Mapping[int, str]] | None = None


def frames(data: bytes) -> tuple[list[Frame], str | None]:
    """Every frame of events.bin, and what broke the framing (the records after it are lost)."""
    found: list[Frame] = []
    try:
        for offset, raw in bf.iter_frames(data):
            start = offset + bf.FRAME.size
            found.append((offset, start, start + len(raw)))
    except MalformedInput as e:
        return found, str(e)
    return found, None


def check_records(
    data: bytes,
    found: list[Frame],
    withheld: Mapping[int, str],
    workers: int = 1,
    progress: Progress | None = None,
) -> Iterator[Outcome]:
    """An outcome per frame, in order. With a pool, every span is already submitted when this
    returns, so the caller can do other checks while the workers run."""
    global _shared
    _shared = (data, found, withheld)
    spans = [(a, min(a + SPAN, len(found))) for a in range(0, len(found), SPAN)]
    if workers > 1 and len(found) >= PARALLEL_AFTER:
        results = _in_pool(spans, workers)
    else:
        results = map(_check_span, spans)

    def in_order() -> Iterator[Outcome]:
        global _shared
        try:
            for (_, stop), outcomes in zip(spans, results, strict=True):
                yield from outcomes
                if progress is not None:
                    progress(stop, len(found))
        finally:
            _shared = None

    return in_order()


def _in_pool(spans: list[tuple[int, int]], workers: int) -> Iterator[list[Outcome]]:
    # fork: the workers share the already-read bundle instead of each reading it again; the
    # verifier holds no connections or threads a fork could break. Freezing the collector's
    # objects first keeps the workers' collections from touching, and so copying, the
    # parent's pages (what a caller with a large heap, like the bench, otherwise pays for).
    gc.freeze()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    futures = [pool.submit(_check_span, span) for span in spans]

    def in_order() -> Iterator[list[Outcome]]:
        try:
            for i, future in enumerate(futures):
                try:
                    yield future.result()
                except BrokenProcessPool:
                    yield from map(_check_span, spans[i:])  # finish here rather than fail
                    return
        finally:
            pool.shutdown(cancel_futures=True)
            gc.unfreeze()

    return in_order()


def _check_span(span: tuple[int, int]) -> list[Outcome]:
    assert _shared is not None
    data, found, withheld = _shared
    outcomes = []
    # One object per distinct type, key, stream, subject list and text within the span, so
    # that what goes back to the parent pickles each once (a quarter fewer bytes).
    memo: dict[object, object] = {}
    share = memo.setdefault
    for offset, start, end in found[span[0] : span[1]]:
        raw = data[start:end]
        item = f"event record at offset {offset}"
        try:
            record = bf.parse_record(raw)
            item = f"event {record.position}"
            checked, text = check_record(record, offset, withheld)
            checked = checked._replace(
                type=share(checked.type, checked.type),
                key=share(checked.key, checked.key),
                stream=share(checked.stream, checked.stream),
                subjects=share(checked.subjects, checked.subjects),
                links=tuple((share(s, s), q, p) for s, q, p in checked.links),
            )
            problems = record_problems(checked)
            outcomes.append(Outcome(checked, item, share(text, text), problems))  # type: ignore[arg-type]
        except VerificationError as e:
            outcomes.append(Outcome(None, item, str(e)))
    return outcomes


def check_record(
    record: bf.EventRecord, offset: int, withheld: Mapping[int, str]
) -> tuple[Checked, str]:
    """The record's own rules (§5 steps 1-5); the checked record and its OK text, or raise."""
    header = parse_header(record.header)
    leaf = parse_leaf(record.leaf)
    digest = event_digest(record.header)
    if digest != leaf.event:
        raise VerificationError(
            f"header hashes to {short(digest)}, its leaf names {short(leaf.event)}"
        )
    if tuple(link[0] for link in leaf.links) != header.subjects:
        raise VerificationError("the leaf's links do not follow the header's subjects")
    if record.status == bf.PRODUCED:
        assert record.salt is not None and record.payload is not None
        got = commitment(record.salt, record.payload)
        if got != header.commitment:
            raise VerificationError(
                f"payload and salt hash to {short(got)}, "
                f"the header commits to {short(header.commitment)}"
            )
        if not record.payload or record.payload[0] not in MAP_HEADERS:
            raise MalformedInput("the payload does not start with a msgpack map header")
    claim = withheld.get(record.position)
    if (record.status == bf.PRIVILEGED) != (claim is not None) or claim != record.claim:
        raise VerificationError(
            f"{record.status} with claim {record.claim!r}, the manifest says {claim!r}"
        )
    checked = Checked(
        record.position,
        record.status,
        leaf_hash(record.leaf),
        leaf.links,
        offset,
        header.type,
        header.recorded,
        header.key,
        header.stream,
        header.version,
        header.commitment,
        header.subjects,
    )
    shown = f" ({record.claim})" if record.claim else ""
    return checked, f"{record.status}{shown}, {header.type}"


def record_problems(checked: Checked) -> tuple[str, ...]:
    """The scope rules a record breaks on its own (docs/BUNDLE_FORMAT.md §2.5, §2.6)."""
    problems = []
    owner = key_owner(checked.key)
    expected = expected_owner(checked.subjects)
    if owner != expected:
        problems.append(
            f"sealed under a data key of {owner}, not of its first subject ({expected})"
        )
    if checked.status == bf.PRODUCED and checked.type in SECRET_EVENT_TYPES:
        problems.append(f"{checked.type} holds a login secret and is produced")
    return tuple(problems)
