"""The thin client checks status codes itself and raises a typed error with the problem body."""

from __future__ import annotations

import httpx
import pytest

from api import client as api


def answering(status: int, body: object, content_type: str = "application/problem+json"):  # type: ignore[no-untyped-def]
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers.get("authorization") == "Bearer t"
        return httpx.Response(status, json=body, headers={"content-type": content_type})

    http = httpx.Client(base_url="http://x", transport=httpx.MockTransport(handler))
    return api.Client(http=http, token="t")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, api.BadRequest),
        (401, api.Unauthorized),
        (403, api.Forbidden),
        (404, api.NotFound),
        (409, api.Conflict),
        (413, api.PayloadTooLarge),
        (422, api.Unprocessable),
        (429, api.TooManyRequests),
        (500, api.ServerError),
        (418, api.ApiError),
    ],
)
def test_each_status_raises_its_error_with_the_problem(status: int, error: type) -> None:
    problem = {"type": "urn:chartledger:problem:x", "title": "T", "status": status, "detail": "d"}
    with pytest.raises(error) as raised:
        answering(status, problem).me()
    assert raised.value.status == status and raised.value.problem == problem
    assert raised.value.type == "urn:chartledger:problem:x"


def test_a_success_is_parsed_into_its_model() -> None:
    session = "00000000-0000-0000-0000-000000000001"
    body = {"user_id": session, "roles": ["owner"], "session_id": session}
    assert answering(200, body, "application/json").me().roles == ["owner"]


def test_a_success_not_as_documented_is_an_unexpected_answer_naming_fields_not_values() -> None:
    body = {"user_id": "Ada Quist, 1970-01-02", "roles": ["owner"], "session_id": "x"}
    with pytest.raises(api.UnexpectedAnswer, match=r"GET /auth/me .*: user_id \(") as raised:
        answering(200, body, "application/json").me()
    assert "Ada" not in str(raised.value) and "\n" not in str(raised.value)
