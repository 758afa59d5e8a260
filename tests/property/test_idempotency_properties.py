"""The Idempotency-Key header's parsing and the request digest (api/idempotency/header.py):
every key a client can send comes back as itself, in the quoted and (where it has one) the bare
form; anything else is refused; equal requests digest equally and any change does not; and the
client waits as a Retry-After says (api/client_retry.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.client_retry import retry_after
from api.idempotency.header import (
    MAX_KEY_LENGTH,
    InvalidKey,
    parse_key,
    request_digest,
    serialize_key,
)
from api.idempotency.middleware import KEY_PATTERN

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC).timestamp()
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
keys = st.text(PRINTABLE, min_size=1, max_size=MAX_KEY_LENGTH)
bare_keys = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\,;'),
    min_size=1,
    max_size=MAX_KEY_LENGTH,
)
requests = st.tuples(
    st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "post"]),
    st.text(min_size=1, max_size=40),
    st.binary(max_size=40),
    st.binary(max_size=200),
)


@given(keys, st.sampled_from(["", " ", "\t", "  "]))
def test_a_quoted_key_parses_back_to_itself(key: str, space: str) -> None:
    assert parse_key([(space + serialize_key(key) + space).encode()]) == key


@given(bare_keys)
def test_a_bare_key_is_the_same_key_as_its_quoted_form(key: str) -> None:
    assert parse_key([key.encode()]) == key == parse_key([serialize_key(key).encode()])


@given(keys, st.text(PRINTABLE, min_size=1, max_size=5))
def test_anything_after_the_closing_quote_is_refused(key: str, tail: str) -> None:
    if tail.strip(" \t"):
        with pytest.raises(InvalidKey, match="after its closing quote"):
            parse_key([(serialize_key(key) + tail.strip(" \t")).encode()])


@given(keys)
def test_a_key_without_its_closing_quote_is_refused(key: str) -> None:
    with pytest.raises(InvalidKey):
        parse_key([serialize_key(key)[:-1].encode()])


@given(keys, st.characters(exclude_categories=["Cs"]).filter(lambda c: not 0x20 <= ord(c) <= 0x7E))
def test_a_key_outside_printable_ascii_is_refused(key: str, outside: str) -> None:
    inside = key[:1] + outside + key[1:]  # not at an end, where whitespace is trimmed
    for value in (quoted(inside), inside):
        with pytest.raises(InvalidKey):
            parse_key([value.encode()])


@given(st.text(PRINTABLE, min_size=MAX_KEY_LENGTH + 1, max_size=MAX_KEY_LENGTH + 20))
def test_a_key_over_the_limit_is_refused(key: str) -> None:
    with pytest.raises(InvalidKey, match="longer than"):
        parse_key([quoted(key).encode()])


@given(keys)
def test_the_client_quotes_keys_as_rfc_8941_does(key: str) -> None:
    assert serialize_key(key) == quoted(key)


def quoted(key: str) -> str:
    """RFC 8941 §4.1.6 (Serializing a String), written out again here."""
    out = '"'
    for c in key:
        out += "\\" + c if c in '"\\' else c
    return out + '"'


@given(st.lists(keys, min_size=2, max_size=3))
def test_more_than_one_field_is_refused(several: list[str]) -> None:
    with pytest.raises(InvalidKey, match="one Idempotency-Key"):
        parse_key([serialize_key(k).encode() for k in several])


@given(requests)
def test_equal_requests_have_equal_digests(request: tuple[str, str, bytes, bytes]) -> None:
    assert request_digest(*request) == request_digest(*request)
    assert len(request_digest(*request)) == 32


@given(requests, requests)
def test_requests_that_differ_anywhere_have_different_digests(
    a: tuple[str, str, bytes, bytes], b: tuple[str, str, bytes, bytes]
) -> None:
    assert (request_digest(*a) == request_digest(*b)) == (a == b)


@given(requests, st.binary(min_size=1, max_size=4), st.text(min_size=1, max_size=4))
def test_moving_bytes_between_parts_changes_the_digest(
    request: tuple[str, str, bytes, bytes], moved: bytes, text: str
) -> None:
    """The length prefixes: a query's last bytes moved to the front of the body, or a path's
    last characters to the front of the query, make another request and another digest."""
    method, path, query, body = request
    assert request_digest(method, path, query + moved, body) != request_digest(
        method, path, query, moved + body
    )
    assert request_digest(method, path + text, query, body) != request_digest(
        method, path, text.encode() + query, body
    )


@given(st.integers(0, 10**7), st.floats(0, 60))
def test_retry_after_in_seconds_is_waited_as_given(seconds: int, otherwise: float) -> None:
    assert retry_after(str(seconds), otherwise, NOW) == seconds
    assert retry_after(f" {seconds} ", otherwise, NOW) == seconds


@given(st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1)), st.floats(0, 60))
def test_retry_after_as_an_http_date_is_waited_until_then(when: datetime, otherwise: float) -> None:
    when = when.replace(microsecond=0, tzinfo=UTC)
    value = format_datetime(when, usegmt=True)  # IMF-fixdate, RFC 9110 §5.6.7
    assert retry_after(value, otherwise, NOW) == max(0.0, when.timestamp() - NOW)


@given(st.text(st.characters(categories=["L", "P", "Zs"]), max_size=12), st.floats(0, 60))
def test_a_retry_after_that_is_neither_waits_the_clients_own_backoff(
    value: str, otherwise: float
) -> None:
    assert retry_after(value, otherwise, NOW) == otherwise


_FIELD_CHARACTERS = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@given(
    st.one_of(
        st.text(_FIELD_CHARACTERS, max_size=300),
        st.text(_FIELD_CHARACTERS, max_size=300).map(lambda s: f'"{s}"'),
        st.from_regex(KEY_PATTERN, fullmatch=True),
    ).filter(lambda v: v == v.strip(" \t"))
)
def test_the_documented_pattern_is_the_rule_the_server_applies(value: str) -> None:
    """The OpenAPI's pattern for the header accepts exactly the keys parse_key accepts (a
    field's surrounding blanks, which HTTP trims anyway, aside)."""
    try:
        parse_key([value.encode()])
        accepted = True
    except InvalidKey:
        accepted = False
    assert accepted == bool(re.fullmatch(KEY_PATTERN, value))
