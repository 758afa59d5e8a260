"""The rules the OpenAPI document states are the rules the API enforces (issue 17), for any input.

Each property validates a value against the document as a client would (JSON Schema 2020-12 with
ECMA-262 patterns, by ``jsonschema_rs``, the validator schemathesis uses) and checks that it
passes exactly when the handler's own check (the domain's, or the route's) accepts it.
"""

from __future__ import annotations

import functools
from datetime import UTC, date
from typing import Any
from uuid import UUID

import jsonschema_rs
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from api import openapi
from api.hold_schemas import PolicyRefIn
from api.routers import appointments, chart, documents, entries, exports, holds, messages, users
from api.schemas import DAY_TEXT, INSTANT_TEXT, Day, Instant
from domain.checks import text
from domain.credentials import USERNAME, check_username
from domain.documents import MEDIA_TYPE
from domain.errors import ChartError
from domain.messages import Thread
from domain.quantities import DECIMAL_RE, check_decimal, check_unit
from legal_hold.errors import HoldError
from legal_hold.holds import CATEGORIES, Scope

SETTINGS = settings(max_examples=200, deadline=None)
IDS = [UUID(int=n) for n in range(1, 4)]  # few, so that lists repeat some


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document of the routes these rules belong to, finished as the app's is."""
    app = FastAPI()
    for module in (users, documents, messages, entries, exports, holds, appointments, chart):
        app.include_router(module.router)
    openapi.install(app)
    return app.openapi()


@functools.cache
def model(name: str) -> jsonschema_rs.Validator:
    """A validator of the document's component ``name``."""
    components = document()["components"]
    return jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": components}
    )


def field(name: str, property_: str) -> jsonschema_rs.Validator:
    properties = document()["components"]["schemas"][name]["properties"]
    return jsonschema_rs.Draft202012Validator(properties[property_])


def query(path: str, method: str, name: str) -> jsonschema_rs.Validator:
    parameters = document()["paths"][path][method]["parameters"]
    return jsonschema_rs.Draft202012Validator(
        next(p for p in parameters if p["name"] == name)["schema"]
    )


def accepts(check: Any, *args: Any) -> bool:
    try:
        check(*args)
    except (ChartError, HoldError, ValueError):
        return False
    return True


@SETTINGS
@given(st.text(max_size=70) | st.from_regex(USERNAME, fullmatch=True))
def test_a_username_is_valid_by_the_schema_exactly_when_the_domain_takes_it(name: str) -> None:
    assert field("UserIn", "username").is_valid(name) == accepts(check_username, name)


@SETTINGS
@given(st.text(max_size=20))
def test_text_is_valid_by_the_schema_exactly_when_it_is_more_than_whitespace(value: str) -> None:
    assert field("UserIn", "name").is_valid(value) == accepts(text, value, "name")


@SETTINGS
@given(st.text(max_size=45) | st.from_regex(DECIMAL_RE, fullmatch=True))
def test_a_quantity_is_valid_by_the_schema_exactly_when_it_is_a_decimal_string(value: str) -> None:
    expected = len(value) <= 40 and accepts(check_decimal, value)  # 40: VitalIn's own bound
    assert field("VitalIn", "value").is_valid(value) == expected


@SETTINGS
@given(st.text(max_size=12) | st.sampled_from(["mg", "mg/dL", "/min", "mm[Hg]", "10*3/uL", "%"]))
def test_a_unit_the_domain_takes_is_valid_by_the_schema(unit: str) -> None:
    # The pattern states a UCUM unit's characters, not its grammar: a necessary condition.
    if accepts(check_unit, unit):
        assert field("VitalIn", "unit").is_valid(unit)
    if not field("VitalIn", "unit").is_valid(unit):
        assert not accepts(check_unit, unit)


@SETTINGS
@given(
    st.text(max_size=40) | st.from_regex(MEDIA_TYPE, fullmatch=True).filter(lambda t: len(t) < 100)
)
def test_a_media_type_is_valid_by_the_schema_exactly_when_a_document_takes_it(kind: str) -> None:
    expected = 1 <= len(kind) <= 100 and MEDIA_TYPE.fullmatch(kind) is not None
    assert query("/documents", "post", "media_type").is_valid(kind) == expected


@SETTINGS
@given(
    st.sampled_from(["secure", "email", "sms"]),
    st.none() | st.lists(st.sampled_from(IDS), max_size=3),
    st.none() | st.lists(st.sampled_from(IDS), max_size=3),
)
def test_a_thread_is_valid_by_the_schema_exactly_when_it_can_start(
    kind: str, patients: list[UUID] | None, users_: list[UUID] | None
) -> None:
    body: dict[str, Any] = {"kind": kind, "topic": "results"}
    if patients is not None:
        body["patient_ids"] = [str(p) for p in patients]
    if users_ is not None:
        body["user_ids"] = [str(u) for u in users_]
    starts = accepts(
        lambda: Thread.start(
            kind=kind, topic="results", patient_ids=patients or (), user_ids=users_ or ()
        )
    )
    assert model("ThreadIn").is_valid(body) == starts


@SETTINGS
@given(st.none() | st.just(None) | st.sampled_from(IDS), st.none() | st.booleans(), st.booleans())
def test_an_export_is_valid_by_the_schema_exactly_when_it_names_one_scope(
    patient: UUID | None, all_: bool | None, send_null: bool
) -> None:
    body: dict[str, Any] = {}
    if patient is not None or send_null:
        body["patient_id"] = None if patient is None else str(patient)
    if all_ is not None:
        body["all"] = all_
    assert model("ExportIn").is_valid(body) == accepts(exports.ExportIn.model_validate, body)


@SETTINGS
@given(
    st.lists(st.sampled_from(IDS), max_size=2),
    st.lists(st.sampled_from(IDS), max_size=2),
    st.none() | st.booleans(),
    st.lists(st.sampled_from([*CATEGORIES[:3], "gossip"]), max_size=2),
    st.none() | st.dates(min_value=date(2020, 1, 1), max_value=date(2020, 12, 31)),
)
def test_a_hold_scope_is_valid_by_the_schema_exactly_when_it_is_a_scope(
    patients: list[UUID],
    custodians: list[UUID],
    all_patients: bool | None,
    categories: list[str],
    start: date | None,
) -> None:
    # (An end before the start is the one rule the schema cannot state: ends here follow starts.)
    body: dict[str, Any] = {
        "patients": [str(p) for p in patients],
        "custodians": [str(c) for c in custodians],
        "categories": categories,
    }
    if all_patients is not None:
        body["all_patients"] = all_patients
    if start is not None:
        body["start"] = body["end"] = start.isoformat()
    scope = functools.partial(
        Scope.of,
        patients=patients,
        custodians=custodians,
        all_patients=bool(all_patients),
        start=start,
        end=start,
        categories=categories,
    )
    assert model("ScopeIn").is_valid(body) == accepts(scope)


@SETTINGS
@given(
    st.none() | st.sampled_from(["seven-years", ""]),
    st.none() | st.integers(min_value=0, max_value=3),
    st.none() | st.sampled_from(["name", "rules", "adult_years"]),
)
def test_a_policy_reference_is_valid_by_the_schema_exactly_when_a_run_takes_it(
    policy: str | None, version: int | None, refused: str | None
) -> None:
    body: dict[str, Any] = {}
    if policy is not None:
        body["policy"] = policy
    if version is not None:
        body["version"] = version
    if refused is not None:
        body[refused] = {} if refused == "rules" else ("x" if refused == "name" else 7)
    taken = accepts(lambda: holds._named(PolicyRefIn.model_validate(body)))
    assert model("PolicyRefIn").is_valid(body) == taken


def _taken(kind: Any, value: str) -> bool:
    try:
        TypeAdapter(kind).validate_python(value)
    except ValidationError:
        return False
    return True


DAYS = st.dates().map(date.isoformat)
INSTANTS = st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat().replace("+00:00", "Z"))


@SETTINGS
@given(st.text(max_size=30) | DAYS | st.integers().map(str))
def test_a_day_the_api_takes_is_a_date_by_the_schema(value: str) -> None:
    # One way: what the API takes, the schema's "date" allows (the converse would need the
    # validator's reading of the format and pydantic's to agree on every calendar edge).
    day = query("/schedule/{provider_id}/{day}", "get", "day")
    if _taken(Day, value):  # "0" was, as 1970-01-01
        assert day.is_valid(value) and DAY_TEXT.fullmatch(value)


@SETTINGS
@given(st.text(max_size=40) | INSTANTS | st.integers().map(str) | DAYS)
def test_an_instant_the_api_takes_is_a_date_time_with_an_offset(value: str) -> None:
    as_of = query("/patients/{patient_id}/chart", "get", "as_of")
    if _taken(Instant, value):
        assert as_of.is_valid(value) and INSTANT_TEXT.fullmatch(value)
