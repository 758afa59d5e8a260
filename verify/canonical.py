"""The canonical msgpack profile of docs/LEDGER_FORMAT.md §2: one byte string per value.

msgpack's C packer already picks the smallest integer, string, binary, array and map headers, and
keeps str and bin apart with ``use_bin_type=True``; what it does not do is sort map keys or refuse
floats. ``encode`` adds exactly those two rules. ``decode`` accepts bytes only when re-encoding the
decoded value gives the same bytes back, which rejects duplicate keys, unsorted keys, oversized
headers and floats in one comparison.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgpack

from verify.errors import MalformedInput, NotCanonical

__all__ = [
    "EncodeError",
    "decode",
    "decode_fixed_map",
    "encode",
    "format_timestamp",
    "key_order",
    "pack_ordered",
    "parse_timestamp",
]

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
TIMESTAMP_RE = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\Z")

_packb = msgpack.Packer(use_bin_type=True, strict_types=True, autoreset=True).pack


class EncodeError(TypeError):
    """A value outside the canonical profile was given to ``encode`` (a programming error)."""


def key_order(key: str) -> tuple[int, bytes]:
    # Encoded msgpack str headers grow with the byte length, so "sorted by encoded bytes"
    # is "sorted by (UTF-8 length, UTF-8 bytes)", computed without packing every key.
    raw = key.encode("utf-8")
    return len(raw), raw


def _prepare(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is bytes or kind is bool or value is None:
        return value
    if kind is int:
        if not -(2**63) <= value < 2**64:
            raise EncodeError(f"integer {value} is outside the 64-bit range msgpack allows")
        return value
    if kind is dict:
        for key in value:
            if type(key) is not str:
                raise EncodeError(f"map keys must be text, not {type(key).__name__}")
        try:
            ordered = sorted(value, key=key_order)
        except UnicodeEncodeError as e:
            raise EncodeError("map key is not valid UTF-8 text") from e
        return {key: _prepare(value[key]) for key in ordered}
    if kind is list or kind is tuple:
        return [_prepare(item) for item in value]
    if kind is float:
        raise EncodeError("floats are not allowed: use a decimal string next to its unit")
    raise EncodeError(f"{kind.__name__} has no canonical encoding")


TOO_DEEP = "value is nested too deeply"


def encode(value: Any) -> bytes:
    """Return the one canonical encoding of ``value`` (nil, bool, int, str, bytes, list, dict)."""
    try:
        return _packb(_prepare(value))
    except UnicodeEncodeError as e:
        raise EncodeError("text is not valid UTF-8") from e
    except RecursionError:
        raise EncodeError(TOO_DEEP) from None


def pack_ordered(value: Any) -> bytes:
    """Pack a value whose maps were built with their keys already in canonical order.

    For the ledger's fixed-shape records (header, leaf, stored record), which are built field by
    field in the order of LEDGER_FORMAT.md; tests check the result equals ``encode``'s. It skips
    the sorting walk, which otherwise dominates the cost of appending an event.
    """
    return _packb(value)


def _refuse_ext(code: int, data: bytes) -> Any:
    raise NotCanonical(f"extension type {code} is not allowed")


def decode(data: bytes) -> Any:
    """Decode canonical bytes; raise MalformedInput or NotCanonical for anything else."""
    if type(data) is not bytes:
        raise MalformedInput(f"expected bytes, got {type(data).__name__}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            ext_hook=_refuse_ext,
        )
    except NotCanonical:
        raise
    except msgpack.ExtraData as e:
        raise NotCanonical(f"{len(e.extra)} trailing bytes after the value") from None
    except (ValueError, msgpack.UnpackException, TypeError) as e:
        raise MalformedInput(f"not msgpack: {e}") from None
    try:
        again = encode(value)
    except EncodeError as e:
        # Valid msgpack nested deeper than Python can walk is malformed input, not a crash.
        kind = MalformedInput if str(e) == TOO_DEEP else NotCanonical
        raise kind(str(e)) from None
    if again != data:
        raise NotCanonical(
            "bytes are not the canonical encoding of their value "
            "(unsorted or duplicate keys, or a non-minimal header)"
        )
    return value


def decode_fixed_map(data: bytes, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    """Decode a map that must have exactly ``keys``, in that (canonical) order.

    The caller then checks every value's type, so no float can hide in it; with the order fixed,
    repacking in C and comparing bytes is the whole canonical check, without the sorting walk
    of ``decode``. This is what lets the store check run at hundreds of thousands of events/s.
    """
    if type(data) is not bytes:
        raise MalformedInput(f"{what}: expected bytes, got {type(data).__name__}")
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_refuse_ext)
    except NotCanonical as e:
        raise NotCanonical(f"{what}: {e}") from None
    except msgpack.ExtraData as e:
        raise NotCanonical(f"{what}: {len(e.extra)} trailing bytes after the value") from None
    except (ValueError, msgpack.UnpackException, TypeError) as e:
        raise MalformedInput(f"{what}: not msgpack: {e}") from None
    if type(value) is not dict or tuple(value) != keys:
        raise MalformedInput(f"{what} does not have exactly the keys {', '.join(keys)}")
    try:
        again = _packb(value)
    except (TypeError, ValueError, OverflowError):
        raise NotCanonical(f"{what}: holds a value with no canonical encoding") from None
    if again != data:
        raise NotCanonical(f"{what}: bytes are not the canonical encoding of their value")
    return value


def format_timestamp(moment: datetime) -> str:
    """The one timestamp form: UTC, six fractional digits, ``Z``."""
    if moment.utcoffset() is None:
        raise EncodeError("timestamps must be timezone-aware")
    # isoformat is several times faster than strftime and gives the same digits.
    utc = (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def parse_timestamp(text: str) -> datetime:
    """Parse the timestamp form, refusing every other spelling of the same instant."""
    if type(text) is not str or not TIMESTAMP_RE.match(text):
        raise MalformedInput(f"not a timestamp of the form YYYY-MM-DDTHH:MM:SS.ffffffZ: {text!r}")
    try:
        # The regex fixed the form; fromisoformat (C) checks the calendar far faster than strptime.
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise MalformedInput(f"not a valid date and time: {text!r}") from None
