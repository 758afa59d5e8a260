"""Issue 17, the audit part, played over HTTP on both stores as a privacy officer and as an
attacker: ``since``/``until`` are instants whatever their offset, and anything else is refused;
every refusal is a row under the right user and patient; downloads name every patient they
carry; the CSV reports hold exactly what the JSON ones do."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest

from api.cli import main as chartledger
from api.client import Conflict, Forbidden, Unauthorized
from api.csv_export import unguard
from api.hold_schemas import HoldIn, PolicyIn, ScopeIn
from api.schemas import AccessRowOut, AuditRowOut
from projections.ehi_export import EXTENSION
from tests.e2e.conftest import (
    OWNER_PASSWORD,
    Practice,
    add_member,
    one_line_refusal,
    owner_logs_in_remotely,
)
from tests.e2e.test_clinical import ada, in_care
from tests.e2e.test_recovery_approval import served
from tests.e2e.test_two_person_disposal import POLICY

ROLE_REFUSED = "domain.refusals:RoleRefusal.Refused"
TOKEN_REFUSED = "domain.refusals:TokenRefusal.Refused"
REQUEST_REFUSED = "domain.sessions:Session.RequestRefused"
LOGIN_FAILED = "domain.credentials:Account.LoginFailed"


def _offset(ledger_time: str, hours: int) -> str:
    """The same instant as the ledger's ``...Z`` timestamp, spelled at UTC``±hours``."""
    moment = datetime.fromisoformat(ledger_time.replace("Z", "+00:00"))
    return moment.astimezone(timezone(timedelta(hours=hours))).isoformat()


def _positions(rows: list[AuditRowOut]) -> list[int]:
    return [r.position for r in rows]


def test_since_and_until_are_instants_whatever_their_offset(practice: Practice) -> None:
    owner = practice.owner()
    for n in range(4):
        owner.register_patient(ada().model_copy(update={"mrn": f"MRN-{n}"}))
    everything = owner.audit(sort_by="position")
    assert len(everything) > 8
    since, until = everything[3].event_time, everything[-2].event_time
    expected = [r.position for r in everything if since <= r.event_time < until]
    assert 0 < len(expected) < len(everything)

    spellings = {
        "Z": (since, until),
        "-05:00": (_offset(since, -5), _offset(until, -5)),
        "+01:00": (_offset(since, 1), _offset(until, 1)),
    }
    assert spellings["-05:00"][0].endswith("-05:00") and spellings["+01:00"][0].endswith("+01:00")
    for low, high in spellings.values():
        assert _positions(owner.audit(since=low, until=high, sort_by="position")) == expected
    # Text order would put the -05:00 spelling of a later instant before an earlier one.
    later = everything[-1].event_time
    assert _positions(owner.audit(since=_offset(later, -5), sort_by="position"))[0] == (
        everything[-1].position
    )


@pytest.mark.parametrize(
    "bad",
    [
        "yesterday",
        "2026-12-07",  # a date names no instant
        "2026-12-07T06:20:00",  # no offset: which zone?
        "2026-12-07 06:20:00Z",  # not RFC 3339's separator
        "2026-13-01T00:00:00Z",  # no such month
        "2026-12-07T06:20:00+24:00",  # no such offset
        "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
    ],
)
def test_a_time_that_is_no_instant_is_a_422_and_writes_nothing(
    practice: Practice, bad: str
) -> None:
    owner = practice.owner()
    before = practice.leaves()
    for name in ("since", "until"):
        for path in ("/audit", "/audit.csv"):
            answer = owner.http.get(
                path, params={name: bad}, headers={"Authorization": f"Bearer {owner.token}"}
            )
            assert answer.status_code == 422, (path, name)
            assert answer.headers["content-type"].startswith("application/problem+json")
            problem = answer.json()
            assert problem["status"] == 422 and name in problem["detail"]
            assert bad not in str(problem)  # the value is never echoed
    assert practice.leaves() == before


def test_the_openapi_says_since_and_until_are_date_times_with_an_offset(
    practice: Practice,
) -> None:
    schema = practice.http.get("/openapi.json").json()
    for path in ("/audit", "/audit.csv"):
        parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        for name in ("since", "until"):
            text = str(parameters[name]["schema"])
            assert "date-time" in text and "[Zz]|[+-]" in text, text
    csv_route = schema["paths"]["/audit.csv"]["get"]["responses"]["200"]["content"]
    assert "text/csv" in csv_route
    report = schema["paths"]["/patients/{patient_id}/access-report.csv"]["get"]
    assert "text/csv" in report["responses"]["200"]["content"]


def test_the_cli_refuses_a_time_without_an_offset_in_one_line(
    capsys: pytest.CaptureFixture[str], token_file: Any
) -> None:
    # Refused before anything is sent: no server answers at this address.
    for bad in ("yesterday", "2026-12-07T01:20:00"):
        line = one_line_refusal(capsys, "http://127.0.0.1:9", "audit", "--since", bad)
        assert "--since" in line and "offset" in line and bad not in line
    line = one_line_refusal(capsys, "http://127.0.0.1:9", "audit", "--until", "2026-02-30T00:00Z")
    assert "--until" in line


@pytest.fixture
def low_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    """A retention floor the test policy clears (read by ``chartledger init``: asked for before
    the practice)."""
    monkeypatch.setenv("CHARTLEDGER_RETENTION_FLOOR_ADULT_YEARS", "0")
    monkeypatch.setenv("CHARTLEDGER_RETENTION_FLOOR_MINOR_YEARS", "2")


def test_every_refusal_is_a_row_under_the_user_and_the_patient(
    low_floor: None, practice: Practice
) -> None:
    owner = practice.owner()
    casey_m = add_member(practice, owner, "casey", "Dr. Casey", "clinician")
    sam_m = add_member(practice, owner, "sam", "Sam Staff", "staff")
    rita_m = add_member(practice, owner, "rita", "Rita Risk", "risk_manager")
    casey, sam, rita = casey_m.client(), sam_m.client(), rita_m.client()
    patient = owner.register_patient(ada()).patient_id

    # Care relationship / break-glass: a clinician without one opens the chart.
    with pytest.raises(Forbidden):
        casey.chart(patient)
    # Role: staff ask for the audit view, and for the patient's access report.
    with pytest.raises(Forbidden):
        sam.audit()
    with pytest.raises(Forbidden):
        sam.access_report(patient)
    # Policy: a retention policy below the practice's floor.
    with pytest.raises(Conflict):
        owner.adopt_policy(PolicyIn(name="too-short", adult_years=0, minor_years=1))
    # Hold: a disposal proposed for a patient under a legal hold.
    owner.adopt_policy(POLICY)
    matter = rita.open_matter("Doe v. Practice", "CV-2026-17")
    rita.place_hold(matter.matter_id, HoldIn(name="Doe", scope=ScopeIn(patients=[patient])))
    with pytest.raises(Exception, match="hold"):
        rita.propose_disposal(patient, POLICY.name, 1)
    # Authentication: a wrong password for Casey's account, from nobody known.
    with pytest.raises(Unauthorized):
        practice.client("198.51.100.7").login("casey", "not-caseys-password", "000000")

    def refusals(user: UUID, patient_id: UUID | None = None) -> set[tuple[Any, ...]]:
        wanted = {} if patient_id is None else {"patient_id": patient_id}
        rows = owner.audit(user_id=user, **wanted)
        return {
            (r.event_type.rpartition(":")[2], r.patient_id, r.outcome, r.reason)
            for r in rows
            if r.outcome == "failure"
        }

    p = str(patient)
    assert refusals(casey_m.user_id, patient) == {
        ("Refusal.Refused", p, "failure", "break-glass-required")
    }
    assert refusals(sam_m.user_id) == {
        ("RoleRefusal.Refused", None, "failure", "role"),
        ("RoleRefusal.Refused", p, "failure", "role"),
    }
    assert ("RoleRefusal.Refused", p, "failure", "role") in refusals(sam_m.user_id, patient)
    (held,) = refusals(rita_m.user_id, patient)
    assert held[:3] == ("ProposalRefusal.Refused", p, "failure") and "hold" in held[3]
    (policy,) = refusals(UUID(practice.owner_id))
    assert policy[:3] == ("AdoptionRefusal.Refused", None, "failure") and "floor" in policy[3]
    # The failed login is filed under the account it targeted (nobody was logged in).
    (failed,) = [r for r in owner.audit(user_id=casey_m.user_id) if r.event_type == LOGIN_FAILED]
    assert (failed.outcome, failed.reason, failed.target_user_id) == (
        "failure",
        "password",
        str(casey_m.user_id),
    )
    (role,) = [r for r in owner.audit(user_id=sam_m.user_id, patient_id=patient)]
    assert (
        role.detail
        == "GET /patients/{patient_id}/access-report needs the role auditor or risk_manager"
    )
    assert role.action == "access"


def test_a_revoked_users_next_request_is_a_refusal_under_their_id(practice: Practice) -> None:
    owner = practice.owner()
    casey_m = add_member(practice, owner, "casey", "Dr. Casey", "clinician")
    casey = casey_m.client()
    owner.deactivate_user(casey_m.user_id, "left the practice")
    for _ in range(3):  # a token replayed in a loop is recorded once a minute, not each time
        with pytest.raises(Unauthorized):
            casey.me()
    rows = owner.audit(user_id=casey_m.user_id, sort_by="position")
    refused = [r for r in rows if r.event_type == REQUEST_REFUSED]
    assert [(r.outcome, r.reason, r.user_id) for r in refused] == [
        ("failure", "revoked", str(casey_m.user_id))
    ]
    (ended,) = [r for r in rows if r.event_type.endswith("Session.Ended")]
    assert ended.reason == "revoked" and ended.position < refused[0].position

    # A forged token for one of Casey's sessions (the id is no secret to an auditor).
    session_id = casey.token.removeprefix("clt_").partition(".")[0]  # type: ignore[union-attr]
    forger = practice.client("203.0.113.5")
    forger.token = f"clt_{session_id}.not-the-secret"
    with pytest.raises(Unauthorized):
        forger.me()
    rows = owner.audit(user_id=casey_m.user_id, sort_by="position")
    # Within a minute of the last one recorded on that session: refused, and not written again.
    assert [r.reason for r in rows if r.event_type == REQUEST_REFUSED] == ["revoked"]


def test_a_forged_token_of_an_open_session_is_recorded_under_its_user(
    practice: Practice,
) -> None:
    owner = practice.owner()
    casey_m = add_member(practice, owner, "casey", "Dr. Casey", "clinician")
    casey = casey_m.client()
    session_id = casey.token.removeprefix("clt_").partition(".")[0]  # type: ignore[union-attr]
    forger = practice.client("203.0.113.5")
    forger.token = f"clt_{session_id}.not-the-secret"
    with pytest.raises(Unauthorized):
        forger.me()
    casey.me()  # the session itself stands
    (row,) = [r for r in owner.audit(user_id=casey_m.user_id) if r.event_type == REQUEST_REFUSED]
    assert (row.outcome, row.reason) == ("failure", "wrong-token")


def test_an_anonymous_flood_writes_a_bounded_number_of_rows(practice: Practice) -> None:
    owner = practice.owner()
    before = practice.leaves()
    # No credentials at all: no decision about anyone, nothing written.
    bare = practice.http_client("192.0.2.50")
    assert bare.get("/auth/me").status_code == 401
    assert practice.leaves() == before
    # Garbage tokens from one address: refused every time, recorded once for the span.
    attacker = practice.http_client("192.0.2.66")
    for n in range(30):
        token = f"garbage-{n}" if n % 2 else f"clt_{UUID(int=n).hex}.guess"
        answer = attacker.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401
    assert practice.leaves() == before + 1
    (row,) = [r for r in owner.audit() if r.event_type == TOKEN_REFUSED]
    assert (row.outcome, row.user_id, row.detail) == ("failure", None, "from 192.0.2.66")
    assert row.reason in ("malformed-token", "unknown-session")
    # The refusals are ledger events like any other: the store still verifies, and exports.
    assert chartledger(["verify"]) == 0
    assert owner.export_ehi(all_patients=True, purpose="HOPERAT")["transactionTime"]


def test_export_and_production_downloads_name_every_patient_they_carry(
    practice: Practice,
) -> None:
    owner = practice.owner()
    rita = add_member(practice, owner, "rita", "Rita Risk", "risk_manager").client()
    patients = [
        owner.register_patient(ada().model_copy(update={"mrn": f"MRN-{n}"})).patient_id
        for n in range(3)
    ]
    manifest = rita.export_ehi(all_patients=True, purpose="HOPERAT")
    export_id = manifest["extension"][EXTENSION]["exportId"]
    rita.export_file(export_id, "Patient.ndjson")

    matter = rita.open_matter("Roe v. Practice", "CV-2026-18")
    rita.place_hold(matter.matter_id, HoldIn(name="Roe", scope=ScopeIn(patients=patients[:2])))
    production = rita.produce(matter.matter_id)
    rita.download_production(production["production_id"])

    for n, patient in enumerate(patients):
        copies = [r for r in owner.access_report(patient) if r.action == "copy"]
        # The export's file for every patient; the production's bundle for the two held.
        assert len(copies) == (2 if n < 2 else 1), (n, copies)
        assert {c.purpose for c in copies} == ({"HOPERAT", "HLEGAL"} if n < 2 else {"HOPERAT"})


def _parsed(text: str) -> tuple[list[str], list[dict[str, str | None]]]:
    header, *rows = list(csv.reader(io.StringIO(text)))
    return header, [dict(zip(header, map(unguard, row), strict=True)) for row in rows]


def _as_text(row: dict[str, Any]) -> dict[str, str | None]:
    return {k: None if v is None else str(v) for k, v in row.items()}


def test_the_csv_reports_round_trip_to_the_json_rows_and_are_recorded(
    practice: Practice,
) -> None:
    owner = practice.owner()
    casey = add_member(practice, owner, "casey", "Dr. Casey", "clinician").client()
    patient = owner.register_patient(ada()).patient_id
    in_care(owner, patient, casey)
    casey.chart(patient)
    # A username a spreadsheet would run: it reaches a refused attempt's detail.
    add_member(practice, owner, "mo", "Mo", "staff").client()
    with pytest.raises(Forbidden):
        casey.audit()

    json_rows = owner.audit(sort_by="position")
    header, csv_rows = _parsed(owner.audit_csv(sort_by="position"))
    assert header == list(AuditRowOut.model_fields)
    # The CSV read is recorded like the JSON one, after it: the rows before it are the same.
    assert csv_rows[: len(json_rows)] == [_as_text(r.model_dump()) for r in json_rows]
    reads = [r for r in owner.audit(action="query") if r.data_category == "audit"]
    assert len(reads) >= 3  # the JSON read, the CSV read, and this one

    access = owner.access_report(patient)
    header, csv_access = _parsed(owner.access_report_csv(patient))
    assert header == list(AccessRowOut.model_fields)
    assert csv_access[: len(access)] == [_as_text(r.model_dump()) for r in access]
    assert len(csv_access) == len(access) + 1  # the JSON report's own reading, in the CSV one


@pytest.mark.usefixtures("token_file")
def test_the_cli_prints_the_event_type_and_the_csv(
    practice: Practice, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHARTLEDGER_PASSWORD", OWNER_PASSWORD)
    with served(practice) as server:
        owner_logs_in_remotely(practice, server, capsys)
        since = "2000-01-01T00:00:00-05:00"
        assert chartledger(["--server", server, "audit", "--since", since]) == 0
        out = capsys.readouterr().out
        assert "domain.credentials:Account.LoggedIn" in out
        assert chartledger(["--server", server, "audit", "--csv"]) == 0
        header = capsys.readouterr().out.splitlines()[0]
        assert header.split(",") == list(AuditRowOut.model_fields)
        # The server's 422 for a bad instant is exit 2 too (sent as the API would get it).
        line = one_line_refusal(capsys, server, "audit", "--since", "someday")
        assert "offset" in line
