"""The privilege log (FRCP 26(b)(5)(A)): what was withheld, described without its content.

Two renderings of the same rows: a CSV for the parties' tools (RFC 4180, UTF-8 with BOM, CR LF)
and an HTML table to read. Each row keeps the ledger position and the salted commitment that
still prove the withheld event exists, and the Bates page where its placeholder stands.
A CSV cell that a spreadsheet would run as a formula (starting with = + - @, tab or CR) is
written with a leading apostrophe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from legal_hold.review import log_table
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


def csv_bytes(table: list[list[str]]) -> bytes:
    return log_table.csv_bytes(COLUMNS, table)


def html_bytes(table: list[list[str]], heading: str) -> bytes:
    empty = "" if table else "<p>Nothing was withheld as privileged.</p>\n"
    return log_table.html_bytes(
        COLUMNS,
        table,
        title="Privilege log",
        heading=heading,
        preface=empty,
        extra_style="td:nth-child(9){font-family:monospace;word-break:break-all}",
    )
