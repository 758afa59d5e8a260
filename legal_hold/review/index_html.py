"""index.html: the production on one static page, no scripts, every value escaped."""

from __future__ import annotations

import html
from collections.abc import Sequence
from urllib.parse import quote

from legal_hold.review.documents import Document
from legal_hold.review.items import ReviewInput
from legal_hold.review.loadfile import position_span

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;line-height:1.4}"
    "h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.5em}"
    "p.meta{color:#555;margin-top:0}table{border-collapse:collapse;font-size:90%;width:100%}"
    "td,th{border-bottom:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0;border-bottom:2px solid #999}tr:nth-child(even) td{background:#fafafa}"
    "td.title{font-weight:600}.hash{font-family:monospace;font-size:80%;color:#666;"
    "word-break:break-all}ul{padding-left:1.2em}"
)


def link(path: str, label: str) -> str:
    return f'<a href="{html.escape(quote(path))}">{html.escape(label)}</a>'


def _row(doc: Document) -> str:
    links = [link(doc.image_path, "PDF" if doc.native is None else "slip sheet")]
    if doc.text_path:
        links.append(link(doc.text_path, "text"))
    if doc.native is not None:
        links.append(link(doc.native.path, "native file"))
    sha = doc.native.sha256 if doc.native else doc.image_sha256
    bates = doc.bates.beg if doc.bates.count == 1 else f"{doc.bates.beg} – {doc.bates.end}"
    cells = (
        f'<td class="title">{html.escape(doc.title)}</td>',
        f"<td>{html.escape(doc.doc_type)}</td>",
        f"<td>{html.escape(doc.custodian)}</td>",
        f"<td>{html.escape(bates)}</td>",
        f"<td>{doc.bates.count}</td>",
        f"<td>{html.escape(position_span(doc.positions))}</td>",
        f"<td>{' · '.join(links)}</td>",
        f'<td class="hash">{html.escape(sha)}</td>',
    )
    return "<tr>" + "".join(cells) + "</tr>\n"


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
        f'<p class="meta">Produced by {html.escape(review.producing_party)} on '
        f"{html.escape(review.produced_at)} (UTC). Signed checkpoint: tree size "
        f'{review.checkpoint_size}, root <span class="hash">'
        f"{html.escape(review.checkpoint_root)}</span>, key "
        f'<span class="hash">{html.escape(review.checkpoint_key_id)}</span>.</p>\n'
        f"<h2>Files</h2>\n<ul>\n{others}</ul>\n"
        f"<h2>Documents ({len(documents)})</h2>\n"
        "<table><thead><tr><th>Title or file name</th><th>Type</th><th>Custodian</th>"
        "<th>Bates</th><th>Pages</th><th>Ledger positions</th><th>Open</th>"
        "<th>SHA-256</th></tr></thead><tbody>\n"
        f"{rows}</tbody></table>\n</body></html>\n"
    )
    return page.encode("utf-8")
