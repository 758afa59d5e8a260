"""The parts of a FHIR R4 resource that an imported message or encounter keeps as the source
wrote them (docs/IMPORTS.md §9.3): who it names (a Reference), what it codes (a
CodeableConcept), and a Communication's payload. No I/O.

Nothing is looked up or rewritten here: a reference stays its text, an identifier its system
and value, a display its text. A source's practitioner is never made a practice user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# The reader of an attachment's bytes (inline ``data`` or the export's Binary): it names the
# element in its reasons and returns None when it refused.
AttachmentReader = Callable[[dict[str, Any], str, list[str]], bytes | None]


def _given(value: Any) -> bool:
    return type(value) is str and bool(value.strip())


def reference_id(value: Any, kind: str) -> str | None:
    """The id a reference names for ``kind``: ``Kind/id``, a URL ending in ``/Kind/id``
    (a version suffix ``/_history/n`` dropped), else None."""
    if type(value) is not dict or type(value.get("reference")) is not str:
        return None
    ref = value["reference"].split("/_history/")[0]
    head, _, ident = ref.rpartition("/")
    if head == kind or head.endswith("/" + kind):
        return ident
    return None


def party(value: Any) -> dict[str, str] | None:
    """A Reference as the source wrote it: ``reference``, ``type``, the identifier's
    ``system`` and ``value``, ``display``; None when it names nobody."""
    if type(value) is not dict:
        return None
    found: dict[str, str] = {}
    for key in ("reference", "type", "display"):
        if _given(value.get(key)):
            found[key] = value[key]
    ident = value.get("identifier")
    if type(ident) is dict and _given(ident.get("value")):
        found["value"] = ident["value"]
        if _given(ident.get("system")):
            found["system"] = ident["system"]
    if "reference" not in found and "value" not in found and "display" not in found:
        return None
    return found


def concept(value: Any) -> dict[str, Any] | None:
    """A CodeableConcept's codings (system, code, display) and text, as sent; None if empty."""
    if type(value) is not dict:
        return None
    codings = []
    for c in value.get("coding") or ():
        if type(c) is dict:
            kept = {k: c[k] for k in ("system", "code", "display") if _given(c.get(k))}
            if kept:
                codings.append(kept)
    found: dict[str, Any] = {"coding": codings} if codings else {}
    if _given(value.get("text")):
        found["text"] = value["text"]
    return found or None


def concepts(value: Any) -> list[dict[str, Any]]:
    """Every non-empty CodeableConcept of a list (or of one), in order."""
    items = value if type(value) is list else [value]
    return [c for c in map(concept, items) if c is not None]


def coding(value: Any) -> dict[str, str] | None:
    """A Coding's system, code and display, as sent; None if it has no code."""
    if type(value) is not dict or not _given(value.get("code")):
        return None
    return {k: value[k] for k in ("system", "code", "display") if _given(value.get(k))}


def payload_parts(
    payloads: Any, read_attachment: AttachmentReader, reasons: list[str]
) -> list[dict[str, Any]]:
    """A Communication's payload, part by part: a ``contentString`` exactly (``{"text"}``), a
    ``contentAttachment``'s bytes with its contentType and title. A ``contentReference``
    points at a resource the message does not hold: it is refused, not dropped."""
    parts: list[dict[str, Any]] = []
    for n, p in enumerate(payloads if type(payloads) is list else ()):
        element = f"payload[{n}]"
        if type(p) is not dict:
            reasons.append(f"{element} is not an object")
        elif type(p.get("contentString")) is str:
            parts.append({"text": p["contentString"]})
        elif type(p.get("contentAttachment")) is dict:
            attachment = p["contentAttachment"]
            if not _given(attachment.get("contentType")):
                # att-1: an attachment with data SHALL have a contentType; none is guessed.
                reasons.append(f"{element}.contentAttachment.contentType is missing (FHIR att-1)")
                continue
            data = read_attachment(attachment, f"{element}.contentAttachment", reasons)
            if data is None:
                continue
            part: dict[str, Any] = {"data": data, "media_type": attachment["contentType"]}
            if _given(attachment.get("title")):
                part["title"] = attachment["title"]
            parts.append(part)
        elif "contentReference" in p:
            reasons.append(
                f"{element}.contentReference is not read: only contentString and "
                "contentAttachment are imported"
            )
        else:
            reasons.append(f"{element} has no contentString or contentAttachment")
    return parts
