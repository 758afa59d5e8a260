"""Email exports (.eml files, or mbox files of several) into threads (docs/IMPORTS.md §5).

Each message is kept as the exact bytes it was exported as; its header fields, ``Date:``
included, are kept as sent (``domain.messages.email_headers``). Messages joined by Message-ID,
In-Reply-To and References form one thread; a message that names none of the others starts its
own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import InvalidEntry
from domain.imports.report import Parsed
from domain.messages import email_headers
from domain.original_times import InvalidTime, parse_email_date

REQUIRED_FIELDS = ("From", "Date")  # RFC 5322 §3.6: the only fields every message must have
_MSG_ID = re.compile(r"<[^<>\s]+>")
_MBOX_FROM = re.compile(rb"^From [^\r\n]*\r?\n", re.MULTILINE)


@dataclass(frozen=True)
class EmailItem:
    raw: bytes
    topic: str
    ids: tuple[str, ...]  # its own Message-ID first (if any), then the ones it refers to


def split_file(name: str, data: bytes) -> list[tuple[str, bytes]]:
    """The messages of one file: an mbox (starts with a ``From `` line) or a single message.

    In an mbox the ``From `` separator lines are not part of any message; ``>From`` quoting is
    left as it is (mboxo and mboxrd quote differently, so undoing it could change the bytes).
    """
    separators = list(_MBOX_FROM.finditer(data))
    if not separators or separators[0].start() != 0:
        return [(name, data)]
    ends = [m.start() for m in separators[1:]] + [len(data)]
    return [
        (f"{name} message {n}", data[m.end() : end])
        for n, (m, end) in enumerate(zip(separators, ends, strict=True), start=1)
    ]


def parse_emails(files: list[tuple[str, bytes]]) -> Parsed[EmailItem]:
    """Every message of ``files`` (name, bytes), accepted or rejected with its reason."""
    parsed: Parsed[EmailItem] = Parsed()
    for name, data in files:
        for location, raw in split_file(name, data):
            try:
                headers = email_headers(raw)
            except InvalidEntry as e:
                parsed.reject(location, str(e))
                continue
            names = {n.lower() for n, _ in headers}
            missing = [
                f"has no {f}: header field" for f in REQUIRED_FIELDS if f.lower() not in names
            ]
            if missing:
                parsed.reject(location, *missing)
                continue
            # The sent time is read on every view and export: a Date no reader can place is
            # refused here rather than kept as text nobody can order.
            date = next(v for n, v in headers if n.lower() == "date")
            try:
                parse_email_date(date)
            except InvalidTime as e:
                parsed.reject(location, f"Date: header field {e}")
                continue
            parsed.accept(location, _item(raw, headers))
    return parsed


def _item(raw: bytes, headers: list[list[str]]) -> EmailItem:
    def values(field: str) -> list[str]:
        return [v for n, v in headers if n.lower() == field]

    own = [i for v in values("message-id") for i in _MSG_ID.findall(v)][:1]
    replied = values("in-reply-to") + values("references")
    refers = [i for v in replied for i in _MSG_ID.findall(v)]
    subject = " ".join(" ".join(values("subject")).split())
    return EmailItem(raw=raw, topic=subject or "(no subject)", ids=tuple(own + refers))


def threads(items: list[EmailItem]) -> list[list[int]]:
    """Indexes of ``items`` grouped into threads (linked by any shared message id), each group
    in file order, groups ordered by their first message."""
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[str, int] = {}
    for index, item in enumerate(items):
        for message_id in item.ids:
            if message_id in first_with:
                parent[root(index)] = root(first_with[message_id])
            else:
                first_with[message_id] = index
    groups: dict[int, list[int]] = {}
    for index in range(len(items)):
        groups.setdefault(root(index), []).append(index)
    return sorted(groups.values(), key=lambda g: g[0])
