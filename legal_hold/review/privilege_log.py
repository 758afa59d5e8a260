"""The privilege log (FRCP 26(b)(5)(A)): what was withheld, described without its content.

Two renderings of the same rows: a CSV for the parties' tools (RFC 4180, UTF-8 with BOM, CR LF)
and an HTML table to read. Each row keeps the ledger position and the salted commitment that
still prove the withheld event exists, and the Bates page where its placeholder stands.
A CSV cell that a spreadsheet would run as a formula (starting with = + - @, tab or CR) is
written with a leading apostrophe.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping, Sequence

from legal_hold.review.items import PrivilegeEntry

COLUMNS = (
    "No.",
    "Date",
    "Type",
    "Author",
    "Recipients",
    "Description",
    "Privilege claimed",
    "Ledger position",
    "Commitment (SHA-256)",
    "Placeholder Bates",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def rows(
    entries: Sequence[PrivilegeEntry], placeholder_bates: Mapping[int, str]
) -> list[list[str]]:
    ordered = sorted(entries, key=lambda e: e.position)
    return [
        [
            str(number),
            entry.date,
            entry.type,
            entry.author or "",
            "; ".join(entry.recipients),
            entry.subject,
            entry.privilege,
            str(entry.position),
            entry.commitment,
            placeholder_bates.get(entry.position, ""),
        ]
        for number, entry in enumerate(ordered, start=1)
    ]


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_bytes(table: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([_cell(v) for v in row] for row in table)
    return out.getvalue().encode("utf-8-sig")


def html_bytes(table: list[list[str]], heading: str) -> bytes:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>\n" for row in table
    )
    empty = "" if table else "<p>Nothing was withheld as privileged.</p>\n"
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Privilege log: {html.escape(heading)}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse;font-size:90%}"
        "td,th{border:1px solid #999;padding:2px 6px;vertical-align:top}"
        "td:nth-child(9){font-family:monospace;word-break:break-all}</style></head><body>\n"
        f"<h1>Privilege log</h1>\n<p>{html.escape(heading)}</p>\n{empty}"
        f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n"
        "</body></html>\n"
    )
    return page.encode("utf-8")
