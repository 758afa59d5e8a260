"""More of ``chartledger --server URL ...``: the everyday clinical, audit and account commands
through the thin client, as the logged-in user (``chartledger --server URL login`` first).

Each prints ids and outcomes, never more of the record than the command asked to show.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from api.auth import MAX_PASSWORD
from api.cli_errors import UsageError
from api.client import Client
from api.hold_schemas import PolicyIn
from api.instants import NotAnInstant, normalise_instant
from api.remote_names import Names
from api.schemas import MAX_CODE, LabIn
from events.private_files import write_private
from legal_hold.production_cli import withheld_item

EXIT_OK = 0
# How ``init`` words recovery codes; every list of them is printed under it.
KEEP_CODES = "recovery codes (each works once; keep them offline, apart from the keys):"


# Names of the top-level commands defined here; api/cli.py runs them with the thin client.
REMOTE_COMMANDS = frozenset(
    {
        "labs",
        "notes",
        "audit",
        "access-report",
        "users",
        "recover",
        "recover-approved",
        "recovery-codes",
        "enroll",
        "password",
        "status",
        "productions",
        "policies",
        "disposals",
    }
)

ClientFor = Callable[[argparse.Namespace], Client]


def _instant(option: str, value: str | None) -> str | None:
    """``value`` as the ledger's UTC timestamp, or ``UsageError`` (exit 2, one line) before
    anything is sent."""
    try:
        return None if value is None else normalise_instant(value)
    except NotAnInstant as e:
        raise UsageError(f"{option}: {e}") from None


def _secret(variable: str, prompt: str) -> str:
    return os.environ.get(variable) or getpass.getpass(prompt)


def _given(variable: str, prompt: str, what: str, most: int) -> str:
    """A secret from ``variable`` or asked for; one nobody could send is misuse, said in one
    line (the thin client would refuse it before sending)."""
    value = _secret(variable, prompt)
    if not value:
        raise UsageError(f"no {what} given: set {variable} or type it when asked")
    if len(value) > most:
        raise UsageError(f"the {what} is longer than {most} characters")
    return value


def _user_id(client: Client, user: str) -> UUID:
    """A user named by id or by username."""
    return Names(client).user(user)


USER = "a username or user id"
PATIENT = "an MRN or patient id"


def add_commands(commands: Any, client_for: ClientFor, saved: Callable[[str, str], Any]) -> None:
    """Register the commands; ``client_for`` opens the logged-in client, ``saved`` keeps a new
    session's token (as ``login`` does)."""

    def sub(parent: Any, name: str, help: str, run: Callable[[argparse.Namespace], int]) -> Any:
        parser = parent.add_parser(name, help=help)
        parser.set_defaults(run=run)
        return parser

    def actions(name: str, help: str) -> Any:
        group = commands.add_parser(name, help=help)
        return group.add_subparsers(dest="action", required=True, parser_class=type(group))

    def record_lab(o: argparse.Namespace) -> int:
        lab = LabIn(
            patient_id=o.patient_id,
            loinc_code=o.loinc,
            test_name=o.test,
            value=o.value,
            unit=o.unit,
            performing_lab=o.lab,
            reference_range=o.range,
        )
        with client_for(o) as client:
            out = client.record_lab(lab)
        print(f"lab {out.lab_id} recorded: {out.value} {out.unit}")
        return EXIT_OK

    labs = actions("labs", "(--server) lab results")
    p = sub(labs, "record", "record a result, value and unit exactly as given", record_lab)
    p.add_argument("patient_id", type=UUID)
    p.add_argument("--loinc", required=True)
    p.add_argument("--test", required=True, help="the test's name")
    p.add_argument("--value", required=True, help='a decimal string, e.g. "5.2"')
    p.add_argument("--unit", required=True, help='a UCUM unit, e.g. "mg/dL"')
    p.add_argument("--lab", required=True, help="the performing lab")
    p.add_argument("--range", help="the reference range, as the lab gives it")

    def note_out(verb: str, note: Any) -> int:
        state = "signed" if note.signed else "draft"
        print(f"note {note.note_id} {verb} ({state}, {note.addenda} addenda)")
        return EXIT_OK

    def draft(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            return note_out("drafted", client.draft_note(o.patient_id, o.kind, o.text))

    def sign(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            return note_out("signed", client.sign_note(o.note_id))

    def amend(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            return note_out("amended", client.amend_note(o.note_id, o.text, o.reason))

    notes = actions("notes", "(--server) encounter notes")
    p = sub(notes, "draft", "draft a note", draft)
    p.add_argument("patient_id", type=UUID)
    p.add_argument("--kind", default="progress")
    p.add_argument("--text", required=True)
    p = sub(notes, "sign", "sign a draft (after which it can only be amended)", sign)
    p.add_argument("note_id", type=UUID)
    p = sub(notes, "amend", "add an addendum to a signed note, with the reason", amend)
    p.add_argument("note_id", type=UUID)
    p.add_argument("--text", required=True)
    p.add_argument("--reason", required=True)

    def audit(o: argparse.Namespace) -> int:
        filters = {
            k: v
            for k, v in (
                ("since", _instant("--since", o.since)),
                ("until", _instant("--until", o.until)),
                ("patient_id", o.patient),
                ("action", o.action_type),
                ("sort_by", o.sort_by),
            )
            if v is not None
        }
        with client_for(o) as client:
            if o.user is not None:
                filters["user_id"] = Names(client).user(o.user, "--user")
            if o.csv:
                print(client.audit_csv(**filters, descending=o.descending), end="")
                return EXIT_OK
            rows = client.audit(**filters, descending=o.descending)
        for r in rows:
            print(
                f"{r.position:>8} {r.event_time} {r.action:<7} {r.data_category:<14} "
                f"{r.outcome:<8} {r.event_type} user={r.user_id} target={r.target_user_id} "
                f"patient={r.patient_id} source={r.source}"
                + (f" reason={r.reason}" if r.reason else "")
            )
        return EXIT_OK

    p = commands.add_parser("audit", help="(--server) the audit report, any period, any order")
    p.set_defaults(run=audit)
    p.add_argument(
        "--since", help="an RFC 3339 time with its offset, e.g. 2026-11-01T00:00:00-05:00"
    )
    p.add_argument("--until", help="as --since; rows before it")
    p.add_argument("--patient", type=UUID)
    p.add_argument("--user", help=USER)
    p.add_argument("--action-type", help="create, change, void, query, access, print, ...")
    p.add_argument("--sort-by", help="any audit column, e.g. user_id")
    p.add_argument("--descending", action="store_true")
    p.add_argument("--csv", action="store_true", help="every field as CSV (formula-guarded)")

    def access_report(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            if o.csv:
                print(client.access_report_csv(o.patient_id), end="")
                return EXIT_OK
            rows = client.access_report(o.patient_id)
        for r in rows:
            print(f"{r.event_time} {r.action:<7} {r.data_category:<14} {r.outcome:<8} "
                  f"user={r.user_id} purpose={r.purpose}")  # fmt: skip
        return EXIT_OK

    p = commands.add_parser("access-report", help="(--server) who read a patient's record, why")
    p.set_defaults(run=access_report)
    p.add_argument("patient_id", type=UUID)
    p.add_argument("--csv", action="store_true", help="every field as CSV (formula-guarded)")

    def users_list(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            for u in client.users():
                state = "active" if u.active else "inactive"
                print(f"{u.user_id}  {u.username:<16} {state:<8} {','.join(u.roles)}")
        return EXIT_OK

    def users_deactivate(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            u = client.deactivate_user(_user_id(client, o.user), o.reason)
        print(f"user {u.user_id} deactivated; every session of theirs has ended")
        return EXIT_OK

    def users_grant(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            u = client.grant_role(_user_id(client, o.user), o.role)
        print(f"user {u.user_id} now holds {','.join(u.roles)}")
        if o.role == "owner":
            print("  A new owner holds no recovery codes: they issue their own with "
                  "`recovery-codes`, logged in with their password and a TOTP code.")  # fmt: skip
        return EXIT_OK

    def users_revoke_role(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            u = client.revoke_role(_user_id(client, o.user), o.role)
        print(f"user {u.user_id} now holds {','.join(u.roles) or 'no role'}")
        return EXIT_OK

    def users_approve_recovery(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            a = client.approve_recovery(_user_id(client, o.user))
        print(f"Recovery of user {a.user_id} approved until {a.expires_at.isoformat()}.")
        print("Hand this code to them in person (it works once, and is not shown again):")
        print(f"    {a.approval_code}")
        return EXIT_OK

    def hand_over(code: str, expires_at: Any) -> None:
        print("Hand this enrollment code to them in person (it works once, until "
              f"{expires_at.isoformat()}, and is not shown again):")  # fmt: skip
        print(f"    {code}")
        print("They set their own password (and enroll their authenticator) with "
              "`chartledger --server URL enroll <username>`.")  # fmt: skip

    def users_create(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            u = client.create_user(o.username, o.name, o.role)
        print(f"user {u.user_id} ({u.username}) created with the role {o.role}")
        hand_over(u.enrollment_code, u.expires_at)
        return EXIT_OK

    def users_reset(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            user_id = _user_id(client, o.user)
            u = client.reset_user(user_id, authenticator=o.authenticator)
        what = "password and authenticator" if u.authenticator_reset else "password"
        print(f"user {u.user_id} ({u.username}): {what} reset; every session of theirs ended")
        hand_over(u.enrollment_code, u.expires_at)
        return EXIT_OK

    users = actions("users", "(--server) users (owners; user administrators for non-owners)")
    sub(users, "list", "every user, their roles and whether active", users_list)
    p = sub(users, "create", "create a user: prints their one-time enrollment code", users_create)
    p.add_argument("username")
    p.add_argument("--name", required=True, help="the user's full name")
    p.add_argument("--role", required=True, help="clinician, staff, risk_manager, auditor, ...")
    p = sub(
        users,
        "reset",
        "reset a user's password (their authenticator too with --authenticator, owners only): "
        "ends their sessions, prints a new enrollment code",
        users_reset,
    )
    p.add_argument("user", help="the user's id or username")
    p.add_argument("--authenticator", action="store_true")
    p = sub(users, "deactivate", "revoke a user: ends all their sessions at once", users_deactivate)
    p.add_argument("user", help=USER)
    p.add_argument("--reason", required=True, help="why (recorded with the deactivation)")
    p = sub(users, "grant", "grant a role", users_grant)
    p.add_argument("user", help=USER)
    p.add_argument("role")
    p = sub(users, "revoke-role", "take a role away", users_revoke_role)
    p.add_argument("user", help=USER)
    p.add_argument("role")
    p = sub(
        users,
        "approve-recovery",
        "(owners) approve another owner's recovery: a one-time code to hand over in person",
        users_approve_recovery,
    )
    p.add_argument("user", help=USER)

    def new_password() -> str:
        return _given("CHARTLEDGER_NEW_PASSWORD", "New password: ", "new password", MAX_PASSWORD)

    def enroll(o: argparse.Namespace) -> int:
        code = _given(
            "CHARTLEDGER_ENROLLMENT_CODE", "Enrollment code: ", "enrollment code", MAX_CODE
        )
        password = new_password()
        with Client(o.server) as client:
            out = client.enroll(o.username, code, password)
        print(f"Enrolled {o.username}: your password is set. Log in with it and a TOTP code.")
        if out.totp_secret is not None:
            print("  your TOTP secret, for your authenticator app (shown once, to you alone):")
            print(f"  totp secret:  {out.totp_secret}")
            print(f"  totp uri:     {out.totp_uri}")
        return EXIT_OK

    p = commands.add_parser(
        "enroll",
        help="(--server) spend an enrollment code: set your password, enroll your authenticator "
        "(code from CHARTLEDGER_ENROLLMENT_CODE, password from CHARTLEDGER_NEW_PASSWORD, or asked)",
    )
    p.set_defaults(run=enroll)
    p.add_argument("username")

    def change_password(o: argparse.Namespace) -> int:
        current = _given("CHARTLEDGER_PASSWORD", "Current password: ", "current password",
                         MAX_PASSWORD)  # fmt: skip
        password = new_password()
        with client_for(o) as client:
            client.change_password(current, password)
        print("Password changed; every other session of yours has ended.")
        return EXIT_OK

    p = commands.add_parser(
        "password",
        help="(--server) change your own password (current from CHARTLEDGER_PASSWORD, new from "
        "CHARTLEDGER_NEW_PASSWORD, or asked); your other sessions end",
    )
    p.set_defaults(run=change_password)

    def recover(o: argparse.Namespace) -> int:
        code = _given("CHARTLEDGER_RECOVERY_CODE", "Recovery code: ", "recovery code", MAX_CODE)
        password = new_password()
        with Client(o.server) as client:
            client.recover(o.username, code, password)
            assert client.token is not None
            path = saved(o.server, client.token)
        print(f"Recovered {o.username}: new password set, other sessions ended; token in {path}")
        return EXIT_OK

    p = commands.add_parser(
        "recover", help="(--server) regain an owner account with a one-time recovery code"
    )
    p.set_defaults(run=recover)
    p.add_argument("username")

    def recover_approved(o: argparse.Namespace) -> int:
        code = _given("CHARTLEDGER_APPROVAL_CODE", "Approval code: ", "approval code", MAX_CODE)
        password = new_password()
        with Client(o.server) as client:
            out = client.recover_approved(o.username, code, password)
            path = saved(o.server, out.token)
        print(f"Recovered {o.username} with another owner's approval: new password set, other "
              f"sessions ended; token in {path}")  # fmt: skip
        # The old authenticator no longer works: the new secret is shown this once, as at init.
        print("  new TOTP secret, for your authenticator app (shown once):")
        print(f"  totp secret:  {out.totp_secret}")
        print(f"  totp uri:     {out.totp_uri}")
        return EXIT_OK

    p = commands.add_parser(
        "recover-approved",
        help="(--server) regain an owner account with another owner's one-time approval code",
    )
    p.set_defaults(run=recover_approved)
    p.add_argument("username")

    def recovery_codes(o: argparse.Namespace) -> int:
        password = _secret("CHARTLEDGER_PASSWORD", "Current password: ")
        if not 1 <= len(password) <= MAX_PASSWORD:
            raise UsageError(
                f"give your current password (1 to {MAX_PASSWORD} characters) in "
                "CHARTLEDGER_PASSWORD or when asked"
            )
        with client_for(o) as client:
            out = client.issue_recovery_codes(password)
        print(f"Issued {len(out.recovery_codes)} new recovery codes; every earlier one no "
              "longer works. They are not shown again.")  # fmt: skip
        print(f"  {KEEP_CODES}")
        for code in out.recovery_codes:
            print(f"    {code}")
        return EXIT_OK

    p = commands.add_parser(
        "recovery-codes",
        help="(--server) as an owner logged in with a TOTP code, issue yourself new recovery "
        "codes (current password from CHARTLEDGER_PASSWORD or asked); the old ones stop working",
    )
    p.set_defaults(run=recovery_codes)

    def status(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            background = client.status()
            checked = client.verify_store()
            latest = client.latest_checkpoint()
        print(
            json.dumps(
                {
                    "store": checked.model_dump(),
                    "latest_checkpoint": latest,
                    "background": background.model_dump(mode="json"),
                },
                indent=2,
            )
        )
        return EXIT_OK if checked.ok and background.healthy else 1

    p = commands.add_parser(
        "status",
        help="(--server) the store's verification, its checkpoint and the server's background "
        "loops; with --local, the loops as this practice home's heartbeats tell (no server)",
    )
    p.add_argument(
        "--local",
        action="store_true",
        help="read CHARTLEDGER_HOME's heartbeats instead of asking a server",
    )
    p.set_defaults(run=status)
    add_production_commands(commands, client_for)
    add_disposal_commands(commands, client_for)


def add_production_commands(commands: Any, client_for: ClientFor) -> None:
    """``productions create``: a risk manager's production made by the server, downloaded to
    a file and checked against the SHA-256 the server recorded in its ledger event."""

    def create(o: argparse.Namespace) -> int:
        out = Path(o.out)
        if out.exists():
            raise FileExistsError(f"{out} exists: a bundle is never overwritten")
        withhold = dict(o.withhold)
        with client_for(o) as client:
            produced = client.produce(o.matter, withhold=withhold, since_checkpoint=o.since)
            bundle = client.download_production(produced["production_id"])
        if hashlib.sha256(bundle).hexdigest() != produced["sha256"]:
            raise ValueError("the downloaded bundle is not the one the server recorded")
        write_private(out, bundle, exclusive=True)
        print(
            f"Produced {out}: {produced['events']} events, checkpoint size "
            f"{produced['checkpoint_size']}, SHA-256 {produced['sha256']} "
            f"(production {produced['production_id']})"
        )
        return EXIT_OK

    group = commands.add_parser("productions", help="(--server) e-discovery productions")
    actions = group.add_subparsers(dest="action", required=True, parser_class=type(group))
    p = actions.add_parser("create", help="produce a matter's bundle on the server, download it")
    p.set_defaults(run=create)
    p.add_argument("--matter", type=UUID, required=True)
    p.add_argument("--out", required=True, help="the bundle file to write (must not exist)")
    p.add_argument(
        "--withhold", type=withheld_item, action="append", default=[], metavar="POSITION=CLAIM"
    )
    p.add_argument("--since", type=int, metavar="SIZE", help="a checkpoint the other side holds")


def add_disposal_commands(commands: Any, client_for: ClientFor) -> None:
    """``policies list|adopt`` (an owner adopts) and ``disposals propose|list|approve``: disposal
    by two people, one proposing under an adopted policy, another approving (one an owner)."""

    def policies_list(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            book = client.retention_policies()
        f = book.floor
        print(f"floor: adults {f.adult_years}y, minors {f.minor_years}y past majority at "
              f"{f.majority_age}")  # fmt: skip
        for p in book.policies:
            rules = ", ".join(f"{c} {r.adult_years}y/{r.minor_years}y" for c, r in p.rules.items())
            print(f"{p.name} v{p.version}: majority {p.majority_age}; {rules}; adopted by "
                  f"{p.adopted_by} at {p.adopted_at.isoformat()}")  # fmt: skip
        return EXIT_OK

    def policies_adopt(o: argparse.Namespace) -> int:
        body = PolicyIn(
            name=o.name,
            adult_years=o.adult_years,
            minor_years=o.minor_years,
            majority_age=o.majority_age,
        )
        with client_for(o) as client:
            p = client.adopt_policy(body)
        print(f"Adopted policy {p.name} version {p.version}")
        return EXIT_OK

    def disposals_propose(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            patient = Names(client).patient(o.patient, "patient", "HOPERAT")
            p = client.propose_disposal(patient, o.policy, o.version)
        until = p.expires_at.isoformat()
        print(f"Proposed disposal {p.proposal_id} of patient {p.patient_id} under {p.policy} "
              f"v{p.version}; a second person approves it before {until}")  # fmt: skip
        return EXIT_OK

    def disposals_list(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            for p in client.disposal_proposals():
                print(f"{p.proposal_id}  {p.state:<8} patient {p.patient_id}  {p.policy} "
                      f"v{p.version}  by {p.proposed_by}")  # fmt: skip
        return EXIT_OK

    def disposals_approve(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            d = client.approve_disposal(o.proposal_id)
        print(f"Patient {d.patient_id}: {d.description}; {d.keys_destroyed} key(s) destroyed")
        return EXIT_OK

    group = commands.add_parser("policies", help="(--server) retention floor and policies")
    actions = group.add_subparsers(dest="action", required=True, parser_class=type(group))
    p = actions.add_parser("list", help="the floor and every adopted policy")
    p.set_defaults(run=policies_list)
    p = actions.add_parser("adopt", help="(owner) adopt a policy: the next version of its name")
    p.set_defaults(run=policies_adopt)
    p.add_argument("--name", required=True)
    p.add_argument("--adult-years", type=int, required=True)
    p.add_argument("--minor-years", type=int, required=True)
    p.add_argument("--majority-age", type=int, default=18)

    group = commands.add_parser("disposals", help="(--server) disposal by two people")
    actions = group.add_subparsers(dest="action", required=True, parser_class=type(group))
    p = actions.add_parser("propose", help="propose disposing of a record under an adopted policy")
    p.set_defaults(run=disposals_propose)
    p.add_argument("patient", help=PATIENT)
    p.add_argument("--policy", required=True, help="an adopted policy's name")
    p.add_argument("--version", type=int, required=True)
    p = actions.add_parser("list", help="every proposal and its state")
    p.set_defaults(run=disposals_list)
    p = actions.add_parser("approve", help="approve someone else's proposal: disposes now")
    p.set_defaults(run=disposals_approve)
    p.add_argument("proposal_id", type=UUID)
