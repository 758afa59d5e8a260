"""The font subsetter (legal_hold/review/fonts.py) and the PDF text it draws: for any set of
characters, the subset is a TrueType file a reader parses back, each character's glyph there
has the original's outline (its components renumbered) and width, the CIDToGIDMap sends each
character's code point to that glyph; and any drawable text rendered in a PDF reads back, as
a PDF reader extracts it, as the same text."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pypdf
from hypothesis import given, settings
from hypothesis import strategies as st

from legal_hold.review.fonts import BOLD, FALLBACK, REGULAR, components, font, parse, subset
from legal_hold.review.layout import BODY, drawable
from legal_hold.review.pdf import Frame, render

# Characters each font has: Latin, Greek, Cyrillic and symbols from DejaVu; CJK from Droid.
LATIN = sorted(chr(c) for c in font(REGULAR).cmap if 0xA0 <= c < 0x2500)
CJK = sorted(chr(c) for c in font(FALLBACK).cmap if 0x4E00 <= c < 0x9FA0)
FRAME = Frame("Matter 1: A v. B", "title", "footer", "test", datetime(2026, 1, 1, tzinfo=UTC))


def same_outline(source, original: int, made, new: int) -> None:
    """The subset's glyph ``new`` is the source's ``original``, component by component."""
    theirs, ours = source.glyph(original), made.glyph(new)
    # The subset pads each outline to four bytes (its loca offsets then stay aligned).
    assert 0 <= len(ours) - len(theirs) < 4 and not any(ours[len(theirs) :])
    ours = ours[: len(theirs)]
    pairs = list(zip(components(theirs), components(ours), strict=True))
    for (at, old_part), (at_new, new_part) in pairs:
        assert at == at_new
        same_outline(source, old_part, made, new_part)
    patched = bytearray(ours)
    for (at, old_part), _ in pairs:
        patched[at : at + 2] = old_part.to_bytes(2, "big")
    assert bytes(patched) == theirs


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([REGULAR, BOLD, FALLBACK]),
    st.sets(st.sampled_from(LATIN), max_size=40),
    st.sets(st.sampled_from(CJK), max_size=10),
)
def test_a_subset_parses_back_with_each_characters_glyph_width_and_map(file_name, latin, cjk):
    chars = latin | cjk
    made = subset(file_name, chars)
    source = font(file_name)
    parsed = parse(made.font_file(), "subset")
    glyph_map = made.glyph_map()
    assert len(parsed.loca) - 1 >= len(made.glyphs)
    for char in chars:
        original = source.cmap.get(ord(char), 0)
        new = int.from_bytes(glyph_map[2 * ord(char) : 2 * ord(char) + 2], "big")
        assert made.glyphs[new] == original
        assert parsed.width(new) == source.width(original)
        same_outline(source, original, parsed, new)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from([*LATIN[:300], *CJK[:200], *"abcXYZ019(\\)"]), max_size=30))
def test_any_drawable_text_in_a_pdf_reads_back_as_itself(pieces):
    text = "x" + "".join(pieces)  # no spaces: a reader's word spacing cannot blur the test
    pdf = render([[((BODY, 0.0, drawable(text)),)]], ["B0000001"], FRAME)
    extracted = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert drawable(text) in extracted.splitlines()
