"""The two logs a production carries beside its documents, the privilege log and the
out-of-scope log, as a table written twice: CSV for a review platform (UTF-8 with a BOM, CRLF,
cells that a spreadsheet would run as a formula quoted) and one HTML page to read."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence

# A cell starting so is a formula to a spreadsheet (CSV injection): it is quoted with "'".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_STYLE = (
    "body{font-family:sans-serif}table{border-collapse:collapse;font-size:90%}"
    "td,th{border:1px solid #999;padding:2px 6px;vertical-align:top}"
)


def cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_bytes(columns: Sequence[str], table: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([cell(v) for v in row] for row in table)
    return out.getvalue().encode("utf-8-sig")


def html_bytes(
    columns: Sequence[str],
    table: list[list[str]],
    *,
    title: str,
    heading: str,
    preface: str,
    extra_style: str = "",
) -> bytes:
    """The page: ``title`` and ``heading`` are text; ``preface`` is HTML said before the table
    (the note that the log is empty among it)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>\n" for row in table
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}: {html.escape(heading)}</title>"
        f"<style>{_STYLE}{extra_style}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(heading)}</p>\n{preface}"
        f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n"
        "</body></html>\n"
    )
    return page.encode("utf-8")
