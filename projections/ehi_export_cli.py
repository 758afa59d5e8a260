"""``chartledger export --patient ID | --all --out DIR --by USER``: the EHI export as a local
administration command, acting as a named owner or risk manager (a username or a user id).

Exit status 0: written; 2: misuse or refused, with one line saying why (ids and paths only).
Progress goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.access import PURPOSES_OF_USE
from domain.users import User
from events.config import StoreConfig
from events.ledger import Ledger
from events.sealing import SealError
from projections.ehi_export import (
    DEFAULT_BASE_URL,
    DOCS_PATH,
    ExportError,
    ExportRequest,
    export,
)
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
        base, docs = export_urls(os.environ)
        # The manifest's ``request``: the equivalent Bulk Data kick-off URL (ids only).
        reader = Reader(options.by, options.purpose, "cli")
        request = ExportRequest(
            reader, options.patient, kick_off_url(base, options.patient), documentation_url=docs
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


def export_urls(env: Mapping[str, str]) -> tuple[str, str]:
    """The practice's public base URL (CHARTLEDGER_PUBLIC_BASE_URL, else ``chartledger serve``'s
    default address) and its export documentation's (CHARTLEDGER_EXPORT_DOCS_URL, else the
    copy that server publishes); one that is not an absolute http(s) URL is refused."""
    base = (env.get("CHARTLEDGER_PUBLIC_BASE_URL") or "").strip() or DEFAULT_BASE_URL
    docs = (env.get("CHARTLEDGER_EXPORT_DOCS_URL") or "").strip()
    for name, url in (("CHARTLEDGER_PUBLIC_BASE_URL", base), ("CHARTLEDGER_EXPORT_DOCS_URL", docs)):
        parts = urlsplit(url)
        if url and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise Refused(f"{name} must be an absolute http(s) URL")
    base = base if base.endswith("/") else base + "/"
    return base, docs or base + DOCS_PATH


def kick_off_url(base: str, patient: UUID | None) -> str:
    """The Bulk Data kick-off URL equivalent to an export of ``patient`` (None: everyone)."""
    return f"{base}fhir/$export" if patient is None else f"{base}fhir/Patient/{patient}/$export"
