"""CHARTLEDGER_LOCK_TIMEOUT_SECONDS and CHARTLEDGER_CHECKPOINT_SECONDS (events/config.py): a
whole number of seconds, at least 1, written in ASCII digits, or a ConfigError saying which
setting; the lock timeout reaches both stores' drivers, and unset keeps their own."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.cli import main as chartledger
from events.config import LOCK_TIMEOUT, ConfigError, StoreConfig

SETTINGS = settings(max_examples=300, deadline=None)
NAMES = ("CHARTLEDGER_LOCK_TIMEOUT_SECONDS", "CHARTLEDGER_CHECKPOINT_SECONDS")
PG = "postgresql://postgres@127.0.0.1:5432/test"

values = (
    st.text(max_size=12)
    | st.integers(-5, 10**12).map(str)
    | st.sampled_from(["1", "01", " 5", "5 ", "+5", "1e3", "٣", "0", "-1", "2.5"])
)


def accepted(raw: str) -> int | None:
    """What the rule says ``raw`` means: seconds, or None for refused."""
    if raw.isascii() and raw.isdigit() and int(raw) >= 1:
        return int(raw)
    return None


@SETTINGS
@given(st.sampled_from(NAMES), values)
def test_seconds_are_whole_ascii_numbers_of_at_least_one_or_refused(name: str, raw: str) -> None:
    env = {"CHARTLEDGER_HOME": "/tmp/unused", name: raw}
    expected = accepted(raw)
    if raw == "":
        assert StoreConfig.from_env(env) == StoreConfig(Path("/tmp/unused"))  # as unset
        return
    if expected is None:
        with pytest.raises(ConfigError, match=name):
            StoreConfig.from_env(env)
        return
    config = StoreConfig.from_env(env)
    field = "lock_timeout" if name == NAMES[0] else "checkpoint_seconds"
    assert getattr(config, field) == expected


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("1", 1), ("01", 1), ("90", 90), ("0", None), ("-1", None), (" 5", None), ("+5", None),
     ("2.5", None), ("1e3", None), ("\u0663", None), ("five", None)],
)  # fmt: skip
def test_examples_of_the_seconds_rule(raw: str, seconds: int | None) -> None:
    env = {"CHARTLEDGER_HOME": "/tmp/unused", "CHARTLEDGER_CHECKPOINT_SECONDS": raw}
    if seconds is None:
        with pytest.raises(ConfigError, match="whole number of seconds, at least 1"):
            StoreConfig.from_env(env)
    else:
        assert StoreConfig.from_env(env).checkpoint_seconds == seconds


@SETTINGS
@given(st.none() | st.integers(1, 10**6))
def test_the_lock_timeout_reaches_both_stores(seconds: int | None) -> None:
    env = {"CHARTLEDGER_HOME": "/tmp/unused"}
    if seconds is not None:
        env["CHARTLEDGER_LOCK_TIMEOUT_SECONDS"] = str(seconds)
    sqlite = StoreConfig.from_env(env).eventsourcing_env()
    postgres = StoreConfig.from_env({**env, "CHARTLEDGER_DATABASE_URL": PG}).eventsourcing_env()
    assert sqlite["SQLITE_LOCK_TIMEOUT"] == str(seconds or LOCK_TIMEOUT)
    assert postgres["POSTGRES_LOCK_TIMEOUT"] == str(seconds or LOCK_TIMEOUT)


@pytest.mark.parametrize("name", NAMES)
def test_the_command_line_refuses_a_bad_setting_in_one_line(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(name, "soon")
    assert chartledger(["status", "--local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"chartledger: error: {name} must be a whole number of seconds, at least 1"]
