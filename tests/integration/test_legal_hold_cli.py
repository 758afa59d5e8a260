"""`chartledger matters|holds|retention` as a local administrator uses them, on both stores."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from api.cli import main
from domain.patients import Patient
from domain.users import User
from events.config import StoreConfig
from events.ledger import Ledger
from tests.support import init_practice


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def created(out: str) -> str:
    found = re.search(r"[0-9a-f]{8}-[0-9a-f-]{27}", out)
    assert found is not None
    return found.group(0)


def test_place_remind_ack_release_and_dispose_from_the_command_line(
    store_config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    init_practice(store_config, monkeypatch)
    monkeypatch.delenv("CHARTLEDGER_SMTP_HOST", raising=False)
    ledger = Ledger(store_config)
    risk = User.register(name="Rita Risk", role="risk_manager")
    clerk = User.register(name="Cal Clerk", role="staff")
    owner = User.register(name="Olga Owner", role="owner")
    custodian = uuid4()
    patient = Patient.register(
        mrn="M-1", given_name="A", family_name="B", birth_date=date(1960, 1, 1), sex="other"
    )
    ledger.save(risk, clerk, owner, patient)
    ledger.close()
    capsys.readouterr()
    by = ["--by", str(risk.id)]
    policy = ["--policy", "none-kept", "--adult-years", "0", "--minor-years", "0"]

    code, _, err = run(
        capsys, "matters", "open", "--name", "X", "--number", "1", "--by", str(clerk.id)
    )
    assert code == 2 and "not an active risk manager" in err
    # Holds are the risk manager's alone, on the command line as over HTTP: owners included.
    code, _, err = run(
        capsys, "matters", "open", "--name", "X", "--number", "1", "--by", str(owner.id)
    )
    assert code == 2 and "not an active risk manager" in err and len(err.splitlines()) == 1
    code, out, _ = run(capsys, "matters", "open", "--name", "A v. B", "--number", "CV-9", *by)
    matter = created(out)
    code, out, _ = run(
        capsys, "holds", "place", matter, "--name", "preserve", "--patient", str(patient.id),
        "--custodian", str(custodian), "--notice", "Preserve.", *by,
    )  # fmt: skip
    assert code == 0
    hold = created(out)
    code, out, _ = run(capsys, "holds", "remind")
    assert (code, out.splitlines()[-1]) == (0, "1 sent")
    assert len(list((Path(store_config.home) / "outbox").iterdir())) == 1
    assert run(capsys, "holds", "remind")[1].splitlines()[-1] == "0 sent"

    code, _, err = run(capsys, "retention", "dispose", str(patient.id), *policy, *by)
    assert code == 2 and "active legal hold" in err
    code, _, err = run(
        capsys, "holds", "ack", hold, "--custodian", str(custodian), "--version", "2"
    )
    assert code == 2 and "not the current one" in err
    assert (
        run(capsys, "holds", "ack", hold, "--custodian", str(custodian), "--version", "1")[0] == 0
    )
    code, out, _ = run(capsys, "holds", "report", hold)
    assert "outstanding: 0" in out
    assert run(capsys, "holds", "release", hold, "--reason", "settled", *by)[0] == 0
    code, out, _ = run(capsys, "retention", "dispose", str(patient.id), *policy, *by)
    assert code == 0 and "disposed under policy none-kept" in out
    code, out, _ = run(capsys, "verify")
    assert code == 0 and "1 disposed" in out
    assert run(capsys, "matters", "close", matter, "--reason", "done", *by)[0] == 0
    ledger = Ledger(store_config)
    try:
        with pytest.raises(LookupError):
            ledger.repository.get(UUID(str(patient.id)))
    finally:
        ledger.close()
