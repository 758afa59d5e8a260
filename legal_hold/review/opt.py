"""The Opticon (OPT) image cross-reference: one line per page image, in Bates order.

``ImageKey,Volume,Path,DocBreak,FolderBreak,BoxBreak,PageCount``. Every page of a document
names the same multi-page PDF (``images\\<BegBates>.pdf``); the k-th line of a document is page
k of that PDF. DocBreak is ``Y`` and PageCount the document's page count on its first line only.
ASCII, lines end in CR LF, no header line.
"""

from __future__ import annotations

from collections.abc import Iterable

from legal_hold.review.documents import Document
from legal_hold.review.loadfile import load_path

VOLUME = "VOL001"
EOL = "\r\n"


def opt_lines(doc: Document) -> list[str]:
    path = load_path(doc.image_path)
    lines = []
    for i, key in enumerate(doc.bates.labels()):
        first = i == 0
        count = str(doc.bates.count) if first else ""
        lines.append(f"{key},{VOLUME},{path},{'Y' if first else ''},,,{count}{EOL}")
    return lines


def opt_bytes(documents: Iterable[Document]) -> bytes:
    return "".join(line for doc in documents for line in opt_lines(doc)).encode("ascii")
