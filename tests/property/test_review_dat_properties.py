"""The DAT load file (legal_hold/review/loadfile.py) for any Unicode values: a row parses back
into the same number of fields, each equal to the value mapped as docs/REVIEW_FILES.md says
(line breaks to ®, DC4 to a space, þ to "th", lone surrogates to U+FFFD) and to the value
itself when it holds none of those."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from legal_hold.review.loadfile import dat_line

SPECIAL = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x14þ"
values = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from(SPECIAL)), max_size=40
)  # st.characters() includes surrogates


def expected(value: str) -> str:
    """The rule, written out character by character (independently of the writer's regexes)."""
    out = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\r" and value[i + 1 : i + 2] == "\n":
            out.append("®")
            i += 2
            continue
        if char in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029":
            out.append("®")
        elif char == "\x14":
            out.append(" ")
        elif char == "þ":
            out.append("th")
        elif 0xD800 <= ord(char) <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(char)
        i += 1
    return "".join(out)


def parse_line(raw: bytes) -> list[str]:
    text = raw.decode("utf-8")  # a lone surrogate would not even encode
    assert text.endswith("\r\n") and text.count("\r\n") == 1 and "\n" not in text[:-2]
    body = text[:-2]
    assert body[0] == "þ" and body[-1] == "þ"
    return body[1:-1].split("þ\x14þ")


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=8))
def test_any_values_parse_back_as_the_specified_mapping(row):
    fields = parse_line(dat_line(row).encode("utf-8"))
    assert fields == [expected(v) for v in row]
    for field, value in zip(fields, row, strict=True):
        assert not set(field) & set(SPECIAL)
        if not set(value) & set(SPECIAL) and not any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            assert field == value
