"""The remote CLI refuses input nobody could send in one line, exit 2, on both stores.

Whatever the thin client's request models (or a command's own) refuse before sending, at login,
recovery or any other remote command, is misuse said once, centrally: which fields and why, never
their values (a password, a recovery code, a patient's details). Nothing reaches the server, so
nothing is written and no failed login is counted.
"""

from __future__ import annotations

import getpass

import pytest

from tests.e2e.conftest import (
    OWNER,
    OWNER_PASSWORD,
    Practice,
    one_line_refusal,
    owner_logs_in_remotely,
)
from tests.e2e.test_clinical import ada
from tests.e2e.test_recovery_approval import served

SECRET = "Zq7-very-secret-"  # repeated into an over-long password or code
LONG_NAME = "mallory-" * 9  # 72 characters: over the username's 64


@pytest.mark.usefixtures("token_file")
def test_bad_input_to_any_remote_command_is_one_line_exit_2_and_nothing_is_sent(
    practice: Practice,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    patient = practice.owner().register_patient(ada())

    def refusal(*args: str, server: str = "") -> str:
        """The one line refusing ``args``, which repeats none of the values refused."""
        refused = one_line_refusal(capsys, server or url, *args)
        assert SECRET not in refused and LONG_NAME not in refused
        return refused

    with served(practice) as url:
        leaves = practice.leaves()
        # login: an over-long username or password, an empty password, an over-long TOTP code.
        monkeypatch.setenv("CHARTLEDGER_PASSWORD", SECRET * 70)
        refused = refusal("login", LONG_NAME)
        assert "not sent" in refused and "username (" in refused and "password (" in refused
        assert "at most 64 characters" in refused and "at most 1024 characters" in refused
        monkeypatch.setenv("CHARTLEDGER_PASSWORD", "")
        monkeypatch.setattr(getpass, "getpass", lambda prompt="": "")  # Enter, when asked
        assert "password (String should have at least 1" in refusal("login", OWNER)
        monkeypatch.setenv("CHARTLEDGER_PASSWORD", OWNER_PASSWORD)
        assert "totp_code (" in refusal("login", OWNER, "--totp", SECRET)
        # recover and recover-approved: an over-long username, the code and password fine.
        monkeypatch.setenv("CHARTLEDGER_RECOVERY_CODE", practice.recovery_codes[0])
        monkeypatch.setenv("CHARTLEDGER_APPROVAL_CODE", "AAAAA-AAAAA-AAAAA-AAAAA")
        monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", SECRET * 2)
        for command in ("recover", "recover-approved"):
            assert "username (" in refusal(command, LONG_NAME)
        # --server that is no http(s) URL.
        assert "unsupported protocol" in refusal("login", OWNER, server="ftp://x")
        assert practice.leaves() == leaves  # nothing sent: no LoginFailed, no RefusedAttempt

        # Logged in: commands whose bodies a request model refuses.
        owner_logs_in_remotely(practice, url, capsys)
        leaves = practice.leaves()
        pid = str(patient.patient_id)
        assert "text (" in refusal("notes", "draft", pid, "--text", "")
        user = practice.owner_id
        assert "reason (" in refusal("users", "deactivate", user, "--reason", "")
        lab = ["labs", "record", pid, "--loinc", "2345-7", "--test", "Glucose", "--unit", "mg/dL"]
        refused = refusal(*lab, "--lab", "Acme", "--value", SECRET * 3)
        assert "value (String should have at most 40 characters)" in refused
        assert "invalid UUID" in refusal("chart", "show", "not-a-patient-id")
        assert practice.leaves() == leaves  # none of it reached the server
