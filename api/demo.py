"""``chartledger demo``: a small demo practice in the configured store.

Three clinicians, a front-desk account and a risk manager with known passwords and known TOTP
secrets (made up, like everything here: a real practice's users enroll with a code,
``POST /auth/enroll``), 50 patients, a week of
appointments (each patient booked with one clinician, so that clinician has a care relationship),
labs, signed notes and secure messages, and a matter whose hold keeps the first two patients'
records and Dr. Ames's (``DEMO_MATTER``). Loading twice changes nothing. The data is made up.
The logins are written down as set (``api/demo_logins.py``) and shown again only while valid.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime, timedelta
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
from events.context import acting
from events.ledger import Ledger
from legal_hold import holds

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


def load_demo(ledger: Ledger, settings: Settings, patients: int = 50, seed: int = 7) -> bool:
    """Load the demo practice; False if it was already there."""
    if already_loaded(ledger):
        return False
    rng = random.Random(seed)
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
        with acting(user_subject(made.user.id), "demo"):
            ledger.save(made.user, made.account)
        users[username] = made.user.id
        assert made.account.password_hash is not None  # new_account sets one
        made_logins.append(
            DemoLogin(username, password, made.totp_secret, made.account.password_hash)
        )
    # Written down as set, so a later run shows them only while they still work.
    remember(ledger.config.home, made_logins)
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
        with acting(user_subject(desk), "demo"):
            ledger.save(patient, claim)
        provider = clinicians[n % len(clinicians)]
        _book(ledger, desk, provider, patient.id, monday, n)
        _chart(ledger, rng, provider, patient.id, monday + timedelta(days=n % 5))
        held.append(patient.id)
    _matter(ledger, users["risk"], held[:DEMO_HOLD_PATIENTS], users["dr.ames"])
    return True


def _matter(ledger: Ledger, risk: UUID, patients: list[UUID], custodian: UUID) -> None:
    name, number, forum = DEMO_MATTER
    at = datetime.now(UTC)
    with acting(user_subject(risk), "demo"):
        matter = holds.open_matter(ledger, name=name, number=number, forum=forum, at=at, by=risk)
        holds.place_hold(
            ledger,
            matter_id=matter.id,
            name="Quill records",
            scope=holds.Scope.of(patients=patients, custodians=[custodian]),
            at=at,
            by=risk,
            notice=DEMO_NOTICE,
        )


def _monday(today: date) -> date:
    return today - timedelta(days=today.weekday())


def _book(
    ledger: Ledger, desk: UUID, provider: UUID, patient_id: UUID, monday: date, n: int
) -> None:
    # Each clinician sees ~17 patients over the week: slots of 30 minutes from 09:00 UTC.
    slot = n // 3
    day = monday + timedelta(days=slot % 5)
    start = datetime(day.year, day.month, day.day, 9, tzinfo=UTC) + timedelta(
        minutes=30 * (slot // 5)
    )
    end = start + timedelta(minutes=30)
    days = scheduling.provider_days(ledger.repository.get, provider, (start, end))
    changed = scheduling.book(
        days.values(),
        patient_id=patient_id,
        provider_id=provider,
        start=start,
        end=end,
        reason="annual visit",
    )
    with acting(user_subject(desk), "demo"):
        ledger.save(*changed)


def _chart(ledger: Ledger, rng: random.Random, provider: UUID, patient_id: UUID, day: date) -> None:
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
    with acting(user_subject(provider), "demo"):
        ledger.save(lab, note, thread)
