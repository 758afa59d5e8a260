"""The care view on random sequences of bookings, cancellations, care-team assignments,
registered-provider changes and thread activity by clinicians, staff and owners (both stores):
it gives a clinician a patient's chart exactly when someone other than the clinician put them
in the patient's care and that has not been undone, a booking counting only when staff or an
owner made it. The model below is written from the rule, not from the view."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from domain import appointments as scheduling
from domain.appointments import Appointment
from domain.care_team import CareAssignment, RegisteredProvider
from domain.errors import ChartError
from domain.messages import Thread
from domain.patients import Patient
from domain.users import User
from events.context import acting
from events.ledger import Ledger
from projections.care import CareView, has_care
from projections.runner import Runner

T0 = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)
CLINICIANS = 2  # actors 0 and 1 are the clinicians who may be put in care
ACTORS = 4  # 2: staff, 3: an owner
ROLES = ("clinician", "clinician", "staff", "owner")
FRONT_DESK = (2, 3)  # the actors whose bookings arrange care

actor = st.integers(0, ACTORS - 1)
clinician = st.integers(0, CLINICIANS - 1)
step = st.one_of(
    st.tuples(st.just("book"), actor, clinician),
    st.tuples(st.just("cancel"), actor, st.integers(0, 7)),
    st.tuples(st.just("check_in"), actor, st.integers(0, 7)),
    st.tuples(st.just("assign"), actor, clinician),
    st.tuples(st.just("end"), actor, clinician),
    st.tuples(st.just("provider"), actor, clinician),
    st.tuples(st.just("clear"), actor, st.just(0)),
    st.tuples(st.just("thread"), actor, st.just(0)),
)
steps = st.lists(step, min_size=1, max_size=12)


@dataclass
class Model:
    """What the rule says, kept as plainly as possible: each way in, who granted it, and
    whether it still holds."""

    # appointment index -> (provider, booked by, status)
    appointments: list[list[int | str]] = field(default_factory=list)
    # clinician -> (active, last assigned by)
    assignments: dict[int, tuple[bool, int]] = field(default_factory=dict)
    provider: tuple[int, int] | None = None  # (clinician, named by)

    def in_care(self, who: int) -> bool:
        booked = any(
            p == who and by in FRONT_DESK and status != "cancelled"
            for p, by, status in self.appointments
        )
        active, by = self.assignments.get(who, (False, who))
        assigned = active and by != who
        registered = self.provider is not None and self.provider[0] == who
        return booked or assigned or (registered and self.provider[1] != who)


@settings(
    max_examples=40,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_the_care_view_grants_a_chart_iff_someone_else_put_the_clinician_in_care(
    ledger: Ledger,
    steps: list[tuple[str, int, int]],
) -> None:
    # Fresh each example (examples share the store), with their roles on the record.
    people = [User.register(name=f"User {n}", role=role) for n, role in enumerate(ROLES)]
    ledger.save(*people)
    users = [person.id for person in people]
    patient = Patient.register(
        mrn="M", given_name="A", family_name="B", birth_date=date(1970, 1, 1), sex="other"
    )
    ledger.save(patient)
    runner = Runner(ledger, [CareView()])
    model = Model()
    booked: list[Appointment] = []
    for n, (kind, who, arg) in enumerate(steps):
        by = users[who]
        with acting(f"user:{by}", "s"):
            try:
                apply_step(ledger, kind, by, users, patient.id, arg, n, booked)
            except ChartError:  # refused by the domain (self-assignment, wrong state): no change
                continue
        model_step(model, kind, who, arg, len(booked))
        runner.catch_up()
        for c in range(CLINICIANS):
            assert has_care(ledger.db, str(users[c]), str(patient.id)) == model.in_care(c), (
                steps[: n + 1],
                c,
            )


def apply_step(
    ledger: Ledger,
    kind: str,
    by: UUID,
    users: list[UUID],
    patient_id: UUID,
    arg: int,
    n: int,
    booked: list[Appointment],
) -> None:
    get = ledger.repository.get
    if kind == "book":
        start = T0 + timedelta(hours=n)
        end = start + timedelta(minutes=30)
        days = scheduling.provider_days(get, users[arg], (start, end))
        made = scheduling.book(
            days.values(),
            patient_id=patient_id,
            provider_id=users[arg],
            start=start,
            end=end,
            reason="visit",
        )
        ledger.save(*made)
        booked.append(made[0])  # type: ignore[arg-type]
    elif kind in ("cancel", "check_in"):
        if not booked:
            raise ChartError("nothing booked")
        appointment = get(booked[arg % len(booked)].id)
        if kind == "check_in":
            appointment.check_in(at=T0)
            ledger.save(appointment)
            return
        days = scheduling.provider_days(
            get, appointment.provider_id, (appointment.start, appointment.end)
        )
        ledger.save(*scheduling.cancel(appointment, days.values(), reason="r", at=T0, by=by))
    elif kind == "assign":
        try:
            current = get(CareAssignment.create_id(patient_id, users[arg]))
        except AggregateNotFoundError:
            ledger.save(
                CareAssignment.assign(patient_id=patient_id, user_id=users[arg], by=by, at=T0)
            )
            return
        current.assign_again(by=by, at=T0)
        ledger.save(current)
    elif kind == "end":
        try:
            current = get(CareAssignment.create_id(patient_id, users[arg]))
        except AggregateNotFoundError:
            raise ChartError("never assigned") from None
        current.end(by=by, at=T0)
        ledger.save(current)
    elif kind in ("provider", "clear"):
        try:
            current = get(RegisteredProvider.create_id(patient_id))
        except AggregateNotFoundError:
            if kind == "clear":
                raise ChartError("no provider") from None
            ledger.save(
                RegisteredProvider.appoint(patient_id=patient_id, user_id=users[arg], by=by, at=T0)
            )
            return
        if kind == "clear":
            current.clear(by=by, at=T0)
        else:
            current.change(user_id=users[arg], by=by, at=T0)
        ledger.save(current)
    elif kind == "thread":
        thread = Thread.start(kind="secure", topic="t", patient_ids=[patient_id], user_ids=[by])
        thread.post(sender=f"user:{by}", body="hello", at=T0)
        ledger.save(thread)


def model_step(model: Model, kind: str, who: int, arg: int, appointments: int) -> None:
    """The model's change for a step the domain accepted."""
    if kind == "book":
        model.appointments.append([arg, who, "booked"])
    elif kind == "cancel":
        model.appointments[arg % appointments][2] = "cancelled"
    elif kind == "check_in":
        model.appointments[arg % appointments][2] = "checked_in"
    elif kind == "assign":
        model.assignments[arg] = (True, who)
    elif kind == "end":
        model.assignments[arg] = (False, model.assignments[arg][1])
    elif kind == "provider":
        model.provider = (arg, who)
    elif kind == "clear":
        model.provider = None
    # "thread": starting a thread about the patient, or posting to it, changes nothing.
