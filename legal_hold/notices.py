"""The notice outbox, and sending what is due at time T: on the server's own schedule (every
``CHARTLEDGER_NOTICE_EVERY_SECONDS``, ``api/notice_loop.py``), or at once with
``chartledger holds remind`` / ``POST /holds/remind``.

Notices go by SMTP when ``CHARTLEDGER_SMTP_HOST`` is set, otherwise they are written as RFC 5322
files (``.eml``) to ``$CHARTLEDGER_HOME/outbox`` for someone to send or print. Each message sent is
then recorded on its hold (``NoticeSent``), so the next run does not send it again; a message
whose recording failed is sent again (at least once, never silently dropped). Every sending
round holds one lock across the practice's processes (``send_due_alone``; on PostgreSQL across
machines too) and reads what was sent under it, so two rounds never send one notice twice.
Silent holds send nothing. Messages name the matter, the hold and the notice; never a patient.

SMTP settings (environment): ``CHARTLEDGER_SMTP_HOST``, ``CHARTLEDGER_SMTP_PORT`` (587),
``CHARTLEDGER_SMTP_USER``, ``CHARTLEDGER_SMTP_PASSWORD``, ``CHARTLEDGER_SMTP_FROM``,
``CHARTLEDGER_SMTP_STARTTLS`` (1; 0 to send in the clear, for a local relay only), and
``CHARTLEDGER_NOTICE_ADDRESSES``: a JSON file mapping user ids to e-mail addresses (default
``$CHARTLEDGER_HOME/custodian-addresses.json``).
"""

from __future__ import annotations

import json
import os
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol
from uuid import UUID

from eventsourcing.application import Application

from events.ledger import Ledger
from events.named_lock import held
from events.private_files import private_dir, write_private
from legal_hold.custodians import Due, due
from legal_hold.errors import HoldError
from legal_hold.holds import Hold, all_holds, get_matter

SENDING_LOCK = "hold-notices"  # the lock every sending round holds (events/named_lock.py)


class OutboxError(HoldError):
    """A notice could not be handed to the outbox (no address, SMTP refused, folder unwritable)."""


class NoticesNotDelivered(OutboxError):
    """A round that went on past failed deliveries, some of which are still to be sent:
    ``failed`` names each, with its exception's type."""

    def __init__(self, message: str, failed: list[tuple[Due, str]]) -> None:
        super().__init__(message)
        self.failed = failed


@dataclass(frozen=True)
class Notice:
    to: UUID  # the user the message is for
    about: Due
    subject: str
    body: str


class Outbox(Protocol):
    def send(self, notice: Notice, *, at: datetime) -> str:
        """Hand the notice over; return where it went (a file path or 'smtp')."""
        ...


def _message(notice: Notice, sender: str, to: str, at: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(at)
    message["Subject"] = notice.subject
    message["X-Chartledger-Hold"] = str(notice.about.hold_id)
    message["X-Chartledger-Notice"] = f"{notice.about.kind} v{notice.about.version}"
    message.set_content(notice.body)
    return message


class FileOutbox:
    """Messages as ``.eml`` files in a folder."""

    def __init__(self, folder: Path, sender: str = "chartledger@localhost") -> None:
        self.folder = folder
        self.sender = sender

    def send(self, notice: Notice, *, at: datetime) -> str:
        d = notice.about
        stamp = at.strftime("%Y%m%dT%H%M%S%z")
        name = f"{stamp}-{d.hold_id}-{d.custodian_id}-{d.kind}-v{d.version}-{notice.to}.eml"
        path = self.folder / name
        message = _message(notice, self.sender, f"user:{notice.to}", at)
        try:
            private_dir(self.folder)
            write_private(path, bytes(message))
        except OSError as e:  # a full disk, a file where the folder should be: try again later
            raise OutboxError(f"cannot write to the outbox folder: {type(e).__name__}") from None
        return str(path)


class SmtpOutbox:
    """Messages through an SMTP server, to each user's address from the address book."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        addresses: Mapping[str, str],
        user: str | None = None,
        password: str | None = None,
        starttls: bool = True,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.addresses = addresses
        self.user, self.password, self.starttls = user, password, starttls

    def send(self, notice: Notice, *, at: datetime) -> str:
        address = self.addresses.get(str(notice.to))
        if not address:
            raise OutboxError(f"no e-mail address for user {notice.to}")
        message = _message(notice, self.sender, address, at)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as e:
            raise OutboxError(f"SMTP server refused the notice: {type(e).__name__}") from None
        return "smtp"


def outbox_from_env(home: Path, environ: Mapping[str, str] | None = None) -> Outbox:
    env = os.environ if environ is None else environ
    sender = env.get("CHARTLEDGER_SMTP_FROM", "chartledger@localhost")
    host = env.get("CHARTLEDGER_SMTP_HOST")
    if not host:
        return FileOutbox(home / "outbox", sender)
    book = Path(env.get("CHARTLEDGER_NOTICE_ADDRESSES") or home / "custodian-addresses.json")
    addresses = json.loads(book.read_text()) if book.exists() else {}
    return SmtpOutbox(
        host,
        int(env.get("CHARTLEDGER_SMTP_PORT", "587")),
        sender,
        addresses,
        user=env.get("CHARTLEDGER_SMTP_USER"),
        password=env.get("CHARTLEDGER_SMTP_PASSWORD"),
        starttls=env.get("CHARTLEDGER_SMTP_STARTTLS", "1") != "0",
    )


def compose(hold: Hold, matter_number: str, matter_name: str, item: Due) -> Notice:
    """The message for one due item. Escalations go to the user who placed the hold."""
    notice = hold.notices[item.version - 1]
    ack = (
        f"Acknowledge with: chartledger holds ack {hold.id} --custodian {item.custodian_id} "
        f"--version {item.version} (or in Chartledger)."
    )
    scope = hold.scope
    lines = [
        f"Matter {matter_number}: {matter_name}",
        f"Legal hold: {hold.name} ({hold.id}), notice version {item.version}",
        "",
        notice.text,
        "",
        f"Scope: {len(scope.patients)} named patient record(s)"
        + (", every patient's record" if scope.all_patients else "")
        + (f", from {scope.start}" if scope.start else "")
        + (f", until {scope.end}" if scope.end else "")
        + (f", categories: {', '.join(scope.categories)}" if scope.categories else ""),
    ]
    if item.kind == "escalation":
        return Notice(
            to=hold.placed_by,
            about=item,
            subject=f"Escalation: legal hold notice not acknowledged ({matter_number})",
            body=(
                f"Custodian user {item.custodian_id} has not acknowledged notice version "
                f"{item.version} of legal hold {hold.id} (due since {item.since.isoformat()}).\n\n"
                + "\n".join(lines)
            ),
        )
    prefix = "Reminder: " if item.kind == "reminder" else ""
    return Notice(
        to=item.custodian_id,
        about=item,
        subject=f"{prefix}Legal hold notice: preserve records ({matter_number})",
        body="\n".join([*lines, "", ack]),
    )


@dataclass(frozen=True)
class Sent:
    due: Due
    where: str


def send_due(
    ledger: Application, outbox: Outbox, *, at: datetime, keep_going: bool = False
) -> list[Sent]:
    """Send every notice, reminder and escalation due at ``at``, recording each on its hold.

    The first delivery the outbox refuses ends the run with its ``OutboxError``; with
    ``keep_going`` the rest are tried first, and then ``NoticesNotDelivered`` says how many
    failed (they are due still, so the next run tries them again). A failure to record a
    delivery ends the run either way: that message goes again next run (at least once)."""
    sent: list[Sent] = []
    failed: list[tuple[Due, str]] = []
    for hold in all_holds(ledger):
        items = due(hold, at=at)
        if not items:
            continue
        matter = get_matter(ledger, hold.matter_id)
        for item in items:
            try:
                where = outbox.send(compose(hold, matter.number, matter.name, item), at=at)
            except OutboxError as e:
                if not keep_going:
                    raise
                failed.append((item, type(e).__name__))
                continue
            hold.record_delivery(custodian_id=item.custodian_id, kind=item.kind, at=at)
            ledger.save(hold)
            sent.append(Sent(item, where))
    if failed:
        kinds = ", ".join(sorted({failure for _, failure in failed}))
        raise NoticesNotDelivered(
            f"{len(failed)} notice(s) not delivered ({kinds}); {len(sent)} sent", failed
        )
    return sent


def send_due_alone(
    ledger: Ledger, outbox: Outbox, *, at: datetime, keep_going: bool = False
) -> list[Sent]:
    """``send_due`` holding the practice's sending lock: a round that another process's round
    (the server's schedule, someone's ``holds remind``) started first waits for it to end, then
    reads what it recorded and sends only what is still due."""
    with held(ledger.db, ledger.config.home, SENDING_LOCK, wait=True):
        return send_due(ledger, outbox, at=at, keep_going=keep_going)
