"""``chartledger export --patient ID | --all --out DIR --by USER``: the EHI export as a local
administration command, acting as a named owner or risk manager (a username or a user id).

Exit status 0: written; 2: misuse or refused, with one line saying why (ids and paths only).
Progress goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.access import PURPOSES_OF_USE
from domain.users import User
from events.config import StoreConfig
from events.ledger import Ledger
from events.sealing import SealError
from projections.ehi_export import ExportError, ExportRequest, export
from projections.local_users import USER_HELP, UnknownUser, resolve_people
from projections.reads import PatientNotFound, Reader
from verify.__main__ import progress_printer

EXIT_OK, EXIT_REFUSED = 0, 2
ALLOWED_ROLES = ("owner", "risk_manager")


class Refused(Exception):
    """The acting user may not export."""


def check_exporter(ledger: Ledger, user_id: UUID) -> None:
    try:
        user = ledger.repository.get(user_id)
    except (AggregateNotFoundError, LookupError):
        raise Refused(f"no user {user_id}") from None
    roles = getattr(user, "roles", ())
    if not isinstance(user, User) or not user.active or not any(r in roles for r in ALLOWED_ROLES):
        raise Refused(f"user {user_id} is not an active owner or risk manager")


def run(config: StoreConfig, options: argparse.Namespace) -> int:
    out = Path(options.out)
    ledger = Ledger(config)
    try:
        resolve_people(ledger, options)
        check_exporter(ledger, options.by)
        # The manifest's ``request``: ids and paths only, never PHI.
        command = "chartledger export " + shlex.join(_command_line(options))
        request = ExportRequest(
            Reader(options.by, options.purpose, "cli"), options.patient, command
        )
        label = "exporting " + ("every patient" if options.patient is None else "one patient")
        manifest = export(ledger, request, out, progress_printer(label, unit="events"))
    except (Refused, UnknownUser, ExportError, PatientNotFound) as e:
        print(f"chartledger: refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except SealError as e:
        print(f"chartledger: error: the store fails its checks: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except OSError as e:
        print(f"chartledger: error: cannot write {out}: {e.strerror}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        ledger.close()
    total = sum(o["count"] for o in manifest["output"])
    print(f"Exported {total} FHIR resources to {out} (manifest.json)")
    return EXIT_OK


def add_commands(commands: Any) -> None:
    """Add ``export`` to chartledger's parser."""
    p = commands.add_parser("export", help="EHI export: FHIR R4 NDJSON and the native records")
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument("--patient", type=UUID, help="export this patient's record")
    scope.add_argument("--all", action="store_true", help="export every patient's record")
    p.add_argument("--out", required=True, help="a folder that does not exist yet")
    p.add_argument(
        "--by",
        metavar="USER",
        required=True,
        help=f"the acting owner or risk manager ({USER_HELP})",
    )
    p.add_argument("--purpose", choices=PURPOSES_OF_USE, default="PATRQT")
    p.set_defaults(run=run)


def _command_line(options: argparse.Namespace) -> list[str]:
    scope = ["--all"] if options.all else ["--patient", str(options.patient)]
    return [
        *scope,
        "--out",
        str(options.out),
        "--by",
        str(options.by),
        "--purpose",
        options.purpose,
    ]
