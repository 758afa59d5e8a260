"""Patient demographics from a billing system's CSV, through a column map (docs/IMPORTS.md §3).

The map names, for each of our fields, the billing system's column, plus the date format of its
birth dates and its codes for sex. Every row is either accepted or rejected with every reason
found; rows sharing an MRN are all rejected (which one is right is not ours to guess), and so
are rows whose MRN a patient of the practice already holds.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from domain.errors import InvalidEntry
from domain.imports.report import Parsed
from domain.json_depth import check_depth
from domain.patients import SEXES

REQUIRED = ("mrn", "family_name", "given_name", "birth_date", "sex")
DEFAULT_SEX_CODES = {s: s for s in SEXES}


class InvalidMapping(InvalidEntry):
    """The column map itself is malformed (not the CSV)."""


@dataclass(frozen=True)
class ColumnMap:
    """Our field -> the billing system's column; its date format; its codes for sex."""

    columns: dict[str, str]
    date_format: str
    sex_codes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SEX_CODES))
    identifiers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: bytes | str) -> ColumnMap:
        """Read ``{"columns": {...}, "date_format": "%m/%d/%Y", "sex_codes": {...},
        "identifiers": {system: column}}``; ``sex_codes`` and ``identifiers`` are optional."""
        check_depth(data, what="the column map")  # before json.loads can recurse into it
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise InvalidMapping("the column map is not JSON") from None
        if type(raw) is not dict:
            raise InvalidMapping("the column map must be a JSON object")
        unknown = sorted(set(raw) - {"columns", "date_format", "sex_codes", "identifiers"})
        if unknown:
            raise InvalidMapping(f"the column map has unknown keys: {', '.join(unknown)}")
        columns = _text_map(raw.get("columns"), "columns")
        missing = [f for f in REQUIRED if f not in columns]
        extra = sorted(set(columns) - set(REQUIRED))
        if missing or extra:
            raise InvalidMapping(
                f"columns must map exactly {', '.join(REQUIRED)}"
                + (f" (missing {', '.join(missing)})" if missing else "")
                + (f" (unknown {', '.join(extra)})" if extra else "")
            )
        date_format = raw.get("date_format")
        if type(date_format) is not str or "%" not in date_format:
            raise InvalidMapping("date_format must be a strptime format such as %m/%d/%Y")
        sex_codes = _text_map(raw.get("sex_codes", DEFAULT_SEX_CODES), "sex_codes")
        if any(v not in SEXES for v in sex_codes.values()):
            raise InvalidMapping(f"sex_codes values must be one of {', '.join(SEXES)}")
        identifiers = _text_map(raw.get("identifiers", {}), "identifiers")
        return cls(columns, date_format, sex_codes, identifiers)


def _text_map(value: Any, name: str) -> dict[str, str]:
    if type(value) is not dict or not all(
        type(k) is str and type(v) is str and k and v for k, v in value.items()
    ):
        raise InvalidMapping(f"{name} must be a JSON object of non-empty strings")
    return dict(value)


@dataclass(frozen=True)
class PatientRow:
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex: str
    identifiers: tuple[tuple[str, str], ...] = ()


def parse_patients(
    data: bytes, mapping: ColumnMap, existing_mrns: Collection[str] = ()
) -> Parsed[PatientRow]:
    """Every data row of ``data`` accepted as a :class:`PatientRow` or rejected with reasons.

    Rows are named by the line they start on (the header is line 1). Wholly blank lines are not
    rows. A file that cannot be read as CSV at all is one rejection at ``file``.
    """
    parsed: Parsed[PatientRow] = Parsed()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        parsed.reject("file", "is not UTF-8 text")
        return parsed
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error:
        header = None
    if not header:
        parsed.reject("file", "has no header row")
        return parsed
    index = _column_index(header, mapping, parsed)
    if index is None:
        return parsed
    rows: list[tuple[str, str, PatientRow | None]] = []
    line = reader.line_num
    while True:
        start = line + 1
        try:
            row = next(reader, None)
        except csv.Error:
            parsed.reject(f"row {start}", "is not valid CSV (a stray or unterminated quote)")
            break
        line = reader.line_num
        if row is None:
            break
        if not row:
            continue
        location = f"row {start}"
        reasons: list[str] = []
        if len(row) != len(header):
            reasons.append(f"has {len(row)} fields, the header has {len(header)}")
            parsed.reject(location, *reasons)
            continue
        item = _row(row, index, mapping, reasons)
        rows.append((location, row[index["mrn"]], item))
        if reasons:
            parsed.reject(location, *reasons)
    _accept_unique(rows, parsed, existing_mrns)
    parsed.rejections.sort(key=_line_of)
    return parsed


def _line_of(item: Any) -> int:
    number = item.location.removeprefix("row ")
    return int(number) if number.isdigit() else 0


def _column_index(
    header: list[str], mapping: ColumnMap, parsed: Parsed[PatientRow]
) -> dict[str, int] | None:
    wanted = {**mapping.columns, **{f"identifier {s}": c for s, c in mapping.identifiers.items()}}
    duplicated = sorted({c for c in header if header.count(c) > 1} & set(wanted.values()))
    missing = [f"{c!r} (for {f})" for f, c in wanted.items() if c not in header]
    reasons = [f"names column {c!r} more than once" for c in duplicated]
    if missing:
        reasons.append(f"has no column {', '.join(missing)}")
    if reasons:
        parsed.reject("header", *reasons)
        return None
    return {f: header.index(c) for f, c in wanted.items()}


def _row(
    row: list[str], index: dict[str, int], mapping: ColumnMap, reasons: list[str]
) -> PatientRow | None:
    def cell(name: str) -> str:
        return row[index[name]]

    def where(name: str) -> str:
        return f"{name} (column {mapping.columns[name]!r})"

    for name in REQUIRED:
        if not cell(name).strip():
            reasons.append(f"{where(name)} is empty")
    birth_date = None
    if cell("birth_date").strip():
        try:
            birth_date = datetime.strptime(cell("birth_date"), mapping.date_format).date()
        except ValueError:
            rule = f"is not a date in the format {mapping.date_format}"
            reasons.append(f"{where('birth_date')} {rule}")
    sex = mapping.sex_codes.get(cell("sex"))
    if cell("sex").strip() and sex is None:
        codes = ", ".join(sorted(mapping.sex_codes))
        reasons.append(f"{where('sex')} is not one of the mapped codes {codes}")
    identifiers = tuple(
        (system, cell(f"identifier {system}"))
        for system in mapping.identifiers
        if cell(f"identifier {system}").strip()
    )
    if reasons or birth_date is None or sex is None:
        return None
    return PatientRow(
        mrn=cell("mrn"),
        given_name=cell("given_name"),
        family_name=cell("family_name"),
        birth_date=birth_date,
        sex=sex,
        identifiers=identifiers,
    )


def _accept_unique(
    rows: list[tuple[str, str, PatientRow | None]],
    parsed: Parsed[PatientRow],
    existing_mrns: Collection[str],
) -> None:
    """Accept the rows that passed every field check and whose MRN no other row (valid or not)
    and no patient of the practice holds."""
    by_mrn: dict[str, list[str]] = {}
    for location, mrn, _ in rows:
        if mrn.strip():
            by_mrn.setdefault(mrn, []).append(location)
    existing = set(existing_mrns)
    for location, _, item in rows:
        if item is None:
            continue
        others = [o.removeprefix("row ") for o in by_mrn[item.mrn] if o != location]
        reasons = []
        if others:
            reasons.append(f"mrn is also on row {', '.join(others)}")
        if item.mrn in existing:
            reasons.append("mrn already belongs to a patient of this practice")
        if reasons:
            parsed.reject(location, *reasons)
        else:
            parsed.accept(location, item)
