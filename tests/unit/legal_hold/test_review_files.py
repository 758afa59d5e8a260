"""write_review_set on a small production, read back as a reviewer's tools would: the PDFs
parsed from their bytes (cross-reference table, page tree, inflated content streams) and their
text extracted by pypdf through the embedded fonts' ToUnicode maps, the DAT and OPT split by
their own delimiters, index.html's links followed on disk.

The readers here are written from docs/REVIEW_FILES.md, not from the writers' code.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pypdf
import pytest

from legal_hold.review import write_review_set
from legal_hold.review.errors import InvalidReviewInput
from legal_hold.review.items import (
    Native,
    PrivilegeEntry,
    ReviewInput,
    Timeline,
    TimelineEntry,
)

ROOT_KEY = "5e" * 32
SIGNER = "7a" * 32
GENESIS = "0c" * 32
LONG_NOTE = "Reviewed labs; continue plan. " * 40  # wraps over many lines
UNICODE_NOTE = "Zoë Łukasiewicz (李小龙) met Ἀριστοτέλης and Мария: 5 € — “ok”"


# --- readers ------------------------------------------------------------------------------


def pdf_objects(data: bytes) -> dict[int, bytes]:
    """Every object of a PDF, found through its cross-reference table (each offset checked)."""
    assert data.startswith(b"%PDF-1.4\n")
    assert data.endswith(b"%%EOF\n")
    start = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", data).group(1))
    assert data[start:].startswith(b"xref\n0 ")
    header, _, rest = data[start + 5 :].partition(b"\n")
    first, count = map(int, header.split())
    entries = [rest[i * 20 : i * 20 + 20] for i in range(count)]
    objects = {}
    for number, entry in enumerate(entries[1:], start=first + 1):
        offset, _, kind = entry.split(b" ")[:3]
        assert kind == b"n", entry
        at = int(offset)
        prefix = b"%d 0 obj\n" % number
        assert data[at : at + len(prefix)] == prefix, f"object {number} is not at {at}"
        body = data[at + len(prefix) : data.index(b"\nendobj\n", at)]
        objects[number] = body
    trailer = data[start:].split(b"trailer\n", 1)[1]
    assert b"/Size %d" % count in trailer
    return objects


def _ref(body: bytes, key: bytes) -> int:
    return int(re.search(rb"/" + key + rb" (\d+) 0 R", body).group(1))


def read_pdf(path: Path) -> list[list[str]]:
    """Each page's lines of text, in the order the page tree lists the pages: the structure
    checked by hand (every object at its offset, every content stream inflating to its
    /Length), the text read by pypdf through the fonts' ToUnicode maps."""
    data = path.read_bytes()
    objects = pdf_objects(data)
    trailer = data.rsplit(b"trailer\n", 1)[1]
    pages_ref = _ref(objects[_ref(trailer, b"Root")], b"Pages")
    tree = objects[pages_ref]
    kids = [
        int(k) for k in re.findall(rb"(\d+) 0 R", re.search(rb"/Kids \[(.*?)\]", tree).group(1))
    ]
    assert int(re.search(rb"/Count (\d+)", tree).group(1)) == len(kids)
    for kid in kids:
        page = objects[kid]
        assert b"/Type /Page " in page and _ref(page, b"Parent") == pages_ref
        stream = objects[_ref(page, b"Contents")]
        length = int(re.search(rb"/Length (\d+)", stream).group(1))
        raw = stream.split(b"stream\n", 1)[1]
        assert raw[length:] == b"\nendstream"
        zlib.decompress(raw[:length])
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages) == len(kids)
    return [page.extract_text().splitlines() for page in reader.pages]


def read_dat(path: Path) -> list[list[str]]:
    """Rows of a DAT file: UTF-8 BOM, CR LF lines, þ-quoted fields separated by DC4."""
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode("utf-8")
    assert text.endswith("\r\n")
    rows = []
    for line in text[:-2].split("\r\n"):
        assert line.startswith("þ") and line.endswith("þ")
        rows.append(line[1:-1].split("þ\x14þ"))
    return rows


def read_opt(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("ascii")
    if not text:
        return []
    assert text.endswith("\r\n")
    return [line.split(",") for line in text[:-2].split("\r\n")]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [v for k, v in attrs if tag == "a" and k == "href" and v is not None]


def links(path: Path) -> list[str]:
    parser = _Links()
    parser.feed(path.read_text("utf-8"))
    return parser.hrefs


def all_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --- a production --------------------------------------------------------------------------


def entry(position: int, text: str = "BP 128/82.", **fields: object) -> TimelineEntry:
    values = dict(
        position=position,
        recorded=f"2026-03-{1 + position % 28:02d}T09:00:00.000000Z",
        original=None,
        actor="Dr. Rivera",
        kind="Note signed",
        text=text,
    )
    values.update(fields)
    return TimelineEntry(**values)  # type: ignore[arg-type]


def stage_native(root: Path, name: str, data: bytes, position: int, **fields: object) -> Native:
    path = f"natives/{position}{Path(name).suffix}"
    (root / "natives").mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(data)
    values = dict(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        file_name=name,
        media_type="message/rfc822" if name.endswith(".eml") else "application/pdf",
        custodian="Dr. Rivera",
        date_created="2026-03-02T10:00:00.000000Z",
        date_modified=None,
        position=position,
    )
    values.update(fields)
    return Native(**values)  # type: ignore[arg-type]


def sample_review(root: Path, secret: str = "", **overrides: object) -> ReviewInput:
    """Two charts (one long enough for several pages), a thread, two natives, one privileged."""
    chart_a = Timeline(
        "Chart of patient 7f3e",
        "user:rivera",
        "chart",
        (
            *(entry(p, LONG_NOTE) for p in range(10, 22)),
            entry(22, secret, withheld="privileged"),
            entry(23, UNICODE_NOTE),
        ),
    )
    chart_b = Timeline(
        "Chart of patient 91c2",
        "user:rivera",
        "chart",
        (entry(30, "a (b) \\ c", original="Tue, 3 Mar 2026 08:30:00 -0500"),),
    )
    thread = Timeline(
        "Message thread 44a0", "user:rivera", "thread", (entry(40, "Line one\nLine two"),)
    )
    natives = (
        stage_native(
            root,
            "labs þ report.eml",
            b"From: lab@example.org\r\nSubject: results\r\n\r\nok\r\n",
            50,
            date_sent="Tue, 3 Mar 2026 08:30:00 -0500",
            sender="lab@example.org",
            to=("rivera@example.org", "front@example.org"),
            cc=("x@example.org",),
            subject="Results\r\nline 2",
        ),
        stage_native(root, "scan.pdf", b"%PDF-1.4 scanned", 51),
    )
    privileged = (
        PrivilegeEntry(
            22,
            "2026-03-23",
            "Clinical note",
            "Dr. Rivera",
            ("Counsel",),
            "Note to counsel requesting legal advice about the visit",
            "attorney-client",
            "c0" * 32,
        ),
    )
    values = dict(
        matter_name="Smith v. Clinic",
        matter_number="CV-26-001",
        forum="Superior Court of Example County",
        producing_party="Example Clinic LLC",
        produced_at="2026-11-25T06:45:05.123456Z",
        bates_prefix="SMITH-",
        checkpoint_size=60,
        checkpoint_root=ROOT_KEY,
        checkpoint_key_id=SIGNER,
        format_version="1",
        software_version="0.1.0",
        timelines=(chart_a, chart_b, thread),
        natives=natives,
        privileged=privileged,
        event_count=17,
        extra={"genesis_key_id": GENESIS},
    )
    values.update(overrides)
    return ReviewInput(**values)  # type: ignore[arg-type]


@pytest.fixture
def produced(tmp_path: Path) -> tuple[Path, ReviewInput, list]:
    review = sample_review(tmp_path)
    return tmp_path, review, write_review_set(tmp_path, review)


# --- the tests -----------------------------------------------------------------------------


def test_every_written_file_is_returned_once_and_nothing_of_the_bundle_writer_is_touched(
    produced,
) -> None:
    root, review, files = produced
    paths = [f.path for f in files]
    assert len(paths) == len(set(paths))
    natives = {n.path for n in review.natives}
    assert set(paths) == all_files(root) - natives
    for native in review.natives:
        assert hashlib.sha256((root / native.path).read_bytes()).hexdigest() == native.sha256


def test_each_pdf_page_carries_its_own_bates_number_and_page_header(produced) -> None:
    root, _, files = produced
    renderings = [f for f in files if f.path.startswith("images/")]
    assert len(renderings) == 5  # three timelines, two native slip sheets
    seen = []
    for rendering in renderings:
        pages = read_pdf(root / rendering.path)
        labels = [
            f"SMITH-{n:07d}"
            for n in range(int(rendering.beg_bates[-7:]), int(rendering.end_bates[-7:]) + 1)
        ]
        assert len(pages) == len(labels)
        for number, (lines, label) in enumerate(zip(pages, labels, strict=True), start=1):
            assert lines[-1].endswith(label)  # the stamp, bottom right
            assert "\n".join(lines).count("SMITH-") == 1
            assert lines[0] == f"Matter CV-26-001: Smith v. Clinic Page {number} of {len(pages)}"
        seen += labels
    assert seen == [f"SMITH-{n:07d}" for n in range(1, len(seen) + 1)]


def test_a_long_chart_runs_over_pages_with_every_entry_once_and_in_order(produced) -> None:
    root, review, files = produced
    first = next(f for f in files if f.path == "images/SMITH-0000001.pdf")
    pages = read_pdf(root / first.path)
    assert len(pages) > 1
    text = " ".join(line for page in pages for line in page)
    positions = [int(p) for p in re.findall(r"ledger position (\d+), recorded", text)]
    assert positions == [e.position for e in review.timelines[0].entries]
    assert text.count("continue plan.") == 12 * 40


def test_text_in_any_script_is_drawn_with_embedded_fonts_and_extracts_exactly(produced) -> None:
    root, _, _ = produced
    data = (root / "images/SMITH-0000001.pdf").read_bytes()
    text = "\n".join(line for page in read_pdf(root / "images/SMITH-0000001.pdf") for line in page)
    for name in ("Zoë Łukasiewicz", "李小龙", "Ἀριστοτέλης", "Мария", "€ — “ok”"):
        assert name in text
    # Subsets of the vendored fonts travel inside the file: no reader needs them installed.
    assert data.count(b"/FontFile2 ") == 3 and b"/ToUnicode " in data
    for face in (b"+DejaVuSans ", b"+DejaVuSansBold ", b"+DroidSansFallbackFull "):
        assert face in data
    exact = (root / "text/SMITH-0000001.txt").read_text("utf-8")
    assert f"  {UNICODE_NOTE}\n" in exact


def test_a_character_no_font_draws_is_shown_as_its_code_point(tmp_path) -> None:
    odd = entry(60, "bell \x07 and a private-use \ue000 here")
    review = sample_review(tmp_path, timelines=(Timeline("Odd", "c", "chart", (odd,)),))
    write_review_set(tmp_path, review)
    text = " ".join(read_pdf(tmp_path / "images/SMITH-0000001.pdf")[0])
    assert "bell [U+0007] and a private-use [U+E000] here" in text


def test_pdf_text_keeps_parentheses_and_backslashes(produced) -> None:
    root, _, files = produced
    second = next(
        f for f in files if f.path.startswith("images/") and f.path != "images/SMITH-0000001.pdf"
    )
    lines = [s for page in read_pdf(root / second.path) for s in page]
    assert "Chart of patient 91c2 — custodian user:rivera" in lines
    assert "a (b) \\ c" in lines
    assert any("source time: Tue, 3 Mar 2026 08:30:00 -0500" in line for line in lines)


def test_opt_has_one_line_per_pdf_page_with_a_document_break_on_each_first_page(produced) -> None:
    root, _, files = produced
    lines = read_opt(root / "loadfiles/production.opt")
    by_pdf: dict[str, list[list[str]]] = {}
    for line in lines:
        assert len(line) == 7 and line[1] == "VOL001" and line[4:6] == ["", ""]
        by_pdf.setdefault(line[2], []).append(line)
    renderings = [f for f in files if f.path.startswith("images/")]
    assert sorted(by_pdf) == sorted(f.path.replace("/", "\\") for f in renderings)
    for rendering in renderings:
        doc = by_pdf[rendering.path.replace("/", "\\")]
        pages = len(read_pdf(root / rendering.path))
        assert [line[3] for line in doc] == ["Y"] + [""] * (pages - 1)
        assert [line[6] for line in doc] == [str(pages)] + [""] * (pages - 1)
        assert doc[0][0] == rendering.beg_bates and doc[-1][0] == rendering.end_bates
    assert [line[0] for line in lines] == sorted(line[0] for line in lines)


def test_dat_has_a_row_per_document_whose_hashes_and_paths_match_the_files(produced) -> None:
    root, _, _ = produced
    header, *rows = read_dat(root / "loadfiles/production.dat")
    for field in ("BegBates", "EndBates", "Custodian", "DateSent", "DateCreated", "DateModified",
                  "From", "To", "CC", "Subject", "FileName", "FileExtension", "SHA256",
                  "NativePath", "ImagePath", "TextPath", "LedgerPositions"):  # fmt: skip
        assert field in header
    docs = [dict(zip(header, row, strict=True)) for row in rows]
    assert [d["DocType"] for d in docs] == [
        "Chart timeline", "Chart timeline", "Message thread", "Email", "Native document",
    ]  # fmt: skip
    for doc in docs:
        image = root / doc["ImagePath"].replace("\\", "/")
        assert image.is_file()
        hashed = root / (doc["NativePath"] or doc["ImagePath"]).replace("\\", "/")
        assert hashlib.sha256(hashed.read_bytes()).hexdigest() == doc["SHA256"]
        assert len(read_pdf(image)) == int(doc["PageCount"])
    email = docs[3]
    assert email["FileName"] == "labs th report.eml"  # þ is the quote character: "th"
    assert email["To"] == "rivera@example.org; front@example.org"
    assert email["Subject"] == "Results®line 2"
    assert email["DateSent"] == "Tue, 3 Mar 2026 08:30:00 -0500"
    assert email["DateSentUTC"] == "2026-03-03T13:30:00Z"
    assert email["LedgerPositions"] == "50" and email["FileExtension"] == "eml"
    assert docs[0]["LedgerPositions"] == "10-23" and docs[0]["WithheldEntries"] == "1"
    assert docs[0]["TextPath"] == "text\\SMITH-0000001.txt"


def test_the_privilege_log_lists_the_withheld_item_with_its_proof_and_placeholder_page(
    produced,
) -> None:
    root, _, _ = produced
    csv_text = (root / "privilege/privilege_log.csv").read_bytes()
    assert csv_text.startswith(b"\xef\xbb\xbf")
    lines = csv_text[3:].decode().split("\r\n")
    assert lines[0].startswith("No.,Date,Type,Author,Recipients,Description,Privilege claimed")
    row = lines[1].split(",")
    assert row[0] == "1" and row[6] == "attorney-client" and row[7] == "22"
    assert row[8] == "c0" * 32
    placeholder_page = row[9]
    page_index = int(placeholder_page[-7:]) - 1
    text = " ".join(read_pdf(root / "images/SMITH-0000001.pdf")[page_index])
    assert "[WITHHELD AS PRIVILEGED: listed in the privilege log at ledger position 22]" in text
    assert "c0" * 32 in (root / "privilege/privilege_log.html").read_text("utf-8")


def test_index_html_links_resolve_to_written_files_and_values_are_escaped(tmp_path) -> None:
    review = sample_review(tmp_path, matter_name="<script>alert(1)</script> & Co")
    write_review_set(tmp_path, review)
    page = (tmp_path / "index.html").read_text("utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page
    hrefs = links(tmp_path / "index.html")
    assert hrefs
    for href in hrefs:
        assert (tmp_path / unquote(href)).is_file(), href
    linked = {unquote(h) for h in hrefs}
    assert {n.path for n in review.natives} <= linked
    assert "images/SMITH-0000001.pdf" in linked and "privilege/privilege_log.html" in linked


def test_declarations_are_drafts_carrying_the_checkpoint_and_every_native_hash(produced) -> None:
    root, review, _ = produced
    for name in ("FRE_902_14_DRAFT.txt", "FRE_902_13_DRAFT.txt"):
        text = (root / "declarations" / name).read_text("utf-8")
        assert text.splitlines()[0].startswith("DRAFT") and text.splitlines()[-1].startswith(
            "DRAFT"
        )
        assert ROOT_KEY in text and SIGNER in text and "tree size 60" in text
        assert "SHA-256" in text and "under penalty of perjury" in text
        assert f"--trusted-key {GENESIS}" in " ".join(text.split())
    fourteen = (root / "declarations/FRE_902_14_DRAFT.txt").read_text("utf-8")
    for native in review.natives:
        assert f"| {native.path} | {native.sha256}" in fourteen
    digest = hashlib.sha256((root / "loadfiles/production.dat").read_bytes()).hexdigest()
    assert f"loadfiles/production.dat | {digest}" in fourteen


def test_readme_gives_the_offline_verification_steps_and_the_dat_encoding(produced) -> None:
    root, _, files = produced
    text = (root / "README.txt").read_text("utf-8")
    assert "pip install msgpack cryptography" in text
    assert f"python -m verify bundle BUNDLE_FILE --trusted-key {GENESIS}" in text
    assert "sha256sum natives/FILE" in text
    assert "UTF-8 with byte-order mark" in text
    last = [f.end_bates for f in files if f.end_bates][-1]
    assert f"SMITH-0000001 through {last}" in text


def test_a_bad_bates_prefix_is_refused_before_anything_is_written(tmp_path) -> None:
    review = sample_review(tmp_path, bates_prefix="A,B")
    before = all_files(tmp_path)
    with pytest.raises(InvalidReviewInput, match="bates prefix"):
        write_review_set(tmp_path, review)
    assert all_files(tmp_path) == before


@pytest.mark.parametrize(
    "path", ["../outside.eml", "/etc/passwd", "natives/missing.eml", "images/SMITH-0000001.pdf"]
)
def test_a_native_outside_the_root_or_missing_is_refused_before_anything_is_written(
    tmp_path, path
) -> None:
    review = sample_review(tmp_path)
    bad = Native(path, "0" * 64, "x.eml", "message/rfc822", "c", None, None)
    before = all_files(tmp_path)
    with pytest.raises(InvalidReviewInput, match="native 2"):
        write_review_set(tmp_path, sample_review(tmp_path, natives=(*review.natives, bad)))
    assert all_files(tmp_path) == before


def test_a_failure_half_way_removes_every_file_it_had_written(tmp_path) -> None:
    review = sample_review(tmp_path)
    (tmp_path / "loadfiles").mkdir()
    (tmp_path / "loadfiles/production.dat").write_bytes(b"the bundle writer's own file")
    before = all_files(tmp_path)
    with pytest.raises(FileExistsError):
        write_review_set(tmp_path, review)
    assert all_files(tmp_path) == before
    assert (tmp_path / "loadfiles/production.dat").read_bytes() == b"the bundle writer's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loadfiles", "natives"]


def test_the_same_input_gives_the_same_bytes(tmp_path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    hashes = []
    for root in (first, second):
        root.mkdir()
        write_review_set(root, sample_review(root))
        hashes.append(
            {p: hashlib.sha256((root / p).read_bytes()).digest() for p in all_files(root)}
        )
    assert hashes[0] == hashes[1]


def test_bates_numbering_continues_from_bates_start(tmp_path) -> None:
    files = write_review_set(tmp_path, sample_review(tmp_path, bates_start=9_999_998))
    begs = [f.beg_bates for f in files if f.path.startswith("images/")]
    assert begs[0] == "SMITH-09999998"  # 8 digits: the production's last number needs them
    assert all(len(b) == len("SMITH-") + 8 for b in begs)


def test_an_empty_production_still_gets_its_load_files_and_readme(tmp_path) -> None:
    review = sample_review(tmp_path, timelines=(), natives=(), privileged=())
    write_review_set(tmp_path, review)
    assert len(read_dat(tmp_path / "loadfiles/production.dat")) == 1  # the field names only
    assert read_opt(tmp_path / "loadfiles/production.opt") == []
    assert "none (nothing produced)" in (tmp_path / "README.txt").read_text("utf-8")


def test_progress_is_reported_once_per_document_up_to_the_total(tmp_path) -> None:
    calls: list[tuple[int, int]] = []
    write_review_set(
        tmp_path, sample_review(tmp_path), lambda done, total: calls.append((done, total))
    )
    assert calls == [(n, 5) for n in range(1, 6)]


def test_privilege_log_cells_cannot_run_as_spreadsheet_formulas_and_html_is_escaped(
    tmp_path,
) -> None:
    claim = PrivilegeEntry(
        22, "2026-03-23", "Note", "=HYPERLINK(\"x\")", ("+1 555 0100", "<b>Counsel</b>"),
        "Advice, requested\nby phone", "@work product", "c0" * 32,
    )  # fmt: skip
    write_review_set(tmp_path, sample_review(tmp_path, privileged=(claim,)))
    raw = (tmp_path / "privilege/privilege_log.csv").read_bytes()[3:].decode()
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    assert rows[0][0] == "No." and len(rows) == 2
    assert rows[1][3] == '\'=HYPERLINK("x")' and rows[1][6] == "'@work product"
    assert rows[1][4] == "'+1 555 0100; <b>Counsel</b>"
    assert rows[1][5] == "Advice, requested\nby phone"
    page = (tmp_path / "privilege/privilege_log.html").read_text("utf-8")
    assert "<b>Counsel</b>" not in page and "&lt;b&gt;Counsel&lt;/b&gt;" in page
