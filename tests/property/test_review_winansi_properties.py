"""Text for the PDF core fonts (legal_hold/review/winansi.py) and its layout (layout.py): any
Unicode text becomes drawable Windows-1252 text that reads back exactly, and any timeline lays
out in lines and pages that fit, with every entry's heading once and in order."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from legal_hold.review.items import Timeline, TimelineEntry
from legal_hold.review.layout import HEAD, LINE_CHARS, layout, wrap
from legal_hold.review.winansi import from_winansi, to_winansi

# Pieces, not single characters, so the escape's own notation turns up in the text too.
texts = st.lists(
    st.one_of(st.characters(), st.sampled_from(["[U+", "[U+0041]", "€", "þ", "\x81", "["])),
    max_size=60,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_any_text_becomes_drawable_and_reads_back_exactly(text):
    shown = to_winansi(text)
    shown.encode("cp1252")  # raises if a character cannot be drawn
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", shown)
    assert from_winansi(shown) == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab ", max_size=300), st.integers(5, 120))
def test_wrapping_fits_the_width_and_loses_only_the_spaces_it_breaks_at(text, width):
    pieces = wrap(text, width)
    assert all(len(piece) <= width for piece in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


entries = st.builds(
    TimelineEntry,
    position=st.integers(0, 10**6),
    recorded=st.just("2026-03-02T09:00:00.000000Z"),
    original=st.one_of(st.none(), texts),
    actor=st.one_of(st.none(), texts),
    kind=texts,
    text=st.text(max_size=600),
    withheld=st.sampled_from(
        [None, None, "privileged", "security credential", "out of scope", "disposed"]
    ),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(entries, max_size=25), st.integers(4, 70))
def test_any_timeline_lays_out_in_pages_that_fit_with_each_entry_once_in_order(rows, per_page):
    laid = layout(Timeline("t", "c", "chart", tuple(rows)), per_page)
    assert laid.pages and all(0 < len(page) <= per_page for page in laid.pages)
    lines = [line for page in laid.pages for line in page]
    assert all(len(text) <= LINE_CHARS for _, text in lines)
    starts = [text for style, text in lines if style == HEAD and not text.endswith("(continued)")]
    starts = [s for s in starts if re.match(r"#\d+  2026", s)]
    assert [int(s.split()[0][1:]) for s in starts] == [e.position for e in rows]
    logged = {e.position for e in rows if e.withheld in ("privileged", "security credential")}
    assert set(laid.privileged_on_page) == logged
