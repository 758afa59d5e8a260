"""Local commands name people by username (`--by rita`, `--custodian casey`), looked up in the
practice's own store, on both stores; a user id still works, and a username nobody has is one
line and exit 2 with nothing written."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from uuid import UUID

import pytest

from api.auth import new_account
from api.cli import main
from api.settings import Settings
from domain.base import user_subject
from domain.patients import Patient
from events.config import StoreConfig
from events.context import acting
from events.ledger import Ledger
from projections.local_users import UnknownUser, user_id_of
from tests.support import set_env

UUID_RE = r"[0-9a-f]{8}-[0-9a-f-]{27}"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, _, err = run(capsys, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    return err


def leaves(config: StoreConfig) -> int:
    ledger = Ledger(config)
    try:
        with ledger.db.read() as c:
            c.execute("SELECT COUNT(*) FROM ledger_leaves")
            row = c.fetchone()
    finally:
        ledger.close()
    assert row is not None
    return int(row[0])


@pytest.fixture
def people(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> dict[str, UUID]:
    """A practice with an owner (olive), a risk manager (rita), a clinician (casey) and a
    patient; their ids by username, and the patient's as ``patient``."""
    set_env(store_config, monkeypatch)
    monkeypatch.setenv("CHARTLEDGER_PBKDF2_ITERATIONS", "1000")
    monkeypatch.setenv("CHARTLEDGER_OWNER_PASSWORD", "owner-password-1")
    monkeypatch.delenv("CHARTLEDGER_SMTP_HOST", raising=False)
    assert main(["init", "--name", "P", "--owner", "olive", "--owner-name", "Olive"]) == 0
    ledger = Ledger(store_config)
    found = {}
    try:
        settings = Settings.from_env()
        for username, role in (("rita", "risk_manager"), ("Casey", "clinician")):
            made = new_account(settings, username=username, name=username, role=role,
                               password=f"{username}-password-1")  # fmt: skip
            with acting(user_subject(made.user.id), "test"):
                ledger.save(made.user, made.account)
            found[username.lower()] = made.user.id
        found["olive"] = user_id_of(ledger, "olive")
        patient = Patient.register(
            mrn="M-1", given_name="A", family_name="B", birth_date=date(1960, 1, 1), sex="other"
        )
        ledger.save(patient)
        found["patient"] = patient.id
    finally:
        ledger.close()
    capsys.readouterr()
    return found


def test_usernames_name_the_acting_user_and_the_custodians(
    people: dict[str, UUID],
    store_config: StoreConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rita, casey = str(people["rita"]), str(people["casey"])
    # An unknown username is refused in one line, naming it, before anything is written.
    size = leaves(store_config)
    err = refused(capsys, "matters", "open", "--name", "X", "--number", "1", "--by", "nobody")
    assert "no user with the username 'nobody'" in err
    assert "not an active risk manager" in refused(
        capsys, "matters", "open", "--name", "X", "--number", "1", "--by", "casey"
    )
    assert leaves(store_config) == size

    code, out, _ = run(capsys, "matters", "open", "--name", "A v. B", "--number", "CV-9",
                       "--by", "rita")  # fmt: skip
    assert code == 0
    matter = re.findall(UUID_RE, out)[0]
    code, out, _ = run(
        capsys, "holds", "place", matter, "--name", "preserve", "--patient",
        str(people["patient"]), "--custodian", "CASEY", "--notice", "Preserve.", "--by", "Rita",
    )  # fmt: skip
    assert code == 0, out
    hold = re.findall(UUID_RE, out)[0]
    assert "no user with the username 'nobody'" in refused(
        capsys, "holds", "ack", hold, "--custodian", "nobody", "--version", "1"
    )
    assert run(capsys, "holds", "ack", hold, "--custodian", "casey", "--version", "1")[0] == 0
    # The report names them by id: Rita placed it, and Casey (by username) is its custodian.
    _, report, _ = run(capsys, "holds", "report", hold)
    assert f"placed by {rita}:" in report
    assert f"custodian {casey}: version 1" in report and "acknowledged None" not in report
    # A user id still works where a username does.
    code, _, _ = run(capsys, "holds", "notice", hold, "--text", "Still.", "--by", rita)
    assert code == 0

    out_zip = tmp_path / "bundle.zip"
    code, out, err = run(capsys, "produce", "--matter", matter, "--out", str(out_zip),
                         "--by", "rita")  # fmt: skip
    assert code == 0 and out_zip.exists(), err
    assert "no user with the username 'olive2'" in refused(
        capsys, "export", "--all", "--out", str(tmp_path / "x"), "--by", "olive2"
    )
    assert not (tmp_path / "x").exists()
    code, _, err = run(capsys, "export", "--all", "--out", str(tmp_path / "ehi"), "--by", "olive")
    assert code == 0 and (tmp_path / "ehi" / "manifest.json").exists(), err
    code, _, err = run(capsys, "backup", "--out", str(tmp_path / "bk"), "--by", "olive")
    assert code == 0, err
    assert "not an active owner" in refused(
        capsys, "backup", "--out", str(tmp_path / "bk2"), "--by", "rita"
    )


def test_a_username_is_found_whatever_its_case_and_an_id_is_taken_as_given(
    people: dict[str, UUID], store_config: StoreConfig
) -> None:
    ledger = Ledger(store_config)
    try:
        assert user_id_of(ledger, "RITA") == people["rita"]
        assert user_id_of(ledger, "casey") == people["casey"]
        assert user_id_of(ledger, str(people["patient"])) == people["patient"]  # ids unchecked
        with pytest.raises(UnknownUser, match="no user with the username 'x'"):
            user_id_of(ledger, "x")
    finally:
        ledger.close()
