"""The gate where holds beat retention, on random holds, releases and disposal attempts:
a disposal succeeds exactly when no active hold covers the patient (both stores)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from domain.patients import Patient
from events.ledger import Ledger
from legal_hold import holds as lh
from legal_hold.errors import NothingToDispose, UnderLegalHold
from legal_hold.holds import Scope
from legal_hold.retention import Policy, dispose

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = Policy.simple("keep-nothing-extra", adult_years=0, minor_years=0)
PATIENTS = 3

place = st.tuples(st.just("place"), st.sets(st.integers(0, PATIENTS - 1), min_size=1))
release = st.tuples(st.just("release"), st.integers(0, 7), st.none() | st.integers(0, 2))
attempt = st.tuples(st.just("dispose"), st.integers(0, PATIENTS - 1))
steps = st.lists(st.one_of(place, release, attempt), min_size=1, max_size=10)


@settings(
    max_examples=12,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_disposal_succeeds_iff_no_active_hold_covers_the_patient(
    ledger: Ledger,
    steps: list[tuple],  # type: ignore[type-arg]
) -> None:
    by = uuid4()
    matter = lh.open_matter(ledger, name="M", number="1", forum=None, at=T0, by=by).id
    patients: list[UUID] = []
    for _ in range(PATIENTS):
        patient = Patient.register(
            mrn="M", given_name="A", family_name="B", birth_date=date(1970, 1, 1), sex="other"
        )
        ledger.save(patient)
        patients.append(patient.id)
    at = datetime.now(UTC) + timedelta(days=1)
    holds: list[tuple[UUID, set[int]]] = []  # the model: each hold's patients, empty = released
    disposed: set[int] = set()
    for step in steps:
        if step[0] == "place":
            hold = lh.place_hold(
                ledger,
                matter_id=matter,
                name="h",
                scope=Scope.of(patients=[patients[i] for i in step[1]]),
                at=T0,
                by=by,
            )
            holds.append((hold.id, set(step[1])))
        elif step[0] == "release" and holds:
            hold_id, covered = holds[step[1] % len(holds)]
            if not covered:
                continue
            part = step[2]
            if part is None or part not in covered or covered == {part}:
                lh.release_hold(ledger, hold_id, reason="r", at=T0, by=by)
                covered.clear()
            else:
                lh.release_hold(
                    ledger, hold_id, patients=[patients[part]], reason="r", at=T0, by=by
                )
                covered.discard(part)
        elif step[0] == "dispose":
            i = step[1]
            expected_holds = {h for h, covered in holds if i in covered}
            if i in disposed:
                with pytest.raises((NothingToDispose, UnderLegalHold)):
                    dispose(ledger, patients[i], policy=POLICY, by=by, at=at)
            elif expected_holds:
                with pytest.raises(UnderLegalHold) as refused:
                    dispose(ledger, patients[i], policy=POLICY, by=by, at=at)
                assert set(refused.value.hold_ids) == expected_holds
            else:
                dispose(ledger, patients[i], policy=POLICY, by=by, at=at)
                disposed.add(i)
    # Whatever happened, every patient an active hold covers is still readable.
    for i in {i for _, covered in holds for i in covered} - disposed:
        assert ledger.repository.get(patients[i]).mrn == "M"
    # Release every hold: the rest are then disposable.
    for hold_id, covered in holds:
        if covered:
            lh.release_hold(ledger, hold_id, reason="end", at=T0, by=by)
    for i in set(range(PATIENTS)) - disposed:
        dispose(ledger, patients[i], policy=POLICY, by=by, at=at)
