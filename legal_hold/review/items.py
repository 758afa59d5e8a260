"""What a production hands to the review-platform writers (Bates, PDFs, load files, declarations).

The bundle writer (``legal_hold.production``) gathers these from the ledger; the review writers
(``legal_hold.review``) only lay them out for people and review platforms. Every file the review
writers return is listed, with its SHA-256, in the bundle's signed manifest like any other file.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TimelineEntry:
    """One event of a chart timeline or a message thread, as a reviewer reads it."""

    position: int  # the event's leaf position in the log
    recorded: str  # the ledger timestamp, YYYY-MM-DDTHH:MM:SS.ffffffZ
    original: str | None  # a time the source supplied, exactly as received
    actor: str | None  # display name or user:<id> of who caused it
    kind: str  # the event type, e.g. "Lab result recorded"
    text: str  # the readable content; empty when withheld
    # None, "privileged", "security credential", "out of scope" or "disposed"
    withheld: str | None = None
    # A chart's part this entry belongs to ("Problems", "Lab results", ...); "" for none.
    section: str = ""
    # The cells of its row when its section is a table (``Timeline.columns``).
    row: tuple[str, ...] = ()
    # What ``original`` is, e.g. "email Date header", "SMS sent time".
    original_label: str = "source time"


@dataclass(frozen=True)
class Native:
    """A file produced in its native form: an uploaded document or an ingested email (.eml)."""

    path: str  # where the bundle writer put it, relative to the bundle root (natives/...)
    sha256: str  # hex of the bytes at ``path``
    file_name: str  # the original file name (or "<message-id>.eml")
    media_type: str
    custodian: str  # who holds it: the uploader, or the mailbox owner
    date_created: str | None
    date_modified: str | None
    date_sent: str | None = None  # email and SMS only
    sender: str | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    subject: str | None = None
    position: int = 0  # leaf position of the event that stored it


@dataclass(frozen=True)
class Timeline:
    """A patient's chart timeline or one message thread, rendered as one PDF."""

    title: str  # e.g. "Chart — Zoë Łukasiewicz (MRN 0042)" or "Message thread — Lab results"
    custodian: str
    kind: str  # "chart" or "thread"
    entries: tuple[TimelineEntry, ...]
    # Facts shown at the top of the first page, e.g. ("Date of birth", "1961-04-02").
    header: tuple[tuple[str, str], ...] = ()
    # Sections laid out as tables: section -> column headings (an entry's ``row`` fills them).
    columns: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # A reference for the metadata column (the patient's or thread's ledger subject).
    reference: str = ""


@dataclass(frozen=True)
class LeftOut:
    """Ledger events of a record that are outside the production's scope: not rendered as a
    document, listed in the scope log with why (no content, no names beyond the scope's)."""

    record: str  # e.g. "Message thread 5f1c…" (its stream), never its topic
    positions: tuple[int, ...]
    reason: str


@dataclass(frozen=True)
class PrivilegeEntry:
    """One item withheld with a claim, for the privilege log (FRCP 26(b)(5)(A)): privileged,
    or a login credential that is never produced."""

    position: int
    date: str
    type: str
    author: str | None
    recipients: tuple[str, ...]
    subject: str
    privilege: str  # e.g. "attorney-client", "security credential: not produced"
    commitment: str  # hex of the event's salted commitment, which still proves it exists


@dataclass(frozen=True)
class ReviewInput:
    """Everything the review writers need, gathered by the bundle writer."""

    matter_name: str
    matter_number: str
    forum: str | None
    producing_party: str
    produced_at: str  # timestamp
    bates_prefix: str
    checkpoint_size: int
    checkpoint_root: str  # hex
    checkpoint_key_id: str
    format_version: str  # the bundle format's version, e.g. "1"
    software_version: str
    timelines: tuple[Timeline, ...] = ()
    natives: tuple[Native, ...] = ()
    privileged: tuple[PrivilegeEntry, ...] = ()
    event_count: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    bates_start: int = 1  # the first Bates number (a later volume continues the numbering)
    left_out: tuple[LeftOut, ...] = ()  # records outside the scope, for the scope log


@dataclass(frozen=True)
class ReviewFile:
    """A file the review writers wrote, relative to the bundle root, with its Bates range if any."""

    path: str
    beg_bates: str | None = None
    end_bates: str | None = None
