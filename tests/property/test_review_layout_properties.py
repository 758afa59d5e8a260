"""The renderings' text and layout (legal_hold/review/layout.py): any Unicode text becomes text
the vendored fonts draw, with what none draws shown as its code point; wrapping fits the width
it is given; any timeline lays out in pages that fit, with every entry once and in order."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from legal_hold.review.fonts import FALLBACK, REGULAR, font
from legal_hold.review.items import Timeline, TimelineEntry
from legal_hold.review.layout import BODY, CONTENT_WIDTH, drawable, layout, text_width, wrap

_ESCAPE = re.compile(r"\[U\+([0-9A-F]{4,6})\]")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_becomes_drawable_and_only_the_undrawable_is_escaped(text):
    shown = drawable(text)
    plain = _ESCAPE.sub("", shown)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", plain)
    for char in plain:
        code = ord(char)
        assert code < 0x80 or code in font(REGULAR).cmap or code in font(FALLBACK).cmap
    # Nothing else changed: each escape stands for exactly the character it names.
    assert _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), shown) == text or "[U+" in text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="aW 李é", max_size=300), st.floats(20, 500))
def test_wrapping_fits_the_width_and_loses_only_the_spaces_it_breaks_at(text, width):
    pieces = wrap(text, width, BODY)
    assert all(text_width(piece, BODY) <= width or len(piece) == 1 for piece in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


entries = st.builds(
    TimelineEntry,
    position=st.integers(0, 10**6),
    recorded=st.just("2026-03-02T09:00:00.000000Z"),
    original=st.one_of(st.none(), st.text(max_size=40)),
    actor=st.one_of(st.none(), st.text(max_size=40)),
    kind=st.text(min_size=1, max_size=40),
    text=st.text(max_size=600),
    withheld=st.sampled_from(
        [None, None, "privileged", "security credential", "out of scope", "disposed"]
    ),
    section=st.sampled_from(["", "", "Notes", "Lab results"]),
    row=st.lists(st.text(max_size=30), max_size=7).map(tuple),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(entries, max_size=25), st.integers(8, 70))
def test_any_timeline_lays_out_in_pages_that_fit_with_each_entry_once_in_order(rows, per_page):
    columns = (("Lab results", ("Test", "Value", "Unit", "Range", "Flag", "When", "Lab")),)
    timeline = Timeline("t", "c", "chart", tuple(rows), columns=columns)
    laid = layout(timeline, per_page)
    assert laid.pages and all(0 < len(page) <= per_page for page in laid.pages)
    cells = [cell for page in laid.pages for row in page for cell in row]
    for style, x, text in cells:
        assert x + text_width(text, style) <= CONTENT_WIDTH + 0.01 or len(text) == 1
    text = "\n".join(t for _, _, t in cells)
    # Each entry's ledger position, once as a block's or once in its table row's last column.
    blocks = [int(p) for p in re.findall(r"ledger position (\d+), recorded", text)]
    lab = [e.position for e in rows if e.section == "Lab results"]
    assert blocks == [e.position for e in rows if e.section != "Lab results"]
    shown = {t for _, _, t in cells}
    assert all(str(position) in shown for position in lab)
    logged = {e.position for e in rows if e.withheld in ("privileged", "security credential")}
    assert set(laid.privileged_on_page) == logged
