"""``write_review_set``: every review-platform file of a production, in one pass.

Checks the input first, then lays out every timeline (so the page counts, hence the Bates
numbers, are known), numbers the documents, and writes: the PDFs and text files, the load
files, the privilege log, the draft declarations, README.txt and index.html. If anything fails,
the files it wrote are removed again, so a failed call leaves the staging folder as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path, PurePosixPath

from legal_hold.review import declarations, loadfile, opt, privilege_log, scope_log
from legal_hold.review.bates import assign, check_prefix
from legal_hold.review.declarations import HashedFile
from legal_hold.review.documents import Document
from legal_hold.review.errors import InvalidReviewInput
from legal_hold.review.index_html import index_bytes
from legal_hold.review.items import ReviewFile, ReviewInput
from legal_hold.review.layout import HEAD, SMALL, Row, layout, slip_sheet
from legal_hold.review.pdf import HEADER_WIDTH, Frame, fit, render
from legal_hold.review.readme import (
    DAT_PATH,
    OPT_PATH,
    VERIFIER,
    VERIFIER_SHA256,
    readme_bytes,
)
from legal_hold.review.textfiles import timeline_text

Progress = Callable[[int, int], None]  # (documents rendered, documents)

PRIVILEGE_CSV = "privilege/privilege_log.csv"
PRIVILEGE_HTML = "privilege/privilege_log.html"
DECLARATION_14 = "declarations/FRE_902_14_DRAFT.txt"
DECLARATION_13 = "declarations/FRE_902_13_DRAFT.txt"
SCOPE_CSV = "scope/out_of_scope_log.csv"
SCOPE_HTML = "scope/out_of_scope_log.html"
README, INDEX = "README.txt", "index.html"
# Names the review files take: a native there would clash with them.
RESERVED = frozenset(
    {README, INDEX, "images", "text", "loadfiles", "privilege", "scope", "declarations"}
)
WRITER_THREADS = 4


def _save(target: Path, data: bytes, created: list[Path]) -> None:
    with open(target, "xb") as out:  # never overwrite what the bundle writer put there
        created.append(target)  # from here on it is ours to remove if the set fails
        out.write(data)


class _Writer:
    """Writes files under the root, remembering each with its hash to list or to undo.

    Creating thousands of files waits on the file system more than on the CPU, so the writes
    go to a few threads while rendering carries on; ``finish`` waits for them all and raises
    the first failure.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[ReviewFile] = []
        self.hashes: dict[str, str] = {}
        self._folders: set[Path] = set()
        self._pool = ThreadPoolExecutor(max_workers=WRITER_THREADS)
        self._pending: list[Future[None]] = []
        self._created: list[Path] = []
        self._made: list[Path] = []  # folders this writer made

    def write(self, path: str, data: bytes, beg: str | None = None, end: str | None = None) -> str:
        target = self.root / path
        if target.parent not in self._folders:
            if not target.parent.exists():
                target.parent.mkdir(parents=True)
                self._made.append(target.parent)
            self._folders.add(target.parent)
        self.files.append(ReviewFile(path, beg, end))
        self._pending.append(self._pool.submit(_save, target, data, self._created))
        digest = hashlib.sha256(data).hexdigest()
        self.hashes[path] = digest
        return digest

    def finish(self) -> None:
        try:
            for pending in self._pending:
                pending.result()
        finally:
            self._pool.shutdown(wait=True)

    def undo(self) -> None:
        """Remove what this writer created, and only that."""
        self._pool.shutdown(wait=True)
        for target in self._created:
            target.unlink(missing_ok=True)
        for folder in reversed(self._made):
            if not any(folder.iterdir()):
                folder.rmdir()


def write_review_set(
    root: Path, review: ReviewInput, progress: Progress | None = None
) -> list[ReviewFile]:
    """Write the review files of ``review`` under ``root``; return them, relative to ``root``."""
    _check(root, review)
    documents = _documents(review)
    writer = _Writer(root)
    try:
        _write_all(writer, review, documents, progress)
        writer.finish()
    except BaseException:
        writer.undo()
        raise
    return writer.files


def _check(root: Path, review: ReviewInput) -> None:
    check_prefix(review.bates_prefix)
    if type(review.bates_start) is not int or review.bates_start < 1:
        raise InvalidReviewInput("bates_start must be a whole number, 1 or more")
    try:
        datetime.fromisoformat(review.produced_at)
    except (TypeError, ValueError):
        raise InvalidReviewInput("produced_at must be a timestamp") from None
    for index, native in enumerate(review.natives):
        path = PurePosixPath(native.path)
        if path.is_absolute() or ".." in path.parts or not path.parts or "\\" in native.path:
            raise InvalidReviewInput(f"native {index}: path must be relative, with '/', no '..'")
        if path.parts[0] in RESERVED:
            raise InvalidReviewInput(f"native {index}: {path.parts[0]} is a review files' name")
        if not (root / path).is_file():
            raise InvalidReviewInput(f"native {index}: no file at {native.path}")


def _documents(review: ReviewInput) -> list[Document]:
    """Every document with its Bates range. A timeline's pages are laid out here only to be
    counted, and laid out again as it is rendered (``_pages``): held for every document at
    once, they were the largest part of a production's memory (about 2.2 KB an event)."""
    laid_out = [layout(timeline) for timeline in review.timelines]
    counts = [len(t.pages) for t in laid_out]
    privileged = [t.privileged_on_page for t in laid_out]
    del laid_out
    slips = [slip_sheet(native) for native in review.natives]
    counts += [1] * len(slips)
    ranges = iter(assign(review.bates_prefix, review.bates_start, counts))
    documents = [
        Document(next(ranges), [], timeline=timeline, privileged_on_page=on_page)
        for timeline, on_page in zip(review.timelines, privileged, strict=True)
    ]
    documents += [
        Document(next(ranges), [slip], native=native)
        for native, slip in zip(review.natives, slips, strict=True)
    ]
    return documents


def _write_all(
    writer: _Writer, review: ReviewInput, documents: list[Document], progress: Progress | None
) -> None:
    created = datetime.fromisoformat(review.produced_at)
    heading = fit(f"Matter {review.matter_number}: {review.matter_name}", HEADER_WIDTH, HEAD)
    footer = fit(f"Produced by {review.producing_party} on {review.produced_at}", 360, SMALL)
    creator = f"Chartledger {review.software_version}"
    for done, doc in enumerate(documents, start=1):
        what = f"Native file, ledger position {doc.positions[0]}" if doc.native else doc.title
        title = fit(f"{what} — custodian {doc.custodian}", HEADER_WIDTH + 70, SMALL)
        frame = Frame(heading, title, footer, creator, created)
        pdf = render(_pages(doc), doc.bates.labels(), frame)
        doc.image_sha256 = writer.write(doc.image_path, pdf, doc.bates.beg, doc.bates.end)
        if doc.timeline is not None and doc.text_path:
            text = timeline_text(doc.timeline, doc.bates.beg, doc.bates.end)
            writer.write(doc.text_path, text, doc.bates.beg, doc.bates.end)
        if progress is not None:
            progress(done, len(documents))
    writer.write(DAT_PATH, loadfile.dat_bytes(documents))
    writer.write(OPT_PATH, opt.opt_bytes(documents))
    _write_privilege_log(writer, review, documents)
    table = scope_log.rows(review.left_out)
    writer.write(SCOPE_CSV, scope_log.csv_bytes(table))
    heading = f"{review.matter_name} (No. {review.matter_number}), produced {review.produced_at}"
    writer.write(SCOPE_HTML, scope_log.html_bytes(table, heading))
    _write_declarations(writer, review, documents)
    first = documents[0].bates.beg if documents else ""
    last = documents[-1].bates.end if documents else ""
    natives = sum(1 for d in documents if d.native is not None)
    writer.write(README, readme_bytes(review, first, last, len(documents), natives))
    writer.write(INDEX, index_bytes(review, documents, _other_files(review)))


def _pages(doc: Document) -> list[list[Row]]:
    """A document's pages: a slip sheet's as kept, a timeline's laid out again (the layout is
    a function of the timeline alone, so it gives the pages its Bates range was counted on)."""
    if doc.timeline is None:
        return doc.pages
    pages = layout(doc.timeline).pages
    if len(pages) != doc.bates.count:
        raise RuntimeError("a timeline laid out twice gave two page counts")
    return pages


def _write_privilege_log(writer: _Writer, review: ReviewInput, documents: list[Document]) -> None:
    placeholders = {
        position: doc.label_of_page(page)
        for doc in documents
        for position, page in doc.privileged_on_page.items()
    }
    table = privilege_log.rows(review.privileged, placeholders)
    writer.write(PRIVILEGE_CSV, privilege_log.csv_bytes(table))
    heading = f"{review.matter_name} (No. {review.matter_number}), produced {review.produced_at}"
    writer.write(PRIVILEGE_HTML, privilege_log.html_bytes(table, heading))


def _write_declarations(writer: _Writer, review: ReviewInput, documents: list[Document]) -> None:
    natives = [
        HashedFile(d.native.path, d.native.sha256, d.bates.beg, str(d.native.position))
        for d in documents
        if d.native is not None
    ]
    bates_of = {d.image_path: d for d in documents}
    bates_of |= {d.text_path: d for d in documents if d.text_path}
    renderings = [
        HashedFile(path, sha, _bates_span(bates_of[path]) if path in bates_of else "")
        for path, sha in writer.hashes.items()
    ]
    writer.write(DECLARATION_14, declarations.declaration_902_14(review, natives, renderings))
    writer.write(DECLARATION_13, declarations.declaration_902_13(review, renderings))


def _bates_span(doc: Document) -> str:
    return doc.bates.beg if doc.bates.count == 1 else f"{doc.bates.beg}-{doc.bates.end}"


def _other_files(review: ReviewInput) -> list[tuple[str, str]]:
    carried = []
    if review.extra.get(VERIFIER_SHA256):  # the bundle writer put it beside these files
        carried = [(VERIFIER, "the verifier as one file: check it, then run it (README.txt, 3)")]
    return [
        (README, "what this production holds and how to verify it offline"),
        *carried,
        (DAT_PATH, "Concordance/Relativity DAT load file (UTF-8 with BOM)"),
        (OPT_PATH, "Opticon image cross-reference"),
        (PRIVILEGE_HTML, "privilege log"),
        (PRIVILEGE_CSV, "privilege log (CSV)"),
        (SCOPE_HTML, "out-of-scope log: records left out, and why"),
        (SCOPE_CSV, "out-of-scope log (CSV)"),
        (DECLARATION_14, "DRAFT FRE 902(14) certification (hashes of the natives)"),
        (DECLARATION_13, "DRAFT FRE 902(13) certification (records of an electronic process)"),
    ]
