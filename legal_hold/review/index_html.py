"""index.html: the production on one static page, no scripts, every value escaped."""

from __future__ import annotations

import html
from collections.abc import Sequence
from urllib.parse import quote

from legal_hold.review.documents import Document
from legal_hold.review.items import ReviewInput

STYLE = (
    "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:90%}"
    "td,th{border:1px solid #999;padding:2px 6px;text-align:left;vertical-align:top}"
    ".hash{font-family:monospace;font-size:85%}"
)


def link(path: str, label: str) -> str:
    return f'<a href="{html.escape(quote(path))}">{html.escape(label)}</a>'


def _row(doc: Document) -> str:
    links = [link(doc.image_path, "PDF" if doc.native is None else "slip sheet")]
    if doc.text_path:
        links.append(link(doc.text_path, "text"))
    if doc.native is not None:
        links.append(link(doc.native.path, "native"))
    sha = doc.native.sha256 if doc.native else doc.image_sha256
    cells = (
        html.escape(doc.bates.beg),
        html.escape(doc.bates.end),
        html.escape(doc.doc_type),
        html.escape(doc.title),
        html.escape(doc.custodian),
        str(doc.bates.count),
        " ".join(links),
        f'<span class="hash">{html.escape(sha)}</span>',
    )
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>\n"


def index_bytes(
    review: ReviewInput, documents: Sequence[Document], other_files: Sequence[tuple[str, str]]
) -> bytes:
    """The page; ``other_files`` are (path, description) of the files that are not documents."""
    title = f"Production: {review.matter_name} (No. {review.matter_number})"
    rows = "".join(_row(doc) for doc in documents)
    others = "".join(
        f"<li>{link(path, path)}: {html.escape(what)}</li>\n" for path, what in other_files
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f"<p>Produced by {html.escape(review.producing_party)} on "
        f"{html.escape(review.produced_at)} (UTC). Signed checkpoint: tree size "
        f'{review.checkpoint_size}, root <span class="hash">'
        f"{html.escape(review.checkpoint_root)}</span>, key "
        f'<span class="hash">{html.escape(review.checkpoint_key_id)}</span>.</p>\n'
        f"<h2>Files</h2>\n<ul>\n{others}</ul>\n"
        f"<h2>Documents ({len(documents)})</h2>\n"
        "<table><thead><tr><th>BegBates</th><th>EndBates</th><th>Type</th>"
        "<th>Title or file name</th><th>Custodian</th><th>Pages</th><th>Open</th>"
        "<th>SHA-256</th></tr></thead><tbody>\n"
        f"{rows}</tbody></table>\n</body></html>\n"
    )
    return page.encode("utf-8")
