"""Domain events ↔ stored records (LEDGER_FORMAT.md §4): header, commitment, sealed payload.

The bytes produced here are the bytes hashed, stored and later produced; reading never rewrites
them. Old event versions are upcast in memory only (eventsourcing's ``upcast_vN_vN+1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any
from uuid import UUID

import msgpack
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic

from events import context
from events.clock_watch import ClockWatch
from events.sealing import DataKeys, SealError, seal, unseal
from verify.canonical import (
    EncodeError,
    format_timestamp,
    key_order,
    pack_ordered,
    parse_timestamp,
)
from verify.errors import MalformedInput
from verify.hashing import commitment, event_digest, sha256
from verify.records import (
    FORMAT_VERSION,
    HEADER_KEYS,
    PRACTICE_KEY,
    Header,
    parse_header,
    split_record,
)

TYPE, DATA = "_type_", "_data_"
_unpack = msgpack.unpackb
# read_record's type checks, each one C call over the header's fields
_TYPED = itemgetter(
    "type", "stream", "version", "recorded", "key", "commitment", "sealed", "subjects"
)
_TYPES = (str, str, int, str, str, bytes, bytes, list)
_OPTIONAL = itemgetter("actor", "session", "original")
_TEXT, _TEXT_OR_NIL = frozenset({str}), frozenset({str, type(None)})


class CanonicalTranscoder(Transcoder):
    """Canonical msgpack with tagged UUID, Decimal, datetime, date and tuple values (§4.2)."""

    def encode(self, obj: Any) -> bytes:
        try:
            return pack_ordered(_to_plain(obj))
        except (OverflowError, UnicodeEncodeError) as e:
            raise EncodeError(str(e)) from None

    def decode(self, data: bytes) -> Any:
        # No canonical re-encoding check here: the payload opened under AES-GCM and matched its
        # commitment, so these are the bytes the writer encoded; the check belongs to verifiers.
        # The tags are undone as msgpack builds each map (innermost first), so no second walk
        # over the value rebuilds every map and list.
        try:
            return msgpack.unpackb(
                data, raw=False, strict_map_key=True, ext_hook=_no_ext, object_hook=_untag
            )
        except MalformedInput:
            raise
        except (ValueError, msgpack.UnpackException, TypeError, KeyError) as e:
            raise MalformedInput(f"payload is not msgpack: {e}") from None


def _no_ext(code: int, data: bytes) -> Any:
    raise MalformedInput(f"extension type {code} is not allowed")


def _tagged(name: str, data: Any) -> dict[str, Any]:
    return {DATA: data, TYPE: name}  # canonical order: "_data_" < "_type_"


# Events of one class have the same keys in the same order, so each key set is sorted once.
_key_orders: dict[tuple[Any, ...], tuple[str, ...]] = {}


def _key_order(obj: dict[Any, Any]) -> tuple[str, ...]:
    for key in obj:
        if type(key) is not str:
            raise EncodeError(f"map keys must be text, not {type(key).__name__}")
    order = tuple(sorted(obj, key=key_order))
    if len(_key_orders) < 10_000:  # bounded: maps with data-dependent keys are sorted each time
        _key_orders[tuple(obj)] = order
    return order


_PLAIN = frozenset({str, int, bytes, bool, type(None)})  # what msgpack takes as it is


def _to_plain(obj: Any) -> Any:
    """Tag the types msgpack lacks and put map keys in canonical order, in one walk."""
    # Most values are plain: they are passed through where they are met, without a call.
    kind = type(obj)
    if kind is dict:
        order = _key_orders.get(tuple(obj))
        if order is None:
            order = _key_order(obj)
        plain = {}
        for key in order:
            value = obj[key]
            plain[key] = value if type(value) in _PLAIN else _to_plain(value)
        return plain
    if kind in _PLAIN:
        return obj
    if kind is list:
        return [v if type(v) in _PLAIN else _to_plain(v) for v in obj]
    if kind is tuple:
        return _tagged("tuple", [v if type(v) in _PLAIN else _to_plain(v) for v in obj])
    if isinstance(obj, UUID):
        return _tagged("uuid", _uuid_text(obj))
    if kind is Decimal:
        return _tagged("decimal", str(obj))
    if kind is datetime:
        return _tagged("datetime", _moment_text(obj))
    if kind is date:
        return _tagged("date", obj.isoformat())
    if kind is float:
        raise EncodeError("floats are not allowed: use a decimal string next to its unit")
    raise EncodeError(f"{kind.__name__} has no canonical encoding")


# The same ids and moments recur from event to event, and from one state of an entry to the
# next; their text is made once. Keyed by what fixes the text: a UUID's 128-bit number, and a
# moment's instant (equal instants, whatever their zone, have one text: in UTC).
_uuid_texts: dict[int, str] = {}
_moment_texts: dict[datetime, str] = {}
_TEXTS_AT_MOST = 100_000


def _uuid_text(value: UUID) -> str:
    found = _uuid_texts.get(value.int)
    if found is None:
        if len(_uuid_texts) > _TEXTS_AT_MOST:
            _uuid_texts.clear()
        found = _uuid_texts[value.int] = str(value)
    return found


def _moment_text(moment: datetime) -> str:
    found = _moment_texts.get(moment)
    if found is None:
        if len(_moment_texts) > _TEXTS_AT_MOST:
            _moment_texts.clear()
        found = _moment_texts[moment] = _timestamp(moment)  # raises for a naive moment
    return found


_uuids: dict[str, UUID] = {}


def _uuid(text: str) -> UUID:
    # The same few ids (patients, users) recur in most events: parsing each once saves a
    # large share of decoding time when views are rebuilt. UUIDs are immutable, so sharing is safe.
    found = _uuids.get(text)
    if found is None:
        if len(_uuids) > 100_000:
            _uuids.clear()
        found = _uuids[text] = UUID(text)
    return found


# Each takes a tag's data with everything inside it already untagged.
_DECODERS = {
    "tuple": tuple,
    "uuid": _uuid,
    "decimal": Decimal,
    "datetime": parse_timestamp,
    "date": date.fromisoformat,
}


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 2 and TYPE in obj and DATA in obj:
        return _DECODERS[obj[TYPE]](obj[DATA])
    return obj


def read_record(state: bytes) -> tuple[Header, bytes]:
    """A stored record's header and sealed payload, for reading the events this store holds.

    Well-formed records take a short path: the fields' types are checked, not the canonical
    form, which adds nothing here. What a reader relies on is checked after this either way:
    AES-GCM binds the payload to the header's stream and version, and the commitment binds it
    to the header's commitment. The header's other fields are as trustworthy as the store, and
    only the store check (every hash up to a signed root) vouches for them, canonical or not.
    Anything else takes ``parse_header``'s full checks, which name what is wrong.
    """
    try:
        record = _unpack(state)
        header_bytes, sealed = record["header"], record["sealed"]
        h = _unpack(header_bytes)
        if (
            len(record) == 2
            and type(sealed) is bytes
            and len(h) == len(HEADER_KEYS)
            and h["format"] == FORMAT_VERSION
            and tuple(map(type, _TYPED(h))) == _TYPES
            and _TEXT_OR_NIL.issuperset(map(type, _OPTIONAL(h)))
            and _TEXT.issuperset(map(type, h["subjects"]))
        ):
            header = Header(
                h["type"], h["stream"], h["version"], h["actor"], h["session"], h["recorded"],
                h["original"], tuple(h["subjects"]), h["key"], h["commitment"], h["sealed"],
            )  # fmt: skip
            return header, sealed
    except Exception:  # any surprise in its shape: the full checks below say what it is
        pass
    header_bytes, sealed = split_record(state)
    return parse_header(header_bytes), sealed


@dataclass(frozen=True)
class LedgerStoredEvent(StoredEvent):
    """A stored event plus what the recorder needs to build its leaf without re-decoding."""

    subjects: tuple[str, ...] = ()
    digest: bytes = b""
    key_name: str = ""


_new = object.__new__


def _timestamp(moment: datetime) -> str:
    """format_timestamp's text; for the usual UTC moment without its conversions."""
    if moment.tzinfo is UTC:
        return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # drop "+00:00"
    return format_timestamp(moment)


def subjects_of(event: Any) -> tuple[str, ...]:
    """The subjects an event concerns: its ``ledger_subjects()`` or ``subjects``, sorted."""
    hook = getattr(event, "ledger_subjects", None)
    found = hook() if callable(hook) else getattr(event, "subjects", ())
    if type(found) is tuple and len(found) == 1:  # most events: nothing to sort
        return found
    return tuple(sorted(set(found), key=str.encode))


class LedgerMapper(Mapper[UUID]):
    def __init__(self, transcoder: Transcoder, data_keys: DataKeys) -> None:
        super().__init__(transcoder=transcoder)
        self.data_keys = data_keys
        self.clock = ClockWatch()  # says so in the log when the wall clock steps back

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> LedgerStoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        stream = _uuid_text(originator_id)
        version = state.pop("originator_version")
        recorded = _timestamp(state.pop("timestamp"))
        self.clock.check(recorded)
        original = state.pop("original_time", None)
        cls = type(domain_event)
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        subjects = subjects_of(domain_event)
        key_name, data_key = self.data_keys.current(subjects[0] if subjects else PRACTICE_KEY)
        payload = self.transcoder.encode(state)
        bound, sealed = seal(data_key, stream, version, payload)
        acting = context.current()
        topic = get_topic(cls)
        # Built in the canonical key order of §4.1, so it can be packed without sorting.
        header = pack_ordered(
            {
                "key": key_name,
                "type": topic,
                "actor": acting.actor
                if acting.by_stream is None
                else acting.actor_of(originator_id),
                "format": 1,
                "sealed": sha256(sealed),
                "stream": stream,
                "session": acting.session,
                "version": version,
                "original": original,
                "recorded": recorded,
                "subjects": list(subjects),  # already sorted by subjects_of
                "commitment": bound,
            }
        )
        # The frozen dataclass's __init__ sets each field through object.__setattr__; this is
        # the same object for a third of the cost, on every event appended.
        stored = _new(LedgerStoredEvent)
        stored.__dict__.update(
            originator_id=originator_id,
            originator_version=version,
            topic=topic,
            state=pack_ordered({"header": header, "sealed": sealed}),
            subjects=subjects,
            digest=event_digest(header),
            key_name=key_name,
        )
        return stored

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        return self.open(stored_event)[1]

    def open(self, stored_event: StoredEvent) -> tuple[Header, DomainEventProtocol[UUID]]:
        """The event's header and the event: for readers that need both, parsed once."""
        return self.open_record(stored_event.topic, stored_event.state)

    def open_record(self, topic: str, state: bytes) -> tuple[Header, DomainEventProtocol[UUID]]:
        """``open`` for a record's topic and bytes, as the views read them from the log."""
        header, sealed = read_record(state)
        if sha256(sealed) != header.sealed:
            raise SealError(f"sealed payload of {header.stream} v{header.version} was altered")
        data_key = self.data_keys.get(header.key)
        salt, payload = unseal(data_key, header.stream, header.version, sealed)
        if commitment(salt, payload) != header.commitment:
            raise SealError(f"payload of {header.stream} v{header.version} breaks its commitment")
        state: dict[str, Any] = self.transcoder.decode(payload)
        cls = resolve_topic(topic)
        state["originator_id"] = _uuid(header.stream)
        state["originator_version"] = header.version
        state["timestamp"] = parse_timestamp(header.recorded)
        if header.original is not None:
            state["original_time"] = header.original
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return header, event
