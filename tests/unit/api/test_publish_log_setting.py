"""CHARTLEDGER_PUBLISH_LOG (docs/TILES.md §3): off unless set to a yes, and a value that is
neither yes nor no stops the server rather than guessing which the practice meant."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import Settings
from events.config import ConfigError


def test_the_log_is_published_only_when_the_practice_says_so(tmp_path: Path) -> None:
    home = {"CHARTLEDGER_HOME": str(tmp_path)}
    assert Settings.from_env(home).publish_log is False
    for value in ("1", "true", "YES", " on "):
        assert Settings.from_env({**home, "CHARTLEDGER_PUBLISH_LOG": value}).publish_log
    for value in ("", "0", "false", "No", "off"):
        assert not Settings.from_env({**home, "CHARTLEDGER_PUBLISH_LOG": value}).publish_log
    for value in ("public", "2", "y"):
        with pytest.raises(ConfigError, match="CHARTLEDGER_PUBLISH_LOG"):
            Settings.from_env({**home, "CHARTLEDGER_PUBLISH_LOG": value})
