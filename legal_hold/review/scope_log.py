"""The scope log: records of the subjects in scope whose events lie outside the production's
scope, listed instead of rendered (an empty document helps no reader).

Each row names the record as the production's documents would (a thread by its reference, a
chart or a custodian's activity by the name the production already shows), its ledger positions
and why it was left out; never any content. The events themselves are in events.bin, without
their payloads, so each subject's history still proves complete. A CSV (RFC 4180, UTF-8 with
BOM, CR LF, formula-looking cells prefixed with an apostrophe) and an HTML table of the same rows.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence

from legal_hold.review.items import LeftOut
from legal_hold.review.loadfile import position_span
from legal_hold.review.privilege_log import _cell

COLUMNS = ("No.", "Record", "Ledger positions", "Events", "Reason")


def rows(left_out: Sequence[LeftOut]) -> list[list[str]]:
    return [
        [str(n), item.record, ", ".join(map(str, item.positions)), str(len(item.positions)),
         item.reason]
        for n, item in enumerate(left_out, start=1)
    ]  # fmt: skip


def spans(left_out: Sequence[LeftOut]) -> str:
    return "; ".join(position_span(list(item.positions)) for item in left_out)


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
    empty = "" if table else "<p>Nothing was left out: every record is within the scope.</p>\n"
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Out-of-scope log: {html.escape(heading)}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse;font-size:90%}"
        "td,th{border:1px solid #999;padding:2px 6px;vertical-align:top}</style></head><body>\n"
        f"<h1>Out-of-scope log</h1>\n<p>{html.escape(heading)}</p>\n"
        "<p>Records of the people in scope whose events fall outside the scope of this "
        "production. They are not rendered; their events are in the bundle without content, "
        "so each person's history still proves complete.</p>\n"
        f"{empty}<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n"
        "</body></html>\n"
    )
    return page.encode("utf-8")
