"""Login credentials are never produced: a matter whose hold names custodians (users) gets their
credential and session events as commitments only, withheld with the claim "security credential:
not produced", on SQLite and on PostgreSQL; no EHI export holds them either.

The practice is served in process and used over HTTP, so every credential event is the real one:
accounts opened with password hashes, TOTP secrets enrolled (and replaced on an approved
recovery), enrollment codes issued and spent (at creation and at a reset), recovery codes issued
and spent, a recovery approval given and spent, a password changed by its user, sessions started
(token hashes), a failed login and a logout. Then a risk manager
produces the matter and the bundle's every entry (review files included, PDFs inflated) is
searched for each secret and hash the ledger holds, in every form it could be written in.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import msgpack
import pytest

from api.auth import from_base32
from api.client import Client, Unauthorized
from api.hold_schemas import HoldIn, ScopeIn
from domain.base import patient_subject, user_subject
from events.ledger import Ledger
from legal_hold.production_scope import CREDENTIAL_CLAIM, CREDENTIAL_EVENTS
from projections.runner import Entry, read_entries
from tests.e2e.conftest import (  # noqa: F401
    OWNER,
    OWNER_PASSWORD,
    Practice,
    add_member,
    code_now,
    practice,
)
from tests.e2e.test_clinical import ada
from tests.integration.test_production import bundle_entries, readable, records_of
from verify import bundle_format as bf
from verify.__main__ import main as verify_main
from verify.bundle import verify_bundle
from verify.canonical import decode
from verify.hashing import commitment
from verify.records import parse_header

# Every field a credential or session event keeps a secret or a hash of one in.
SECRET_FIELDS = ("password_hash", "secret", "totp_secret", "code_hash", "code_hashes", "token_hash")
EHI_EXTENSION = "https://chartledger.local/fhir/ehi-export"
# What the ledger holds about a login that is no secret: produced, so the facts stay evidence.
FACTS = (
    "domain.credentials:Account.LoggedIn",
    "domain.credentials:Account.LoginFailed",
    "domain.sessions:Session.Ended",
)


@dataclass
class Story:
    ledger: Ledger
    risk: Client
    matter_id: UUID
    custodians: tuple[UUID, ...]
    patient: UUID
    plaintexts: list[str]  # passwords and codes as typed: in no event, let alone a bundle


def ledger_of(served: Practice) -> Ledger:
    return served.http.app.state.services.ledger  # type: ignore[attr-defined,no-any-return]


def credential_story(served: Practice) -> Story:
    """Every kind of credential event, for two owners, a clinician and a risk manager."""
    olive = served.owner()
    otto_new = add_member(served, olive, "otto", "Otto", "owner")
    rita_new = add_member(served, olive, "rita", "Rita", "risk_manager")
    casey_new = add_member(served, olive, "casey", "Dr. Casey", "clinician")
    reset = olive.reset_user(casey_new.user_id)  # an enrollment code, spent by Casey
    served.client().enroll("casey", reset.enrollment_code, "clinician-pass-2")
    otto = otto_new.client()
    approval = otto.approve_recovery(UUID(served.owner_id))
    recovered = served.client().recover_approved(OWNER, approval.approval_code, "owner-password-2")
    served.client().recover(OWNER, served.recovery_codes[0], "owner-password-3")
    with pytest.raises(Unauthorized):
        served.client().login(OWNER, "not-the-password", None)
    olive = served.client()
    olive.login(OWNER, "owner-password-3", code_now(from_base32(recovered.totp_secret)))
    new_codes = olive.issue_recovery_codes("owner-password-3").recovery_codes
    olive.logout()
    casey = served.client()
    casey.login("casey", "clinician-pass-2", code_now(casey_new.totp_secret))
    casey.change_password("clinician-pass-2", "clinician-pass-3")
    patient = casey.register_patient(ada()).patient_id
    otto.assign_care(patient, casey_new.user_id)  # nobody puts themselves in a patient's care
    casey.draft_note(patient, "progress", "Seen today.")
    risk = rita_new.client()
    matter = risk.open_matter("Doe v. Practice", "CV-2026-9", "Superior Court")
    custodians = (UUID(served.owner_id), otto_new.user_id, casey_new.user_id, rita_new.user_id)
    risk.place_hold(
        matter.matter_id,
        HoldIn(name="records", scope=ScopeIn(patients=[patient], custodians=list(custodians))),
    )
    plaintexts = [
        OWNER_PASSWORD,
        otto_new.password,
        rita_new.password,
        casey_new.password,
        "clinician-pass-2",
        "clinician-pass-3",
        "owner-password-2",
        "owner-password-3",
        approval.approval_code,
        reset.enrollment_code,
        *served.recovery_codes,
        *new_codes,
        *(base64.b32encode(m.totp_secret).decode() for m in (otto_new, rita_new, casey_new)),
        recovered.totp_secret,
        base64.b32encode(served.totp_secret).decode(),
    ]
    return Story(ledger_of(served), risk, matter.matter_id, custodians, patient, plaintexts)


def every_entry(ledger: Ledger) -> Iterator[Entry]:
    position = 0
    while entries := list(read_entries(ledger, position)):
        yield from entries
        position = entries[-1].position + 1


def secrets_of(event: Any) -> list[Any]:
    found = []
    for name in SECRET_FIELDS:
        value = getattr(event, name, None)
        found += value if type(value) is list else [] if value is None else [value]
    return found


def forms(value: Any) -> list[bytes]:
    """The ways a secret or hash could be written into a file: as it is, and re-encoded."""
    if type(value) is bytes:
        return [value, value.hex().encode(), base64.b32encode(value), base64.b64encode(value)]
    text = str(value).encode()
    # A PBKDF2 string: the whole, and its salt and digest alone.
    return [text, *(part for part in text.split(b"$") if len(part) >= 16)]


def secret_events(ledger: Ledger) -> dict[int, tuple[str, list[bytes]]]:
    """position -> (type, every form of every secret it holds), for each event of a type that
    holds one (an account opened before its user enrolled holds no password hash yet)."""
    held = {}
    for entry in every_entry(ledger):
        values = secrets_of(entry.event) if entry.event is not None else []
        if values or entry.header.type in CREDENTIAL_EVENTS:
            held[entry.position] = (entry.header.type, [f for v in values for f in forms(v)])
    return held


def positions_of(ledger: Ledger, subject: str) -> set[int]:
    with ledger.db.read() as c:
        c.execute("SELECT position FROM ledger_links WHERE subject = ?", (subject,))
        return {row[0] for row in c.fetchall()}


def produced_bundle(story: Story, tmp_path: Path) -> Path:
    produced = story.risk.produce(story.matter_id)
    out = tmp_path / "bundle.zip"
    out.write_bytes(story.risk.download_production(produced["production_id"]))
    return out


def test_credential_events_of_custodians_are_withheld_and_no_secret_reaches_any_file(
    practice: Practice,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    story = credential_story(practice)
    held = secret_events(story.ledger)
    # The story made every kind of credential event there is.
    assert {kind for kind, _ in held.values()} == set(CREDENTIAL_EVENTS)
    out = produced_bundle(story, tmp_path)

    records = {r.position: r for r in records_of(out)}
    custodians = [user_subject(c) for c in story.custodians]
    theirs = set().union(*(positions_of(story.ledger, s) for s in custodians))
    theirs &= set(records)
    assert theirs and set(held) <= theirs  # every credential event is in a custodian's chain
    for position in theirs:
        record, kind = records[position], decode(records[position].header)["type"]
        if position in held:
            assert (record.status, record.claim) == (bf.PRIVILEGED, CREDENTIAL_CLAIM), kind
            assert (record.salt, record.payload) == (None, None), kind
        else:
            assert record.status == bf.PRODUCED, kind
    kinds = {decode(records[p].header)["type"] for p in theirs if records[p].status == bf.PRODUCED}
    assert set(FACTS) <= kinds  # who logged in, when, how, and failed: still produced

    # No secret, hash or typed password or code, in any form, in any file of the bundle.
    entries = bundle_entries(out)
    assert any(name.endswith(".pdf") for name in entries)
    assert any(name.endswith(".dat") for name in entries)
    needles = [f for _, found in held.values() for f in found]
    needles += [p.encode() for p in story.plaintexts if p]
    raw = out.read_bytes()
    assert [n for n in needles if n in raw] == []
    for name, data in entries.items():
        shown = readable(data)
        assert [n for n in needles if n in shown] == [], name

    # The verifier finds the bundle whole and reports each as withheld, like any claim.
    report = verify_bundle(out)
    assert report.ok, [str(line) for line in report.failures]
    lines = "\n".join(str(line) for line in report.lines)
    for position in held:
        assert f"OK event {position}: privileged ({CREDENTIAL_CLAIM})" in lines
    for subject in [*custodians, patient_subject(story.patient)]:
        assert f"OK completeness {subject}: all " in lines
    assert verify_main(["bundle", str(out)]) == 0
    capsys.readouterr()

    # Listed where the bundle lists what it withholds: the manifest and the privilege log.
    manifest = decode(entries[bf.MANIFEST])
    assert [p for p, c in manifest["withheld"] if c == CREDENTIAL_CLAIM] == sorted(held)
    log = entries["privilege/privilege_log.csv"].decode("utf-8-sig")
    rows = [
        r for r in csv.DictReader(io.StringIO(log)) if r["Privilege claimed"] == CREDENTIAL_CLAIM
    ]
    assert sorted(int(r["Ledger position"]) for r in rows) == sorted(held)
    assert CREDENTIAL_CLAIM.encode() in entries["privilege/privilege_log.html"]
    # Each has a placeholder in its custodian's timeline, saying why, whose page the log names.
    texts = b"".join(d for n, d in entries.items() if n.startswith("text/"))
    for position in held:
        notice = "[WITHHELD: security credential, not produced: listed in the privilege log at "
        assert f"{notice}ledger position {position}]".encode() in texts
    assert all(r["Placeholder Bates"] for r in rows)


def test_a_claim_of_the_risk_manager_on_a_credential_event_is_kept(
    practice: Practice,  # noqa: F811
    tmp_path: Path,
) -> None:
    story = credential_story(practice)
    position = min(secret_events(story.ledger))
    produced = story.risk.produce(story.matter_id, withhold={position: "work product"})
    out = tmp_path / "bundle.zip"
    out.write_bytes(story.risk.download_production(produced["production_id"]))

    record = next(r for r in records_of(out) if r.position == position)
    assert (record.status, record.claim, record.payload) == (bf.PRIVILEGED, "work product", None)
    assert verify_bundle(out).ok


def test_no_ehi_export_holds_a_login_secret(
    practice: Practice,  # noqa: F811
) -> None:
    """One patient's export never reaches a credential event (none names a patient); the
    population export holds every event's record, a login secret's without its payload."""
    story = credential_story(practice)
    held = secret_events(story.ledger)
    needles = [f for _, found in held.values() for f in found]
    needles += [p.encode() for p in story.plaintexts if p]
    for scope in ({"patient_id": story.patient}, {"all_patients": True}):
        manifest = story.risk.export_ehi(**scope)
        export_id = manifest["extension"][EHI_EXTENSION]["exportId"]
        home = story.ledger.config.home / "exports" / export_id
        files = {
            p.relative_to(home).as_posix(): p.read_bytes() for p in home.rglob("*") if p.is_file()
        }
        assert "native/records.msgpack" in files
        for name, data in files.items():
            assert [n for n in needles if n in data] == [], (scope, name)
        records = list(msgpack.Unpacker(io.BytesIO(files["native/records.msgpack"]), raw=False))
        for r in records:
            header = parse_header(r["header"])
            if r["position"] in held:
                assert (r["salt"], r["payload"]) == (None, None), header.type
            else:
                assert commitment(r["salt"], r["payload"]) == header.commitment, header.type
        if "all_patients" in scope:
            assert set(held) <= {r["position"] for r in records}
            opened = {parse_header(r["header"]).type for r in records if r["payload"] is not None}
            assert set(FACTS) <= opened
