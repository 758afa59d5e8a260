"""``chartledger demo``: a small demo practice in the configured store.

Three clinicians, a front-desk account and a risk manager with known passwords and known TOTP
secrets (made up, like everything here: a real practice's users enroll with a code,
``POST /auth/enroll``), 50 patients (1 to ``MAX_PATIENTS``), their
appointments (each patient booked with one clinician, so that clinician has a care relationship;
16 a day, Monday to Friday, week after week), labs, signed notes and secure messages, and a
matter whose hold keeps the first two patients' records and Dr. Ames's (``DEMO_MATTER``). All of
it is one save: it loads whole or not at all. Loading twice changes nothing. The data is made up.
The logins are written down as set (``api/demo_logins.py``) and shown again only while valid.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from api.auth import new_account
from api.demo_logins import DemoLogin, remember
from api.settings import Settings
from domain import appointments as scheduling
from domain.base import user_subject
from domain.credentials import account_id
from domain.identifiers import MrnClaim
from domain.labs import LabResult
from domain.messages import Thread
from domain.notes import Note
from domain.patients import Patient
from domain.quantities import Quantity
from events.context import acting_per_stream
from events.ledger import Ledger
from legal_hold import holds
from legal_hold.matters import Matter

DEMO_LOGINS = (
    ("dr.ames", "Dr. Avery Ames", "clinician", "demo-clinician-1"),
    ("dr.baker", "Dr. Blair Baker", "clinician", "demo-clinician-2"),
    ("dr.chen", "Dr. Casey Chen", "clinician", "demo-clinician-3"),
    ("frontdesk", "Fran Desk", "staff", "demo-frontdesk-1"),
    ("risk", "Rita Risk", "risk_manager", "demo-riskmgr-1"),
)
# The demo's lawsuit: a matter with a hold on its first patients' records and Dr. Ames's, so a
# production (``chartledger produce`` or the console) has something to carry from the start.
DEMO_MATTER = ("Quill v. Demo Practice", "CV-DEMO-1", "Superior Court (made up)")
DEMO_HOLD_PATIENTS = 2
DEMO_NOTICE = (
    "Preserve every record of the patients named in Quill v. Demo Practice, and your messages "
    "with them. Acknowledge this notice in the console."
)
SLOTS_A_DAY = 16  # 09:00 to 17:00 UTC
# A bound that keeps the demo a demo: one save of about 9 events a patient (90,000 at the
# bound, held in memory until it commits), some 42 weeks of each clinician's schedule.
MAX_PATIENTS = 10_000
GIVEN = ("Ada", "Ben", "Cora", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun")
FAMILY = ("Quill", "Reyes", "Stone", "Tran", "Usman")
LABS = (
    ("2345-7", "Glucose", "mg/dL", (70, 140)),
    ("2160-0", "Creatinine", "mg/dL", (6, 13)),  # tenths
    ("2093-3", "Cholesterol", "mg/dL", (150, 260)),
)


def demo_totp_secret(username: str) -> bytes:
    """A demo user's TOTP secret: fixed by their username, so that loading the demo again (or
    ``make run`` a second time) can print it. Never for a real account."""
    return hashlib.sha256(f"chartledger demo totp {username}".encode()).digest()[:20]


def already_loaded(ledger: Ledger) -> bool:
    try:
        ledger.repository.get(account_id(DEMO_LOGINS[0][0]))
    except AggregateNotFoundError:
        return False
    return True


class DemoTooLarge(ValueError):
    """More patients than the demo's schedule holds, or none."""


def load_demo(ledger: Ledger, settings: Settings, patients: int = 50, seed: int = 7) -> bool:
    """Load the demo practice; False if it was already there.

    All or nothing: every record is made and checked in memory first (a double booking, say,
    is found before anything is written), then appended in one save, one transaction, each
    stream under the user who made it; the logins are written down only once it committed."""
    if not 1 <= patients <= MAX_PATIENTS:
        raise DemoTooLarge(f"--patients must be from 1 to {MAX_PATIENTS}, not {patients}")
    if already_loaded(ledger):
        return False
    rng = random.Random(seed)
    plan = _Plan(ledger)
    users = {}
    made_logins = []
    for username, name, role, password in DEMO_LOGINS:
        made = new_account(
            settings,
            username=username,
            name=name,
            role=role,
            password=password,
            totp_secret=demo_totp_secret(username),
        )
        plan.add(made.user.id, made.user, made.account)
        users[username] = made.user.id
        assert made.account.password_hash is not None  # new_account sets one
        made_logins.append(
            DemoLogin(username, password, made.totp_secret, made.account.password_hash)
        )
    clinicians = [users["dr.ames"], users["dr.baker"], users["dr.chen"]]
    desk = users["frontdesk"]
    monday = _monday(datetime.now(UTC).date())
    held: list[UUID] = []
    for n in range(patients):
        patient = Patient.register(
            mrn=f"DEMO-{n + 1:04d}",
            given_name=GIVEN[n % len(GIVEN)],
            family_name=FAMILY[n // len(GIVEN) % len(FAMILY)],
            birth_date=date(1940 + rng.randrange(80), 1 + rng.randrange(12), 1 + rng.randrange(28)),
            sex=rng.choice(("female", "male", "other", "unknown")),
            identifiers=[],
        )
        claim = MrnClaim(claim_id=ledger.private_id("mrn", patient.mrn), patient_id=patient.id)
        plan.add(desk, patient, claim)
        provider = clinicians[n % len(clinicians)]
        _book(plan, desk, provider, patient.id, monday, n)
        _chart(plan, rng, provider, patient.id, monday + timedelta(days=n % 5))
        held.append(patient.id)
    _matter(plan, users["risk"], held[:DEMO_HOLD_PATIENTS], users["dr.ames"])
    plan.save()
    # Written down as set, so a later run shows them only while they still work.
    remember(ledger.config.home, made_logins)
    return True


class _Plan:
    """The demo's records, made in memory, and who made each: appended in one save."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.records: dict[UUID, Any] = {}
        self.actors: dict[UUID, str] = {}

    def add(self, by: UUID, *records: Any) -> None:
        for record in records:
            self.records[record.id] = record
            self.actors.setdefault(record.id, user_subject(by))

    def get(self, record_id: UUID) -> Any:
        """A record made here, else the ledger's (a provider day booked twice is one record)."""
        found = self.records.get(record_id)
        return found if found is not None else self.ledger.repository.get(record_id)

    def save(self) -> None:
        with acting_per_stream(self.actors, None, "demo"):
            self.ledger.save(*self.records.values())


def _matter(plan: _Plan, risk: UUID, patients: list[UUID], custodian: UUID) -> None:
    name, number, forum = DEMO_MATTER
    at = datetime.now(UTC)
    # holds.open_matter and place_hold, in the demo's one save: listed in the register with it.
    register = holds.load_register(plan.ledger)
    matter = Matter.open(name=name, number=number, forum=forum, at=at, by=risk)
    register.list_matter(matter.id)
    hold = holds.Hold.place(
        matter_id=matter.id,
        name="Quill records",
        scope=holds.Scope.of(patients=patients, custodians=[custodian]),
        at=at,
        by=risk,
        silent=False,
        reminder_days=7,
        escalation_days=14,
    )
    hold.issue_notice(text=DEMO_NOTICE, at=at, by=risk)
    register.list_hold(hold.id, matter.id)
    plan.add(risk, matter, hold, register)


def _monday(today: date) -> date:
    return today - timedelta(days=today.weekday())


def slot_start(monday: date, slot: int) -> datetime:
    """A clinician's ``slot``-th appointment: 30 minutes, one slot a weekday in turn from 09:00
    UTC, ``SLOTS_A_DAY`` a day, then the next week; distinct slots never overlap. (The schedule
    before ran on past 17:00 without a day's end, so slot 240 wrapped past midnight onto slot
    1's Tuesday 09:00 and the 721st patient stopped the demo with DoubleBooking. The first 80
    slots, 240 patients, are where they were.)"""
    week, in_week = divmod(slot, 5 * SLOTS_A_DAY)
    in_day, weekday = divmod(in_week, 5)
    day = monday + timedelta(weeks=week, days=weekday)
    return datetime(day.year, day.month, day.day, 9, tzinfo=UTC) + timedelta(minutes=30 * in_day)


def _book(plan: _Plan, desk: UUID, provider: UUID, patient_id: UUID, monday: date, n: int) -> None:
    start = slot_start(monday, n // 3)
    end = start + timedelta(minutes=30)
    days = scheduling.provider_days(plan.get, provider, (start, end))
    # Raises DoubleBooking before anything is written: the days are the plan's, in memory.
    changed = scheduling.book(
        days.values(),
        patient_id=patient_id,
        provider_id=provider,
        start=start,
        end=end,
        reason="annual visit",
    )
    plan.add(desk, *changed)


def _chart(plan: _Plan, rng: random.Random, provider: UUID, patient_id: UUID, day: date) -> None:
    at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    loinc, name, unit, (low, high) = LABS[rng.randrange(len(LABS))]
    raw = rng.randrange(low, high)
    value = f"{raw / 10:.1f}" if loinc == "2160-0" else str(raw)
    lab = LabResult.receive(
        patient_id=patient_id,
        loinc_code=loinc,
        test_name=name,
        quantity=Quantity(value, unit),
        performing_lab="Demo Lab",
        source_message=f"OBX|1|NM|{loinc}^{name}^LN||{value}|{unit}\r".encode(),
        source_format="HL7v2",
    )
    note = Note.draft(
        patient_id=patient_id, author_id=provider, kind="progress", text="Well visit."
    )
    note.sign(signed_by=provider, at=at)
    thread = Thread.start(
        kind="secure", topic="Visit follow-up", patient_ids=[patient_id], user_ids=[provider]
    )
    thread.post(sender=user_subject(provider), body="Your results are in the portal.", at=at)
    plan.add(provider, lab, note, thread)
