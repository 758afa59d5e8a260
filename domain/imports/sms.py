"""SMS exports in the "SMS Backup & Restore" XML format (docs/IMPORTS.md §6).

That Android app (SyncTech) writes ``<smses count="N">`` holding one ``<sms .../>`` per message,
every detail an attribute: ``address`` (the other party), ``date`` (milliseconds since 1970,
UTC), ``type`` (1 received, 2 sent, 3 draft, 4 outbox, 5 failed, 6 queued), ``body`` and more
(``date_sent``, ``readable_date``, ``contact_name``, ``service_center``, ...). Every attribute is
kept as sent, as text, in the message's provider metadata; ``date`` is its sent time. One thread
per ``address``. MMS (``<mms>``) is not imported and is reported as rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from xml.sax import SAXParseException
from xml.sax.handler import ContentHandler
from xml.sax.xmlreader import AttributesImpl, Locator

from defusedxml import DefusedXmlException
from defusedxml import sax as defused_sax

from domain.imports.report import Parsed

FORMAT = "SMS Backup & Restore XML"
OWN_NUMBER = "this-phone"
"""The exporting phone's own number is not in the file: it stands as this in from/to."""
DIRECTIONS = {"1": "received", "2": "sent"}
_MILLIS = re.compile(r"[1-9][0-9]{0,14}\Z", re.ASCII)
_MILLIS_OR_ZERO = re.compile(r"[0-9]{1,15}\Z", re.ASCII)  # phones write date_sent="0" at times


@dataclass(frozen=True)
class SmsItem:
    from_number: str
    to_number: str
    body: str
    sent_at: str
    address: str
    metadata: dict[str, Any]


def parse_sms_export(data: bytes) -> Parsed[SmsItem]:
    """Every ``<sms>`` and ``<mms>`` of the export, accepted or rejected with its reason; named
    ``sms N (line L)`` in file order. A file that is not such an export is one rejection."""
    parsed: Parsed[SmsItem] = Parsed()
    reader = _Elements()
    try:
        # defusedxml refuses a DOCTYPE (and with it any entity) once expat has decoded the
        # text, so in every encoding expat reads: UTF-8, UTF-16 either way round, a declared
        # one. A search of the raw bytes for "<!DOCTYPE" missed UTF-16.
        defused_sax.parseString(data, reader, forbid_dtd=True)
    except DefusedXmlException:
        parsed.reject("file", "declares a DOCTYPE or entities, which an export never does")
        return parsed
    except SAXParseException as e:
        why = e.getMessage()
        parsed.reject("file", f"is not well-formed XML (line {e.getLineNumber()}: {why})")
        return parsed
    root, elements = reader.root, reader.elements
    if root != ["smses"]:
        parsed.reject("file", "is not an SMS Backup & Restore export (no <smses> root)")
        return parsed
    for number, (name, line, attributes) in enumerate(elements, start=1):
        location = f"{name} {number} (line {line})"
        if name == "mms":
            parsed.reject(location, "MMS is not imported")
            continue
        reasons = _check(attributes)
        if reasons:
            parsed.reject(location, *reasons)
        else:
            parsed.accept(location, _item(attributes))
    return parsed


class _Elements(ContentHandler):
    """The root's name, and each ``<sms>`` and ``<mms>`` with its line and attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.root: list[str] = []
        self.elements: list[tuple[str, int, dict[str, str]]] = []
        self._locator: Locator | None = None

    def setDocumentLocator(self, locator: Locator) -> None:
        self._locator = locator

    def startElement(self, name: str, attrs: AttributesImpl) -> None:
        if not self.root:
            self.root.append(name)
        elif name in ("sms", "mms"):
            line = self._locator.getLineNumber() if self._locator is not None else 0
            self.elements.append((name, line, dict(attrs.items())))


def _check(attributes: dict[str, str]) -> list[str]:
    reasons = []
    if not attributes.get("address", "").strip():
        reasons.append("address is missing or empty")
    if _MILLIS.match(attributes.get("date", "")) is None:
        reasons.append("date is not a time in milliseconds since 1970")
    sent = attributes.get("date_sent")
    if sent is not None and _MILLIS_OR_ZERO.match(sent) is None:
        reasons.append("date_sent is not a time in milliseconds since 1970")
    if attributes.get("type") not in DIRECTIONS:
        reasons.append("type is not 1 (received) or 2 (sent)")
    if "body" not in attributes:
        reasons.append("has no body attribute")
    return reasons


def _item(attributes: dict[str, str]) -> SmsItem:
    address = attributes["address"]
    received = attributes["type"] == "1"
    return SmsItem(
        from_number=address if received else OWN_NUMBER,
        to_number=OWN_NUMBER if received else address,
        body=attributes["body"],
        sent_at=attributes["date"],
        address=address,
        metadata={
            "format": FORMAT,
            "attributes": {k: v for k, v in attributes.items() if k != "body"},
        },
    )
