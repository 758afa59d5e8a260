"""``chartledger --server URL matters|holds|break-glass|alerts|exports ...``: legal holds, the
break-glass review queue, alerts and EHI exports through the thin client, as the logged-in user.

People are named by username (custodians), patients by MRN, matters by number, or each by id
(``api/remote_names.py``). ``matters`` and ``holds`` act over the server only when ``--server``
is given on the command line; without it they are the local commands (``legal_hold/cli.py``).
Output is ids, states and counts, never a patient's details.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any
from uuid import UUID, uuid4

from api import hold_schemas as hs
from api.client import Client
from api.remote_names import Names
from domain.access import PURPOSES_OF_USE
from events.private_files import private_dir, write_private
from projections.ehi_export import README, file_name

EXIT_OK = 0
USER, PATIENT = "a username or user id", "an MRN or patient id"
# The purpose under which a hold's or an export's MRNs are looked up (recorded with the search).
LEGAL, EXPORT = "HLEGAL", "PATRQT"
MANIFEST, DOCUMENTATION = "manifest.json", "EHI_EXPORT.md"

ClientFor = Callable[[argparse.Namespace], Client]


def _actions(commands: Any, name: str, help: str) -> Any:
    group = commands.add_parser(name, help=help)
    group.set_defaults(remote=True)
    return group.add_subparsers(dest="action", required=True, parser_class=type(group))


def _sub(parent: Any, name: str, help: str, run: Callable[[argparse.Namespace], int]) -> Any:
    parser = parent.add_parser(name, help=help)
    parser.set_defaults(run=run, remote=True)
    return parser


def _uuid(what: str) -> Callable[[str], UUID]:
    def parse(text: str) -> UUID:
        try:
            return UUID(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} id") from None

    return parse


def _scope(names: Names, o: argparse.Namespace) -> hs.ScopeIn:
    return hs.ScopeIn(
        patients=names.patients(o.patient, "--patient", LEGAL),
        custodians=names.users(o.custodian, "--custodian"),
        all_patients=o.all_patients,
        start=o.start,
        end=o.end,
        categories=o.category,
    )


def _scope_options(p: argparse.ArgumentParser, full: bool = True) -> None:
    p.add_argument("--patient", action="append", default=[], help=f"{PATIENT} (repeatable)")
    p.add_argument("--custodian", action="append", default=[], help=f"{USER} (repeatable)")
    if full:
        p.add_argument("--all-patients", action="store_true")
        p.add_argument("--start", type=date.fromisoformat, help="YYYY-MM-DD")
        p.add_argument("--end", type=date.fromisoformat, help="YYYY-MM-DD")
        p.add_argument("--category", action="append", default=[], help="repeatable")


def _hold_line(verb: str, h: hs.HoldOut) -> str:
    state = "active" if h.active else "released"
    notice = "silent" if h.silent else f"notice v{h.notice_version}"
    return (
        f"{verb} hold {h.hold_id} on matter {h.matter_id} ({state}, {notice}): "
        f"{len(h.scope.patients)} patient(s), {len(h.scope.custodians)} custodian(s)"
        + (", all patients" if h.scope.all_patients else "")
    )


def add_matters_and_holds(commands: Any, client_for: ClientFor) -> None:
    """``matters create|list|close`` and ``holds place|list|scope|notice|ack|release|report|
    mine|remind`` over the server (added only when ``--server`` is given)."""

    def matter_line(m: hs.MatterOut) -> str:
        state = "open" if m.closed_at is None else f"closed {m.closed_at.isoformat()}"
        return f"{m.matter_id}  {m.number}  {state}"

    def matters_create(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            m = client.open_matter(o.name, o.number, o.forum)
        print(f"Opened matter {m.matter_id} ({m.number})")
        return EXIT_OK

    def matters_list(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            for m in client.matters():
                print(matter_line(m))
        return EXIT_OK

    def matters_close(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            m = client.close_matter(Names(client).matter(o.matter), o.reason)
        print(f"Closed matter {m.matter_id} ({m.number})")
        return EXIT_OK

    matters = _actions(commands, "matters", "(--server) legal matters (risk managers)")
    for name in ("create", "open"):
        p = _sub(matters, name, "open a matter", matters_create)
        p.add_argument("--name", required=True)
        p.add_argument("--number", required=True, help="the matter's number, e.g. CV-2026-17")
        p.add_argument("--forum")
    _sub(matters, "list", "every matter", matters_list)
    p = _sub(matters, "close", "close a matter whose holds are all released", matters_close)
    p.add_argument("matter", help="the matter's number or id")
    p.add_argument("--reason", required=True)

    def place(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            names = Names(client)
            matter = names.matter(o.matter)
            hold = hs.HoldIn(
                name=o.name,
                scope=_scope(names, o),
                silent=o.silent,
                reminder_days=o.reminder_days,
                escalation_days=o.escalation_days,
                notice=o.notice,
            )
            h = client.place_hold(matter, hold)
        print(_hold_line("Placed", h))
        return EXIT_OK

    def holds_list(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            matter = None if o.matter is None else Names(client).matter(o.matter)
            for h in client.holds(matter, True if o.active else None):
                print(_hold_line("", h).strip())
        return EXIT_OK

    def scope(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            h = client.change_hold_scope(o.hold, _scope(Names(client), o), o.reason)
        print(_hold_line("Changed the scope of", h))
        return EXIT_OK

    def notice(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            h = client.issue_notice(o.hold, o.text)
        print(f"Issued notice version {h.notice_version} of hold {h.hold_id}")
        return EXIT_OK

    def ack(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            a = client.acknowledge_hold(o.hold, o.version)
        print(f"Acknowledged notice version {a.version} of hold {a.hold_id} at "
              f"{a.acknowledged_at.isoformat()}")  # fmt: skip
        return EXIT_OK

    def release(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            names = Names(client)
            patients = names.patients(o.patient, "--patient", LEGAL)
            custodians = names.users(o.custodian, "--custodian")
            h = client.release_hold(o.hold, o.reason, patients, custodians)
        print(f"{'Released' if not h.active else 'Partly released'} hold {h.hold_id}")
        return EXIT_OK

    def report(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            r = client.hold_report(o.hold)
        print(f"hold {r.hold_id} on matter {r.matter_id}: {'active' if r.active else 'released'}")
        for change in r.scope_history:
            print(f"  {change.at.isoformat()}  {change.change} by {change.by}: "
                  f"{len(change.scope.patients)} patient(s), "
                  f"{len(change.scope.custodians)} custodian(s)")  # fmt: skip
        for n in r.notices:
            print(f"  notice v{n.version} issued {n.at.isoformat()} by {n.by}")
        for c in r.custodians:
            acknowledged = c.acknowledged_at.isoformat() if c.acknowledged_at else "not yet"
            print(f"  custodian {c.custodian_id}: version {c.version}, acknowledged "
                  f"{acknowledged}, reminders {c.reminders}")  # fmt: skip
        print(f"  outstanding: {len(r.outstanding)}; due now: {len(r.due)}")
        return EXIT_OK

    def mine(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            held = client.my_holds()
        for h in held:
            acknowledged = h.acknowledged_at.isoformat() if h.acknowledged_at else "not yet"
            print(f"hold {h.hold_id} ({h.matter_number}): notice version {h.version}, "
                  f"acknowledged {acknowledged}")  # fmt: skip
            print("  " + "\n  ".join(h.notice.splitlines()))
        if not held:
            print("You are named in no active hold.")
        return EXIT_OK

    def remind(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            sent = client.remind()
        for item in sent:
            d = item.due
            print(f"sent {d.kind} v{d.version} of hold {d.hold_id} about custodian "
                  f"{d.custodian_id} ({item.where})")  # fmt: skip
        print(f"{len(sent)} sent")
        return EXIT_OK

    holds = _actions(commands, "holds", "(--server) legal holds, notices, acknowledgements")
    p = _sub(holds, "place", "place a hold on a matter's patients and custodians", place)
    p.add_argument("matter", help="the matter's number or id")
    p.add_argument("--name", required=True)
    _scope_options(p)
    p.add_argument("--silent", action="store_true", help="send no notices")
    p.add_argument("--notice", help="the notice's text (not for silent holds)")
    p.add_argument("--reminder-days", type=int, default=7)
    p.add_argument("--escalation-days", type=int, default=14)
    p = _sub(holds, "list", "holds, of one matter or all", holds_list)
    p.add_argument("--matter", help="the matter's number or id")
    p.add_argument("--active", action="store_true", help="only holds not released")
    p = _sub(holds, "scope", "replace a hold's scope (the history is kept)", scope)
    p.add_argument("hold", type=_uuid("a hold's"))
    _scope_options(p)
    p.add_argument("--reason", required=True)
    p = _sub(holds, "notice", "issue or re-issue a hold's notice", notice)
    p.add_argument("hold", type=_uuid("a hold's"))
    p.add_argument("--text", required=True)
    p = _sub(holds, "ack", "acknowledge a notice, as the custodian logged in", ack)
    p.add_argument("hold", type=_uuid("a hold's"))
    p.add_argument("--version", type=int, required=True, help="the notice version read")
    p = _sub(holds, "release", "release a hold, or only the patients/custodians named", release)
    p.add_argument("hold", type=_uuid("a hold's"))
    p.add_argument("--reason", required=True)
    _scope_options(p, full=False)
    p = _sub(holds, "report", "a hold's scope over time, notices and acknowledgements", report)
    p.add_argument("hold", type=_uuid("a hold's"))
    _sub(holds, "mine", "the holds naming you as custodian, with their notices", mine)
    _sub(holds, "remind", "send every notice, reminder and escalation due now", remind)


def add_review_commands(commands: Any, client_for: ClientFor) -> None:
    """``break-glass open|list|review`` and ``alerts list|acknowledge``."""

    def open_(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            patient = Names(client).patient(o.patient, "patient", "TREAT")
            b = client.break_glass(patient, o.reason, o.minutes)
        print(f"Emergency access {b.emergency_access_id} to patient {b.patient_id} until "
              f"{b.until.isoformat()}; it will be reviewed")  # fmt: skip
        return EXIT_OK

    def listed(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            queue = client.break_glass_queue(o.reviewed)
        for b in queue:
            outcome = b.outcome or "not reviewed"
            print(f"{b.emergency_access_id}  {b.declared_at.isoformat()}  user {b.user_id}  "
                  f"patient {b.patient_id}  {outcome}")  # fmt: skip
        return EXIT_OK

    def review(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            b = client.review_break_glass(o.access, o.outcome, o.note)
        print(f"Emergency access {b.emergency_access_id} reviewed: {b.outcome}")
        return EXIT_OK

    glass = _actions(commands, "break-glass", "(--server) emergency access and its review")
    p = _sub(glass, "open", "declare an emergency and read a patient's chart", open_)
    p.add_argument("patient", help=PATIENT)
    p.add_argument("--reason", required=True, help="why this is an emergency (10+ characters)")
    p.add_argument("--minutes", type=int, default=60, help="how long access lasts (up to 240)")
    p = _sub(glass, "list", "the review queue (auditors, risk managers)", listed)
    seen = p.add_mutually_exclusive_group()
    seen.add_argument("--reviewed", action="store_const", const=True, default=None)
    seen.add_argument("--unreviewed", dest="reviewed", action="store_const", const=False)
    p = _sub(glass, "review", "record a review's outcome", review)
    p.add_argument("access", type=_uuid("an emergency access's"), help="the emergency access's id")
    p.add_argument("--outcome", required=True, choices=("appropriate", "inappropriate"))
    p.add_argument("--note")

    def alerts_list(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            found = client.alerts(o.acknowledged)
        for a in found:
            state = "acknowledged" if a.acknowledged_at else "open"
            print(f"{a.alert_id}  {a.raised_at.isoformat()}  {a.kind:<14} {state:<12} "
                  f"user {a.user_id}")  # fmt: skip
        return EXIT_OK

    def alerts_ack(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            a = client.acknowledge_alert(o.alert)
        print(f"Alert {a.alert_id} acknowledged")
        return EXIT_OK

    alerts = _actions(commands, "alerts", "(--server) alerts raised by break-glass and the like")
    p = _sub(alerts, "list", "alerts, open or all", alerts_list)
    seen = p.add_mutually_exclusive_group()
    seen.add_argument("--acknowledged", action="store_const", const=True, default=None)
    seen.add_argument("--open", dest="acknowledged", action="store_const", const=False)
    p = _sub(alerts, "acknowledge", "acknowledge an alert", alerts_ack)
    p.add_argument("alert", type=_uuid("an alert's"), help="the alert's id")


def _export_files(manifest: dict[str, Any]) -> list[str]:
    """Every file a manifest lists, and the manifest and its documentation; a name that could
    leave the download folder is refused (the server's answer is not trusted with paths)."""
    extension = next(iter(manifest.get("extension", {}).values()), {})
    export_id = str(extension.get("exportId", ""))
    names = [MANIFEST, DOCUMENTATION]
    version = str(extension.get("format", "")).rpartition("/")[2]
    if version.isdigit() and int(version) >= 4:
        names.append(README)  # every export since format 4 (docs/EHI_EXPORT.md §8)
    urls = [f["url"] for f in [*manifest.get("output", []), *extension.get("native", [])]]
    names += [file_name(url, export_id) for url in urls]  # absolute URLs: their names
    for name in names:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise ValueError(f"the export lists a file outside its folder: {name!r}")
    return names


def download_export(client: Client, export_id: str, out: Path) -> int:
    """The export's files into ``out``, a new folder, which appears only once every file is
    in it (a failed download leaves nothing behind); returns how many files."""
    if out.exists():
        raise FileExistsError(f"{out} exists: an export is downloaded into a new folder")
    manifest = json.loads(client.export_file(export_id, MANIFEST))
    names = _export_files(manifest)
    staging = out.parent / f".{out.name}.partial-{uuid4().hex}"
    private_dir(staging, exist_ok=False)
    try:
        for name in names:
            target = staging / name
            private_dir(target.parent)
            write_private(target, client.export_file(export_id, name), exclusive=True)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(names)


def add_export_commands(commands: Any, client_for: ClientFor) -> None:
    """``exports start|download``: the server writes the export; the CLI fetches its files."""

    def start(o: argparse.Namespace) -> int:
        out = None if o.out is None else Path(o.out)
        if out is not None and out.exists():
            raise FileExistsError(f"{out} exists: an export is downloaded into a new folder")
        with client_for(o) as client:
            patient = None
            if o.patient is not None:
                patient = Names(client).patient(o.patient, "--patient", EXPORT)
            manifest = client.export_ehi(patient, all_patients=o.all, purpose=o.purpose)
            extension = next(iter(manifest["extension"].values()))
            export_id = extension["exportId"]
            total = sum(f["count"] for f in manifest["output"])
            print(f"Export {export_id}: {total} FHIR resources")
            if out is not None:
                files = download_export(client, export_id, out)
                print(f"Downloaded {files} files to {out}")
        return EXIT_OK

    def download(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            files = download_export(client, str(o.export), Path(o.out))
        print(f"Downloaded {files} files to {o.out}")
        return EXIT_OK

    exports = _actions(commands, "exports", "(--server) EHI exports (owners, risk managers)")
    p = _sub(exports, "start", "export one patient's EHI, or everyone's", start)
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument("--patient", help=PATIENT)
    scope.add_argument("--all", action="store_true", help="every patient's record")
    p.add_argument("--purpose", choices=PURPOSES_OF_USE, default="PATRQT")
    p.add_argument("--out", help="download the export into this new folder")
    p = _sub(exports, "download", "download a finished export's files", download)
    p.add_argument("export", type=_uuid("an export's"), help="the export's id")
    p.add_argument("--out", required=True, help="a folder that does not exist yet")
