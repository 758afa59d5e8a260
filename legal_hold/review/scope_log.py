"""The scope log: records of the subjects in scope whose events lie outside the production's
scope, listed instead of rendered (an empty document helps no reader).

Each row names the record as the production's documents would (a thread by its reference, a
chart or a custodian's activity by the name the production already shows), its ledger positions
and why it was left out; never any content. The events themselves are in events.bin, without
their payloads, so each subject's history still proves complete. A CSV (RFC 4180, UTF-8 with
BOM, CR LF, formula-looking cells prefixed with an apostrophe) and an HTML table of the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from legal_hold.review import log_table
from legal_hold.review.items import LeftOut
from legal_hold.review.loadfile import position_span

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
    return log_table.csv_bytes(COLUMNS, table)


def html_bytes(table: list[list[str]], heading: str) -> bytes:
    empty = "" if table else "<p>Nothing was left out: every record is within the scope.</p>\n"
    about = (
        "<p>Records of the people in scope whose events fall outside the scope of this "
        "production. They are not rendered; their events are in the bundle without content, "
        "so each person's history still proves complete.</p>\n"
    )
    return log_table.html_bytes(
        COLUMNS, table, title="Out-of-scope log", heading=heading, preface=about + empty
    )
