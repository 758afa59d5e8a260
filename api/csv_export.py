"""Reports as CSV (RFC 4180, via the stdlib ``csv`` module): a header row of the field names,
then one row per record, every field, in the JSON answer's order.

Guarded against CSV formula injection (OWASP): a cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return would run as a formula in a spreadsheet, so it gets a
leading ``'``. A cell that starts with ``'`` gets one too, so the guard is undone exactly by
dropping one leading ``'`` from every cell that has one (``unguard``). An empty cell is a null.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from starlette.responses import Response

MEDIA_TYPE = "text/csv"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def guard(value: Any) -> str:
    """One cell: a null is empty; text that a spreadsheet would run gets a leading ``'``."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def unguard(cell: str) -> str | None:
    """What ``guard`` was given, as text (None for an empty cell)."""
    if cell == "":
        return None
    return cell[1:] if cell.startswith("'") else cell


def to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([guard(row[c]) for c in columns] for row in rows)
    return out.getvalue()


class CsvResponse(Response):
    media_type = MEDIA_TYPE
    charset = "utf-8"


def csv_response(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], name: str) -> Response:
    return CsvResponse(
        to_csv(columns, rows), headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def csv_content(description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry of a CSV route."""
    content = {MEDIA_TYPE: {"schema": {"type": "string"}}}
    return {200: {"description": description, "content": content}}
