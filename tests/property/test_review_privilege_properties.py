"""Withheld content never reaches a review file: a secret in the text of a privileged, out of
scope or disposed entry is absent from the bytes of every file written, PDFs' inflated content
streams and their text as a PDF reader extracts it included, in every encoding the writers
use; the same secret in an entry that is not withheld is found by the same search (so the
search can fail)."""

from __future__ import annotations

import io
import re
import tempfile
import zlib
from pathlib import Path

import pypdf
from hypothesis import given, settings
from hypothesis import strategies as st

from legal_hold.review import write_review_set
from legal_hold.review.items import TimelineEntry
from legal_hold.review.layout import drawable
from tests.unit.legal_hold.test_review_files import sample_review

# No spaces or line breaks, and short: the PDF then keeps the secret on one line, whole.
secrets = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=8,
).map(lambda s: "ZQXSECRET" + s)


def forms(secret: str) -> list[bytes]:
    """Every way a writer could put the secret into a file."""
    return [
        secret.encode("utf-8"),
        drawable(secret).encode("utf-8"),  # as a PDF draws it, read back through ToUnicode
        secret.encode("utf-16-be").hex().upper().encode(),
    ]


def readable_bytes(root: Path) -> dict[str, bytes]:
    """Each file's bytes; a PDF's with its Flate streams inflated and appended."""
    out = {}
    for path in root.rglob("*"):
        if not path.is_file() or path.parts[-2] == "natives":
            continue
        data = path.read_bytes()
        if path.suffix == ".pdf":
            streams = re.findall(rb"/Length (\d+) /Filter /FlateDecode >>\nstream\n", data)
            assert streams
            for match in re.finditer(rb"/Length (\d+) /Filter /FlateDecode >>\nstream\n", data):
                start = match.end()
                data += zlib.decompress(data[start : start + int(match.group(1))])
            reader = pypdf.PdfReader(io.BytesIO(path.read_bytes()))
            data += "\n".join(page.extract_text() for page in reader.pages).encode("utf-8")
        out[path.relative_to(root).as_posix()] = data
    return out


def holders(root: Path, secret: str) -> list[str]:
    return [
        name
        for name, data in readable_bytes(root).items()
        if any(form in data for form in forms(secret))
    ]


@settings(max_examples=15, deadline=None)
@given(secrets, st.sampled_from(["privileged", "security credential", "out of scope", "disposed"]))
def test_a_withheld_entrys_text_is_in_no_written_file(secret, why):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        review = sample_review(root, secret=secret)
        chart, *rest = review.timelines
        extra = TimelineEntry(99, "2026-03-04T09:00:00.000000Z", None, "x", "Note", secret, why)
        chart = type(chart)(chart.title, chart.custodian, chart.kind, (*chart.entries, extra))
        write_review_set(root, type(review)(**{**review.__dict__, "timelines": (chart, *rest)}))
        assert holders(root, secret) == []


@settings(max_examples=5, deadline=None)
@given(secrets)
def test_the_same_secret_in_an_entry_not_withheld_is_found(secret):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        review = sample_review(root)
        chart, *rest = review.timelines
        shown = TimelineEntry(99, "2026-03-04T09:00:00.000000Z", None, "x", "Note", secret)
        chart = type(chart)(chart.title, chart.custodian, chart.kind, (*chart.entries, shown))
        write_review_set(root, type(review)(**{**review.__dict__, "timelines": (chart, *rest)}))
        found = holders(root, secret)
        assert "images/SMITH-0000001.pdf" in found and "text/SMITH-0000001.txt" in found
