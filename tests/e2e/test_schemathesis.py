"""Schemathesis over the app's OpenAPI document, with every one of its checks: generated requests
(valid and invalid) per operation, then stateful sequences following the document's links, as
a logged-in owner. No answer may be a 5xx, or a status, media type, header or body the document
does not declare; no invalid request may be accepted, and no valid one refused for a rule the
document does not state (issue 17: the OpenAPI tells the truth).

SQLite only: this looks at the HTTP edge, which does not depend on the store (the e2e tests
beside it run every story on both stores). The run is bounded to stay near a minute on two
busy cores; ``CHARTLEDGER_SCHEMATHESIS_EXAMPLES`` raises the number of examples per operation
(and the stateful steps with it) for a longer hunt.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.generation.modes import GenerationMode
from schemathesis.schemas import APIOperation, BaseSchema

from events.config import StoreConfig
from tests.e2e.conftest import Practice

EXAMPLES = int(os.environ.get("CHARTLEDGER_SCHEMATHESIS_EXAMPLES", "10"))
# Logging out (POST /auth/logout) would end the session the rest of the run uses: every later
# request a 401. It is left out of both phases.
# Checks that cannot apply to one operation, and why (never a check for the whole run).
_FILE_FORMAT = (
    "the body is a file in a format JSON Schema cannot describe (CSV rows under a column map, "
    "HL7 v2 segments, RFC 5322 mail, SMS Backup XML): a schema-valid body is mostly not a valid "
    "file, refused item by item in the import's report (422 import-rejected)"
)
INAPPLICABLE: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/imports/patients"): {"positive_data_acceptance": _FILE_FORMAT},
    ("POST", "/imports/labs"): {"positive_data_acceptance": _FILE_FORMAT},
    ("POST", "/imports/email"): {"positive_data_acceptance": _FILE_FORMAT},
    ("POST", "/imports/sms"): {"positive_data_acceptance": _FILE_FORMAT},
    ("POST", "/imports/fhir"): {"positive_data_acceptance": _FILE_FORMAT},
    # Its 404 says the patient's record was never disposed of (a patient just created has no
    # disposal), not that the patient is missing: the check would read it as the created
    # patient lost. Seen in a stateful run following POST /patients to it.
    ("GET", "/patients/{patient_id}/disposal"): {
        "ensure_resource_availability": "404 is 'no disposal of this patient', a sub-record"
    },
}


@schemathesis.serializer("message/rfc822")
def _raw_email(ctx: object, value: object) -> bytes:
    """An e-mail is posted as its raw bytes (``POST /threads/{id}/email``)."""
    return value if isinstance(value, bytes) else str(value).encode()


@schemathesis.serializer("text/csv", "x-application/hl7-v2+er7", "application/zip")
def _raw_import(ctx: object, value: object) -> bytes:
    """An import file is posted as its raw bytes (``POST /imports/patients``, ``/imports/labs``,
    ``/imports/fhir``)."""
    return value if isinstance(value, bytes) else str(value).encode()


def _document_hash(case: schemathesis.Case) -> None:
    """``POST /documents?sha256=`` must be the body's own SHA-256, a rule a schema cannot
    state: a valid request says it, as a client does (a wrong one is the negative case)."""
    if case.query and "sha256" in case.query and isinstance(case.body, bytes | str):
        body = case.body if isinstance(case.body, bytes) else case.body.encode()
        case.query["sha256"] = hashlib.sha256(body).hexdigest()


def _ucum_units(case: schemathesis.Case) -> None:
    """A unit must parse by UCUM's grammar and name UCUM's atoms, more than the schema's
    pattern (its characters) can say: a valid request names a real unit."""
    if isinstance(case.body, dict):
        for field, unit in (("unit", "mg"), ("dose_unit", "mg"), ("to_unit", "g")):
            if isinstance(case.body.get(field), str):
                case.body[field] = unit


def _interval_in_order(case: schemathesis.Case) -> None:
    """An appointment starts before it ends and lasts at most a day; a hold's scope ends on or
    after it starts: comparisons of two fields, which a schema cannot state."""
    if not isinstance(case.body, dict):
        return
    scope = case.body.get("scope")
    if isinstance(scope, dict):
        first, last = scope.get("start"), scope.get("end")
        if isinstance(first, str) and isinstance(last, str) and last < first:  # ISO: text order
            scope["start"], scope["end"] = last, first
    start, end = case.body.get("start"), case.body.get("end")
    if isinstance(start, str) and isinstance(end, str):
        begins = datetime.fromisoformat(start)
        if not timedelta(0) < datetime.fromisoformat(end) - begins <= timedelta(hours=24):
            try:
                case.body["end"] = (begins + timedelta(minutes=30)).isoformat()
            except OverflowError:  # the year 9999's last half hour
                case.body["start"] = (begins - timedelta(minutes=30)).isoformat()
                case.body["end"] = start


# What a valid request of these operations does that no schema can say, done to each one
# (positive cases only: an invalid one stays as generated).
PREPARED: dict[tuple[str, str], Callable[[schemathesis.Case], None]] = {
    ("POST", "/documents"): _document_hash,
    ("POST", "/labs"): _ucum_units,
    ("POST", "/labs/{lab_id}/conversions"): _ucum_units,
    ("POST", "/medications"): _ucum_units,
    ("POST", "/medications/{medication_id}/dose"): _ucum_units,
    ("POST", "/vitals"): _ucum_units,
    ("POST", "/appointments"): _interval_in_order,
    ("POST", "/appointments/{appointment_id}/reschedule"): _interval_in_order,
    ("POST", "/matters/{matter_id}/holds"): _interval_in_order,
    ("PUT", "/holds/{hold_id}/scope"): _interval_in_order,
}


# A client sends one Idempotency-Key per logical write; generated keys repeat ("0", "A"), and
# the same key with another request is rightly a 422. Valid requests get a key of their own.
KEYS = itertools.count()


def _keyed_as_a_client(case: schemathesis.Case) -> None:
    if case.headers and "Idempotency-Key" in case.headers and _positive(case):
        case.headers["Idempotency-Key"] = f'"schemathesis-{next(KEYS)}"'


def _positive(case: schemathesis.Case) -> bool:
    return case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE


def all_checks() -> list[schemathesis.CheckFunction]:
    load_all_checks()
    return list(CHECKS.get_all())


@pytest.fixture
def store_config(tmp_path: Path) -> Iterator[StoreConfig]:
    """SQLite only (see the module's docstring)."""
    yield StoreConfig(home=tmp_path / "home")


def owners_schema(practice: Practice) -> BaseSchema:
    """The app's OpenAPI document, every request sent in the owner's session."""
    owner = practice.owner()
    schema = schemathesis.openapi.from_asgi("/openapi.json", practice.http.app)
    bearer = f"Bearer {owner.token}"

    class OwnersSession:
        """As schemathesis's own auth, so that ignored_auth knows the session is the one
        configured (and tries without it), whatever else a request's headers carry."""

        def get(self, case: schemathesis.Case, context: object) -> str:
            return bearer

        def set(self, case: schemathesis.Case, data: str, context: object) -> None:
            case.headers = {**(case.headers or {}), "Authorization": data}

    schema.auth(refresh_interval=None)(OwnersSession)
    # A body over the limit is refused before it is read (413), whatever else is wrong with it.
    schema.config.checks.negative_data_rejection.expected_statuses.append("413")
    return schema.exclude(method="POST", path="/auth/logout")  # (see SKIPPED)


def checks_for(operation: APIOperation) -> list[schemathesis.CheckFunction]:
    skipped = set(INAPPLICABLE.get((operation.method.upper(), operation.path), {}))
    if _names_other_records(operation):
        # Its 404 may be about the record its body names (say the provider in PUT
        # /patients/{id}/registered-provider), not the one a link put in its path: the check
        # reads any 404 after a create as the created record lost.
        skipped.add("ensure_resource_availability")
    return [c for c in all_checks() if c.__name__ not in skipped]


def _names_other_records(operation: APIOperation) -> bool:
    """Whether ``operation``'s JSON body has an id property (``*_id``, ``*_ids``)."""
    body = operation.definition.raw.get("requestBody", {})
    schema = body.get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = operation.schema.raw_schema["components"]["schemas"][name]
    return any(p.endswith(("_id", "_ids")) for p in schema.get("properties", {}))


def test_every_operation_answers_as_documented(practice: Practice) -> None:
    schema = owners_schema(practice)
    failures: list[str] = []
    ran = 0
    statuses: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            exercise(operation, statuses)
        except (Exception, BaseExceptionGroup) as e:  # schemathesis's FailureGroup is the latter
            failures.append(f"{operation.method.upper()} {operation.path}: {e}")
        ran += 1
    assert not failures, "\n\n".join(failures)
    assert ran > 50, f"only {ran} operations in the OpenAPI document"
    # Not all refused: a valid request with an id it made up is a 404, half the cases are invalid.
    assert statuses.get(200, 0) + statuses.get(201, 0) > EXAMPLES * 5, statuses


def exercise(operation: APIOperation, statuses: dict[int, int]) -> None:
    """``EXAMPLES`` valid and invalid requests of ``operation``, each answer checked."""
    label = (operation.method.upper(), operation.path)
    checks = checks_for(operation)
    strategy = st.one_of(
        operation.as_strategy(generation_mode=mode, auth_storage=operation.schema.auth)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    )

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def one(case: schemathesis.Case) -> None:
        if label in PREPARED and _positive(case):
            PREPARED[label](case)
        _keyed_as_a_client(case)
        response = case.call_and_validate(checks=checks)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    one()


def test_sequences_of_operations_answer_as_documented(practice: Practice) -> None:
    """The stateful phase: sequences that follow the document's links (an id one answer
    returns, used by the next request), every answer checked as above."""
    schema = owners_schema(practice)
    machine = schema.as_state_machine()
    links = sum(len(t.outgoing) for t in machine._transitions.operations.values())
    assert links > 20, f"only {links} links between operations to follow"
    failures: list[str] = []
    steps: list[int] = []

    class Sequences(machine):  # type: ignore[misc, valid-type]
        def before_call(self, case: schemathesis.Case) -> None:
            label = (case.operation.method.upper(), case.operation.path)
            if label in PREPARED and _positive(case):
                PREPARED[label](case)
            _keyed_as_a_client(case)

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, **kwargs: Any
        ) -> None:
            steps.append(response.status_code)
            try:
                case.validate_response(
                    response,
                    checks=checks_for(case.operation),
                    transport_kwargs=kwargs or None,
                    recorder=self.recorder,
                )
            except (Exception, BaseExceptionGroup) as failed:
                # Kept here as well: Hypothesis replays a failing sequence, and the live server,
                # changed by the first run, may answer the replay otherwise (reported as Flaky).
                failures.append(f"{case.operation.label}: {failed}")
                raise

    # As schemathesis's own runner does: a sequence the server answers differently when
    # replayed (its state moved on) ends that run, and another starts from a new seed.
    for attempt in range(5):
        if len(steps) >= EXAMPLES * 5 or failures:
            break
        try:
            run_state_machine_as_test(
                seed(attempt)(Sequences),
                settings=settings(
                    max_examples=EXAMPLES,
                    stateful_step_count=10,
                    deadline=None,
                    database=None,
                    phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                ),
            )
        except Flaky:
            continue
    assert not failures, "\n\n".join(failures)
    assert len(steps) >= EXAMPLES * 2, f"only {len(steps)} steps"
    assert sum(200 <= s < 300 for s in steps) > len(steps) // 10, steps  # not all refused
