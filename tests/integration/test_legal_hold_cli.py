"""`chartledger matters|holds|retention` as a local administrator uses them, on both stores."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from api.cli import main
from domain.patients import Patient
from domain.users import User
from events.config import StoreConfig
from events.ledger import Ledger
from legal_hold.policies import adopt_policy
from legal_hold.retention import Policy
from projections.runner import read_entries
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
    for name in ("ADULT_YEARS", "MINOR_YEARS"):  # a floor that lets today's record go
        monkeypatch.setenv(f"CHARTLEDGER_RETENTION_FLOOR_{name}", "0")
    init_practice(store_config, monkeypatch)
    monkeypatch.delenv("CHARTLEDGER_SMTP_HOST", raising=False)
    ledger = Ledger(store_config)
    risk = User.register(name="Rita Risk", role="risk_manager")
    other_risk = User.register(name="Rory Risk", role="risk_manager")
    clerk = User.register(name="Cal Clerk", role="staff")
    owner = User.register(name="Olga Owner", role="owner")
    custodian = uuid4()
    patient = Patient.register(
        mrn="M-1", given_name="A", family_name="B", birth_date=date(1960, 1, 1), sex="other"
    )
    ledger.save(risk, other_risk, clerk, owner, patient)
    adopt_policy(ledger, Policy.simple("none-kept", 0, 0), by=owner.id, at=datetime.now(UTC))
    ledger.close()
    capsys.readouterr()
    by = ["--by", str(risk.id)]
    policy = ["--policy", "none-kept", "--version", "1"]

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

    code, out, _ = run(capsys, "retention", "run", *policy)
    assert (code, out.strip()) == (0, f"{patient.id}  held  kept until {datetime.now(UTC).date()}")
    code, out, _ = run(capsys, "retention", "policies")
    assert "floor: adults 0y, minors 0y past majority at 18" in out
    assert f"none-kept v1: majority 18; * 0y/0y; adopted by {owner.id}" in out
    # No disposal on the command line: it takes two people signed in with TOTP codes.
    with pytest.raises(SystemExit) as no_disposal:
        main(["retention", "dispose", str(patient.id), *policy, *by])
    assert no_disposal.value.code == 2 and "invalid choice: 'dispose'" in capsys.readouterr().err
    code, _, err = run(
        capsys, "holds", "ack", hold, "--custodian", str(custodian), "--version", "2"
    )
    assert code == 2 and "not the current one" in err
    assert (
        run(capsys, "holds", "ack", hold, "--custodian", str(custodian), "--version", "1")[0] == 0
    )
    code, out, _ = run(capsys, "holds", "report", hold)
    assert "outstanding: 0" in out
    # Only whoever placed a hold (or an owner) releases it; another risk manager is refused.
    code, _, err = run(
        capsys, "holds", "release", hold, "--reason", "mine now", "--by", str(other_risk.id)
    )
    assert code == 2 and "only they or an owner may release it" in err
    assert len(err.splitlines()) == 1
    assert run(capsys, "holds", "release", hold, "--reason", "settled", *by)[0] == 0
    code, out, _ = run(capsys, "retention", "run", *policy)
    assert (code, out.split()[:2]) == (0, [str(patient.id), "disposable"])
    assert run(capsys, "matters", "close", matter, "--reason", "done", *by)[0] == 0
    ledger = Ledger(store_config)
    try:
        refusals = [
            e.event
            for e in read_entries(ledger, 0, limit=10_000)
            if e.header.type == "legal_hold.refusals:ReleaseRefusal.Refused"
        ]
        assert [(r.by, r.placed_by) for r in refusals] == [(other_risk.id, risk.id)]
    finally:
        ledger.close()
