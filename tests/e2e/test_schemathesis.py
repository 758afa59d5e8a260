"""Schemathesis over the app's OpenAPI document: a bounded number of generated requests (valid
and invalid) per operation, as a logged-in owner, and not one of them may get a 5xx.

SQLite only: this looks for unhandled input at the HTTP edge, which does not depend on the store
(the e2e tests beside it run every story on both stores). The run is kept under a minute on two
cores; ``CHARTLEDGER_SCHEMATHESIS_EXAMPLES`` raises the number of examples per operation for a
longer hunt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from events.config import StoreConfig
from tests.e2e.conftest import Practice

EXAMPLES = int(os.environ.get("CHARTLEDGER_SCHEMATHESIS_EXAMPLES", "40"))
# Logging out would end the session the rest of the run uses: every later request a 401.
SKIPPED = {("POST", "/auth/logout")}


@schemathesis.serializer("message/rfc822")
def _raw_email(ctx: object, value: object) -> bytes:
    """An e-mail is posted as its raw bytes (``POST /threads/{id}/email``)."""
    return value if isinstance(value, bytes) else str(value).encode()


@schemathesis.serializer("text/csv", "x-application/hl7-v2+er7")
def _raw_import(ctx: object, value: object) -> bytes:
    """An import file is posted as its raw bytes (``POST /imports/patients``, ``/imports/labs``)."""
    return value if isinstance(value, bytes) else str(value).encode()


@pytest.fixture
def store_config(tmp_path: Path) -> Iterator[StoreConfig]:
    """SQLite only (see the module's docstring)."""
    yield StoreConfig(home=tmp_path / "home")


def test_no_server_errors(practice: Practice) -> None:
    owner = practice.owner()
    token = f"Bearer {owner.token}"
    app = practice.http.app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    ran = 0
    statuses: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        strategy = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
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
        def exercise(case: schemathesis.Case) -> None:
            # The owner's session, also on negative cases (which may make up a bad header).
            case.headers = {**(case.headers or {}), "Authorization": token}
            response = case.call()
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            case.validate_response(response, checks=[not_a_server_error])

        try:
            exercise()
        except Exception as e:
            failures.append(f"{operation.method.upper()} {operation.path}: {e}")
        ran += 1
    assert ran > 50, f"only {ran} operations in the OpenAPI document"
    assert statuses.get(200, 0) + statuses.get(201, 0) > 100, statuses  # not all refused
    assert not failures, "\n\n".join(failures)
