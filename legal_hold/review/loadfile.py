"""The Concordance/Relativity DAT load file: one row per produced document.

UTF-8 with a byte-order mark; lines end in CR LF; the first line names the fields; each field is
wrapped in þ (U+00FE) and fields are separated by DC4 (U+0014). A value cannot carry those
characters or a line break, so ``dat_value`` maps them as docs/REVIEW_FILES.md specifies:
a line break becomes ® (U+00AE, the platforms' newline mark), DC4 becomes a space, þ becomes
"th", and a lone surrogate becomes U+FFFD.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from legal_hold.review.documents import Document

SEPARATOR = "\x14"
QUOTE = "\u00fe"
NEWLINE_MARK = "\u00ae"
ENCODING = "utf-8-sig"  # UTF-8 with BOM, as Relativity detects it
EOL = "\r\n"
MULTI_VALUE = "; "

FIELDS = (
    "BegBates",
    "EndBates",
    "PageCount",
    "DocType",
    "Custodian",
    "DateSent",
    "DateSentUTC",
    "DateCreated",
    "DateModified",
    "From",
    "To",
    "CC",
    "Subject",
    "Title",
    "FileName",
    "FileExtension",
    "MediaType",
    "SHA256",
    "NativePath",
    "ImagePath",
    "TextPath",
    "LedgerPositions",
    "EntryCount",
    "WithheldEntries",
)

_LINE_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def dat_value(value: str) -> str:
    """``value`` as it can stand between þ quotes on one line (see the module docstring)."""
    value = _SURROGATE.sub("\ufffd", value)
    value = _LINE_BREAK.sub(NEWLINE_MARK, value)
    return value.replace(SEPARATOR, " ").replace(QUOTE, "th")


def dat_line(values: Sequence[str]) -> str:
    inner = (QUOTE + SEPARATOR + QUOTE).join(dat_value(v) for v in values)
    return QUOTE + inner + QUOTE + EOL


def utc_time(text: str | None) -> str:
    """``text`` (an email Date header or an ISO 8601 time, as received) as UTC
    ``YYYY-MM-DDTHH:MM:SSZ`` so platforms can sort by it; "" when it names no zone or no time.
    The text as received stays in its own field."""
    if not text:
        return ""
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(text.strip())
        except ValueError:
            return ""
    if when.tzinfo is None:  # "-0000" or no offset: the zone is unknown
        return ""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_path(path: str) -> str:
    """A path relative to the production root, with '\\' between parts, as the platforms want."""
    return path.replace("/", "\\")


def position_span(positions: list[int]) -> str:
    if not positions:
        return ""
    low, high = min(positions), max(positions)
    return str(low) if low == high else f"{low}-{high}"


def document_row(doc: Document) -> list[str]:
    native, timeline = doc.native, doc.timeline
    row = dict.fromkeys(FIELDS, "")
    row.update(
        BegBates=doc.bates.beg,
        EndBates=doc.bates.end,
        PageCount=str(doc.bates.count),
        DocType=doc.doc_type,
        FileName=doc.file_name,
        FileExtension=doc.file_extension,
        ImagePath=load_path(doc.image_path),
        LedgerPositions=position_span(doc.positions),
    )
    if native is not None:
        row.update(
            Custodian=native.custodian,
            DateSent=native.date_sent or "",
            DateSentUTC=utc_time(native.date_sent),
            DateCreated=native.date_created or "",
            DateModified=native.date_modified or "",
            From=native.sender or "",
            To=MULTI_VALUE.join(native.to),
            CC=MULTI_VALUE.join(native.cc),
            Subject=native.subject or "",
            Title=native.subject or native.file_name,
            MediaType=native.media_type,
            SHA256=native.sha256,
            NativePath=load_path(native.path),
        )
    elif timeline is not None:
        entries = timeline.entries
        row.update(
            Custodian=timeline.custodian,
            DateCreated=entries[0].recorded if entries else "",
            DateModified=entries[-1].recorded if entries else "",
            Subject=timeline.title,
            Title=timeline.title,
            MediaType="application/pdf",
            SHA256=doc.image_sha256,
            TextPath=load_path(doc.text_path or ""),
            EntryCount=str(len(entries)),
            WithheldEntries=str(sum(1 for e in entries if e.withheld is not None)),
        )
    return [row[name] for name in FIELDS]


def dat_text(documents: Iterable[Document]) -> str:
    lines = [dat_line(FIELDS)]
    lines.extend(dat_line(document_row(doc)) for doc in documents)
    return "".join(lines)


def dat_bytes(documents: Iterable[Document]) -> bytes:
    return dat_text(documents).encode(ENCODING)
