"""SMS provider metadata is kept exactly: a JSON number with a fraction would arrive as a float
and lose digits, so it is refused and must come as the provider's text."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.schemas import SmsIn

BASE = '{"from_number": "+1555", "to_number": "+1556", "body": "hi", "provider_metadata": '


def test_text_whole_numbers_booleans_and_nesting_are_kept_as_sent() -> None:
    sms = SmsIn.model_validate_json(
        BASE + '{"price": "0.0075", "segments": 2, "ok": true, "x": {"y": [null, "0.10"]}}}'
    )
    assert sms.provider_metadata == {
        "price": "0.0075",
        "segments": 2,
        "ok": True,
        "x": {"y": [None, "0.10"]},
    }


@pytest.mark.parametrize("number", ["0.10", "1e2", "-3.5"])
def test_a_number_with_a_fraction_or_exponent_is_refused(number: str) -> None:
    with pytest.raises(ValidationError):
        SmsIn.model_validate_json(BASE + '{"price": ' + number + "}}")
    with pytest.raises(ValidationError):
        SmsIn.model_validate_json(BASE + '{"x": [' + number + "]}}")
