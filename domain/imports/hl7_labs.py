"""Lab results from HL7 v2 ORU^R01 messages, read with python-hl7 (docs/IMPORTS.md §4).

A file holds one or more messages, one segment a line (CR, LF or CRLF), optionally framed by
MLLP (``0x0b`` ... ``0x1c 0x0d``). The message is the unit: it is accepted with all its numeric
results or rejected with every reason found, so a lab's report never lands in pieces. Each
accepted message keeps its exact bytes, to be stored once as a Document that each result names
with its segment.

Every step is linear in the message's size: a message of 20,000 OBX segments is one pass over its
lines, one parse, and one pass over its segments.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from uuid import UUID

import hl7

from domain.errors import InvalidQuantity
from domain.imports.report import Parsed
from domain.original_times import InvalidTime, parse_hl7_ts
from domain.quantities import check_decimal, check_unit

MEDIA_TYPE = "x-application/hl7-v2+er7"
SOURCE_FORMAT = "HL7v2 ORU^R01"
MLLP_START, MLLP_END = b"\x0b", b"\x1c\x0d"
BATCH_SEGMENTS = (b"FHS", b"BHS", b"BTS", b"FTS")
ACCEPTED_STATUSES = ("F", "P")  # final, preliminary; corrections are not new results
# Segments parsed at a time. python-hl7 turns a segment into a tree of lists (some 8 KB for an
# OBX), so a whole 20,000-OBX message parsed at once held 150 MB; a slice at a time holds ~4 MB.
PARSE_SLICE = 500
_OBX = re.compile(rb"(?:\A|[\r\n])OBX")
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)?")
_RANGE = re.compile(r"([+-]?[0-9]+(?:\.[0-9]+)?)\s*-\s*([+-]?[0-9]+(?:\.[0-9]+)?)", re.ASCII)


@dataclass(frozen=True)
class LabItem:
    """One OBX result, its fields as sent."""

    segment: str
    index: int  # the segment's position in its message, MSH being 1
    set_id: str | None  # OBX-1 as sent
    loinc_code: str
    test_name: str
    value: str
    unit: str
    reference_range: str | None
    reference_low: str | None
    reference_high: str | None
    abnormal_flag: str | None
    performing_lab: str
    collected_at: str | None


@dataclass(frozen=True)
class LabMessage:
    """An accepted message: its exact bytes, its patient and its results."""

    raw: bytes
    control_id: str
    patient_id: UUID
    results: tuple[LabItem, ...]


def split_messages(data: bytes) -> list[tuple[bytes, bool]]:
    """The messages of a file, each as its exact bytes (MLLP frames unwrapped) and whether it
    is cut off (an MLLP start block without its end block).

    Batch envelope segments (FHS, BHS, BTS, FTS) belong to no message.
    """
    if data.lstrip(b"\r\n").startswith(MLLP_START):
        frames = data.split(MLLP_START)[1:]
        return [(f[: f.index(MLLP_END)], False) if MLLP_END in f else (f, True) for f in frames]
    messages: list[bytes] = []
    current: list[bytes] = []  # joined once per message: adding line by line was quadratic
    for line in _LINE.finditer(data):
        text = line.group()
        if not text.strip() or text[:3] in BATCH_SEGMENTS:
            continue
        if text.startswith(b"MSH") and current:
            messages.append(b"".join(current))
            current = []
        current.append(text)
    if current:
        messages.append(b"".join(current))
    return [(m, False) for m in messages]


def parse_lab_messages(
    data: bytes, patients: Mapping[str, UUID], max_results: int | None = None
) -> Parsed[LabMessage]:
    """Every message in ``data``, accepted or rejected; ``patients`` maps MRN -> patient id.

    With ``max_results``, a file with more OBX segments than that is refused whole, every
    message rejected for it, before any is parsed (counting segments costs one scan)."""
    parsed: Parsed[LabMessage] = Parsed()
    messages = split_messages(data)
    if not messages:
        parsed.reject("file", "holds no HL7 message")
    if max_results is not None:
        results = sum(len(_OBX.findall(raw)) for raw, _ in messages)
        if results > max_results:
            reason = (
                f"the file holds {results} OBX segments, more than the {max_results} one import "
                "takes: split it into smaller files"
            )
            for number in range(1, len(messages) + 1):
                parsed.reject(f"message {number}", reason)
            return parsed
    for number, (raw, cut) in enumerate(messages, start=1):
        reasons: list[str] = []
        message = _read(raw, cut, reasons)
        if message is not None:
            accepted = _message(raw, message, patients, reasons)
            if not reasons and accepted is not None:
                parsed.accept(f"message {number}", accepted)
                continue
        parsed.reject(f"message {number}", *reasons)
    return parsed


def _read(raw: bytes, cut: bool, reasons: list[str]) -> list[str] | None:
    """The message's segments as text, MSH first (checked to parse), or None with why not."""
    if cut:
        reasons.append("is cut off (an MLLP start block without its end block)")
        return None
    if not raw.startswith(b"MSH"):
        reasons.append("does not start with an MSH segment")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        reasons.append("is not UTF-8 (or ASCII) text")
        return None
    segments = [s for s in re.split(r"\r\n|\r|\n", text) if s]
    try:
        hl7.parse(segments[0])
    except Exception:  # python-hl7 raises several types for malformed MSH; all mean the same
        reasons.append("segment 1 (MSH) is malformed (no field separator or encoding characters)")
        return None
    return segments


def _parsed(segments: list[str]) -> Iterator[tuple[int, hl7.Segment]]:
    """Each segment parsed, with its position (MSH is 1), ``PARSE_SLICE`` at a time: each slice
    is parsed as a message of its own behind the same MSH, so it is read with the message's own
    separators and escapes, and is dropped once its segments are looked at."""
    msh = segments[0]
    yield 1, hl7.parse(msh)[0]
    for start in range(1, len(segments), PARSE_SLICE):
        piece = segments[start : start + PARSE_SLICE]
        # python-hl7 strips the text it parses: a stand-in after a slice that does not end the
        # message keeps the slice's last segment exactly as sent.
        more = ["ZZZ"] if start + PARSE_SLICE < len(segments) else []
        message = hl7.parse("\r".join([msh, *piece, *more]))
        for offset in range(len(piece)):
            yield start + 1 + offset, message[1 + offset]


def _field(segment: hl7.Segment, n: int) -> str:
    """Field ``n`` of the segment as sent ('' if absent); MSH is numbered as HL7 numbers it."""
    return str(segment[n]) if len(segment) > n else ""


def _component(segment: hl7.Segment, n: int, c: int, repetition: int = 1) -> str:
    """Component ``c`` of repetition ``repetition`` of field ``n`` (1-based), HL7 escape
    sequences decoded (``\\S\\`` is ``^``): the text the sender meant, nothing else changed."""
    if len(segment) <= n:
        return ""
    try:
        return str(segment.extract_field(1, n, repetition, c))
    except (IndexError, KeyError):
        return ""


def _repetitions(segment: hl7.Segment, n: int) -> int:
    if len(segment) <= n:
        return 0
    field = segment[n]
    return len(field) if field and isinstance(field[0], hl7.Repetition) else 1


def _where(index: int, segment: hl7.Segment) -> str:
    return f"segment {index} ({segment[0]})"


def _message(
    raw: bytes, segments: list[str], patients: Mapping[str, UUID], reasons: list[str]
) -> LabMessage | None:
    msh = hl7.parse(segments[0])[0]
    if (_component(msh, 9, 1), _component(msh, 9, 2)) != ("ORU", "R01"):
        reasons.append("MSH-9 is not ORU^R01: only lab result messages are imported")
        return None
    control_id = _field(msh, 10)
    for n, name in ((10, "message control id"), (12, "version")):
        if not _field(msh, n):
            reasons.append(f"segment 1 (MSH) has no MSH-{n} ({name}): the segment is cut off")
    # The segments' names (the text before the field separator), to check the message's shape
    # before parsing any more of it.
    kinds = [segment.split(segments[0][3], 1)[0] for segment in segments]
    pids, obrs, obxs = (kinds.count(kind) for kind in ("PID", "OBR", "OBX"))
    if pids != 1:
        reasons.append("has no PID segment" if not pids else "has more than one PID segment")
    if not obrs:
        reasons.append("has no OBR segment")
    if not obxs:
        reasons.append("has no OBX segment")
    if pids != 1 or not obrs or not obxs:
        return None
    sending_lab = _component(msh, 4, 1)
    patient_id: UUID | None = None
    found: list[str] = []  # the results' reasons, reported after the patient's
    results = []
    latest_obr: hl7.Segment | None = None  # the OBR an OBX belongs to: the last one before it
    for index, segment in _parsed(segments):
        kind = kinds[index - 1]
        if kind == "PID":
            patient_id = _patient((index, segment), patients, reasons)
        elif kind == "OBR":
            latest_obr = segment
        elif kind == "OBX" and latest_obr is None:
            found.append(f"{_where(index, segment)}: comes before any OBR")
        elif kind == "OBX":
            item = _result(index, segment, latest_obr, sending_lab, found)
            if item is not None:
                results.append(item)
    reasons.extend(found)
    if reasons or patient_id is None:
        return None
    return LabMessage(raw=raw, control_id=control_id, patient_id=patient_id, results=tuple(results))


def _patient(
    pid: tuple[int, hl7.Segment], patients: Mapping[str, UUID], reasons: list[str]
) -> UUID | None:
    index, segment = pid
    mrn = ""
    for r in range(1, _repetitions(segment, 3) + 1):
        # The repetition whose identifier type (CX-5) is MR, else the first one.
        if _component(segment, 3, 5, r) == "MR" or not mrn:
            mrn = _component(segment, 3, 1, r)
    if not mrn:
        reasons.append(f"{_where(index, segment)}: has no PID-3 patient identifier")
        return None
    if mrn not in patients:
        reasons.append(f"{_where(index, segment)}: PID-3 names no patient of this practice")
        return None
    return patients[mrn]


def _result(
    index: int, obx: hl7.Segment, obr: hl7.Segment, sending_lab: str, reasons: list[str]
) -> LabItem | None:
    where = _where(index, obx)
    found: list[str] = []
    if len(obx) <= 11 or not _field(obx, 11):
        reasons.append(f"{where}: has no OBX-11 (result status): the segment is cut off")
        return None
    status = _field(obx, 11)
    if status not in ACCEPTED_STATUSES:
        found.append(f"OBX-11 result status {status} is not imported (only F and P)")
    if _field(obx, 2) != "NM":
        found.append("OBX-2 value type is not NM: only numeric results are imported")
    code, name = _component(obx, 3, 1), _component(obx, 3, 2)
    if not code or not name:
        found.append("OBX-3 has no code and name (code^name^system)")
    value, unit = _field(obx, 5), _component(obx, 6, 1)
    try:
        check_decimal(value, "OBX-5 value")
    except InvalidQuantity as e:
        found.append(str(e))
    try:
        check_unit(unit, "OBX-6 unit")
    except InvalidQuantity as e:
        found.append(str(e))
    # OBX-14 (observation time) if sent, else OBR-7 (collection time): kept as sent, and read
    # now so that a time no reader can place refuses the message instead of travelling as text.
    collected = _field(obx, 14) or _field(obr, 7) or None
    if collected is not None:
        try:
            parse_hl7_ts(collected)
        except InvalidTime as e:
            found.append(f"{'OBX-14' if _field(obx, 14) else 'OBR-7'} time {e}")
    lab = _component(obx, 23, 1) or sending_lab
    if not lab:
        found.append("no performing lab: OBX-23 and MSH-4 are empty")
    if found:
        reasons.extend(f"{where}: {f}" for f in found)
        return None
    reference = _field(obx, 7) or None
    bounds = _RANGE.fullmatch(reference or "")
    return LabItem(
        segment=where,
        index=index,
        set_id=_field(obx, 1) or None,
        loinc_code=code,
        test_name=name,
        value=value,
        unit=unit,
        reference_range=reference,
        reference_low=bounds.group(1) if bounds else None,
        reference_high=bounds.group(2) if bounds else None,
        abnormal_flag=_field(obx, 8) or None,
        performing_lab=lab,
        collected_at=collected,
    )
