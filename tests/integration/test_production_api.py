"""Productions over HTTP with the thin client, on both stores: a risk manager produces a matter
with a privileged item withheld, downloads the bundle, and it verifies; anyone else is refused,
and bad requests are problems that write nothing."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from uuid import uuid4

import pytest

from api.client import Forbidden, NotFound, Unprocessable
from api.hold_schemas import HoldIn, ScopeIn
from api.remote_cli import add_production_commands
from projections.runner import read_entries
from tests.e2e.conftest import Practice, practice  # noqa: F401  (the fixture)
from tests.e2e.test_clinical import ada, in_care, staffed
from verify.__main__ import main as verify_main
from verify.bundle import verify_bundle


def test_a_risk_manager_produces_downloads_and_the_bundle_verifies(
    practice: Practice,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    owner, casey, risk = staffed(practice)
    casey_id = casey.me().user_id
    first = casey.register_patient(ada()).patient_id
    second = casey.register_patient(ada().model_copy(update={"mrn": "MRN-8"})).patient_id
    in_care(owner, first, casey)
    casey.draft_note(first, "progress", "PRIVILEGED-COUNSEL-NOTE")
    matter = risk.open_matter("Doe v. Practice", "CV-2026-7", "Superior Court")
    risk.place_hold(
        matter.matter_id,
        HoldIn(name="records", scope=ScopeIn(patients=[first, second], custodians=[casey_id])),
    )
    leaves = practice.leaves()
    # Only risk managers; an owner is refused like a clinician.
    for other in (owner, casey):
        with pytest.raises(Forbidden):
            other.produce(matter.matter_id)
    with pytest.raises(Unprocessable) as bad:
        risk.produce(matter.matter_id, withhold={10**9: "attorney-client"})
    assert bad.value.type.endswith(":invalid-production")
    with pytest.raises(NotFound):
        risk.produce(uuid4())
    # Nothing produced: the two role refusals are recorded (issue 17), and nothing else.
    assert practice.leaves() == leaves + 2
    refused = [r for r in owner.audit(sort_by="position") if r.outcome == "failure"][-2:]
    assert [(r.user_id, r.reason) for r in refused] == [
        (practice.owner_id, "role"),
        (str(casey_id), "role"),
    ]
    assert not (practice.settings.store.home / "productions").exists() or not list(
        (practice.settings.store.home / "productions").glob("*.zip")
    )
    note_position = find_note_position(practice, "PRIVILEGED-COUNSEL-NOTE")

    produced = risk.produce(matter.matter_id, withhold={note_position: "attorney-client"})
    data = risk.download_production(produced["production_id"])

    assert hashlib.sha256(data).hexdigest() == produced["sha256"]
    assert b"PRIVILEGED-COUNSEL-NOTE" not in data
    out = tmp_path / "bundle.zip"
    out.write_bytes(data)
    report = verify_bundle(out)
    assert report.ok, [str(line) for line in report.failures]
    assert verify_main(["bundle", str(out)]) == 0
    assert f"OK event {note_position}: privileged (attorney-client)" in capsys.readouterr().out
    with pytest.raises(Forbidden):
        casey.download_production(produced["production_id"])
    with pytest.raises(NotFound):
        risk.download_production(uuid4())
    rows = risk.audit(user_id=str(risk.me().user_id))
    assert any(r.event_type.endswith("Production.Produced") for r in rows)


def find_note_position(served: Practice, text: str) -> int:
    """The position of the note holding ``text``, read the way the practice reads its log."""
    ledger = served.http.app.state.services.ledger  # type: ignore[attr-defined]
    position = 0
    while True:
        entries = list(read_entries(ledger, position))
        if not entries:
            raise AssertionError("no such note")
        for entry in entries:
            if entry.event is not None and getattr(entry.event, "text", None) == text:
                return entry.position
        position = entries[-1].position + 1


def test_the_remote_cli_produces_and_checks_the_download_against_the_recorded_hash(
    practice: Practice,  # noqa: F811
    tmp_path: Path,
) -> None:
    _, casey, risk = staffed(practice)
    patient = casey.register_patient(ada()).patient_id
    matter = risk.open_matter("Roe v. Practice", "CV-2026-8")
    risk.place_hold(matter.matter_id, HoldIn(name="records", scope=ScopeIn(patients=[patient])))
    parser = argparse.ArgumentParser()
    add_production_commands(parser.add_subparsers(dest="command"), lambda _options: risk)
    out = tmp_path / "bundle.zip"
    options = parser.parse_args(
        ["productions", "create", "--matter", str(matter.matter_id), "--out", str(out)]
    )
    assert options.run(options) == 0
    assert verify_bundle(out).ok
    with pytest.raises(FileExistsError, match="never overwritten"):  # main: exit 2, one line
        options.run(options)
