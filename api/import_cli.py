"""``chartledger import patients|labs|email|sms|fhir ...``: local imports (docs/IMPORTS.md).

The acting user is named with ``--by``, a username or a user id (an owner or staff member for
patients; an owner or a clinician for labs, email and SMS; an owner for a FHIR export).
Every rejected row, message or resource is printed on stdout with its location and reason.
Exit status 0: written; 2: refused (any rejection without ``--accept-valid``, nothing accepted,
a bad column map, an unknown user or patient, a folder that is no export), with one line on
stderr saying why and nothing written."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from api import fhir_importing, importing
from domain.base import user_subject
from domain.errors import ChartError
from domain.imports.csv_patients import ColumnMap
from domain.imports.report import ImportRejected, ImportReport
from events.config import StoreConfig
from events.context import acting
from events.ledger import Ledger
from projections.local_users import USER_HELP, user_id_of
from projections.rebuild import all_projections
from projections.runner import Runner
from verify.__main__ import progress_printer

EXIT_OK, EXIT_REFUSED = 0, 2
ROLES = {"patients": ("owner", "staff"), "labs": ("owner", "clinician")}
ROLES["email"] = ROLES["sms"] = ROLES["labs"]
ROLES["fhir"] = ("owner",)  # it registers patients and writes every part of their charts

Run = Callable[[importing.Importer, argparse.Namespace], ImportReport]


def _importer(ledger: Ledger, kind: str, who: str) -> importing.Importer:
    by = user_id_of(ledger, who)
    try:
        user = ledger.repository.get(by)
    except (AggregateNotFoundError, LookupError):
        raise ChartError(f"no user {by}") from None
    roles = getattr(user, "roles", ())
    allowed = ROLES[kind]
    if not getattr(user, "active", False) or not any(r in roles for r in allowed):
        raise ChartError(f"user {by} is not an active {' or '.join(allowed)}")
    runner = Runner(ledger, all_projections())
    runner.catch_up(progress_printer("catching up the views", unit="events"))
    return importing.Importer(
        ledger=ledger,
        runner=runner,
        by=by,
        is_owner="owner" in roles,
        acting=lambda: acting(user_subject(by), "cli"),
        progress=progress_printer(f"importing {kind}", unit="items"),
    )


def _print(report: ImportReport) -> None:
    for rejection in report.rejections:
        print(f"REJECTED {rejection}")
    if report.written:
        print(
            f"Imported {report.accepted} of {report.items} {report.kind} item(s), "
            f"{len(report.rejections)} rejected (import {report.import_id})"
        )


def _run(kind: str, body: Run) -> Any:
    def run(config: StoreConfig, options: argparse.Namespace) -> int:
        ledger = Ledger(config)
        try:
            report = body(_importer(ledger, kind, options.by), options)
        except ImportRejected as e:
            _print(e.report)
            print(f"chartledger: refused: {e}", file=sys.stderr)
            return EXIT_REFUSED
        except (ChartError, AggregateNotFoundError, OSError) as e:
            print(f"chartledger: refused: {_why(e)}", file=sys.stderr)
            return EXIT_REFUSED
        finally:
            ledger.close()
        _print(report)
        return EXIT_OK

    return run


def _why(error: BaseException) -> str:
    if isinstance(error, AggregateNotFoundError):
        return "no record with that id"
    if isinstance(error, OSError):
        return f"cannot read {error.filename}: {error.strerror}"
    return str(error)


def _patients(importer: importing.Importer, o: argparse.Namespace) -> ImportReport:
    mapping = ColumnMap.from_json(Path(o.map).read_bytes())
    data = Path(o.file).read_bytes()
    return importing.import_patients(importer, data, mapping, Path(o.file).name, o.accept_valid)


def _labs(importer: importing.Importer, o: argparse.Namespace) -> ImportReport:
    data = Path(o.file).read_bytes()
    return importing.import_labs(importer, data, Path(o.file).name, o.accept_valid)


def _email(importer: importing.Importer, o: argparse.Namespace) -> ImportReport:
    files = []
    for name in o.files:
        path = Path(name)
        inside = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        files.extend((p.name, p.read_bytes()) for p in inside)
    return importing.import_email(importer, files, o.patient, o.accept_valid)


def _sms(importer: importing.Importer, o: argparse.Namespace) -> ImportReport:
    data = Path(o.file).read_bytes()
    return importing.import_sms(importer, data, Path(o.file).name, o.patient, o.accept_valid)


def _fhir(importer: importing.Importer, o: argparse.Namespace) -> ImportReport:
    export = fhir_importing.read_export(Path(o.folder))
    name = Path(o.folder).resolve().name
    return fhir_importing.import_fhir(importer, export, o.source, name, o.accept_valid)


def add_commands(commands: Any) -> None:
    """Add ``import patients|labs|email|sms`` to chartledger's parser."""
    parser = commands.add_parser(
        "import", help="import patients, labs, email, SMS or a FHIR export from files"
    )
    kinds = parser.add_subparsers(dest="action", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--by", metavar="USER", required=True, help=f"the importing user ({USER_HELP})"
        )
        p.add_argument(
            "--accept-valid",
            action="store_true",
            help="write the valid items even if others are rejected (default: write nothing)",
        )

    p = kinds.add_parser("patients", help="patient demographics from a billing system's CSV")
    p.add_argument("file")
    p.add_argument("--map", required=True, metavar="MAP.json", help="the column map (JSON)")
    common(p)
    p.set_defaults(run=_run("patients", _patients))
    p = kinds.add_parser("labs", help="lab results from HL7 v2 ORU^R01 messages")
    p.add_argument("file")
    common(p)
    p.set_defaults(run=_run("labs", _labs))
    p = kinds.add_parser("email", help=".eml files, folders of them, or mbox files")
    p.add_argument("files", nargs="+")
    p.add_argument("--patient", type=UUID, required=True)
    common(p)
    p.set_defaults(run=_run("email", _email))
    p = kinds.add_parser("sms", help="an SMS Backup & Restore XML export")
    p.add_argument("file")
    p.add_argument("--patient", type=UUID, required=True)
    common(p)
    p.set_defaults(run=_run("sms", _sms))
    p = kinds.add_parser("fhir", help="a FHIR R4 Bulk Data export folder (manifest.json, NDJSON)")
    p.add_argument("folder")
    p.add_argument(
        "--source",
        metavar="URI",
        help="the exporting system's URI (default: the one its manifest names)",
    )
    common(p)
    p.set_defaults(run=_run("fhir", _fhir))
