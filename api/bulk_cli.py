"""``chartledger --server URL bulk-export [--patient ID] [--type T] [--since INSTANT] --out DIR``:
a FHIR Bulk Data export through the thin client (api/bulk_client.py), as the logged-in owner or
risk manager: kick off, show the server's progress on stderr, download every file into the new
folder DIR. Interrupted (Ctrl-C) while the server writes, it cancels the export there.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.bulk_client import BulkData
from api.client import Client
from api.remote_names import Names

EXIT_OK = 0
ClientFor = Callable[[argparse.Namespace], Client]
EXPORT = "PATRQT"  # the purpose an MRN given as --patient is looked up under (as `exports`)


def progress_line(text: str) -> None:
    print(f"bulk export: {text}", file=sys.stderr, flush=True)


def run_bulk_export(client: Client, options: argparse.Namespace) -> int:
    """The command's work on ``client``; its exit status."""
    out = Path(options.out)
    if out.exists():
        raise FileExistsError(f"{out} exists: an export is downloaded into a new folder")
    patient = None
    if options.patient is not None:
        patient = Names(client).patient(options.patient, "--patient", EXPORT)
    types = [t for given in options.type or () for t in given.split(",") if t] or None
    bulk = BulkData(client)
    status_url = bulk.kick_off(patient, types=types, since=options.since)
    progress_line(f"started; status at {status_url}")  # DELETE it to cancel from elsewhere
    try:
        manifest = bulk.wait(status_url, progress_line)
    except KeyboardInterrupt:
        bulk.cancel(status_url)
        print("bulk export: cancelled", file=sys.stderr)
        raise
    bulk.download(manifest, out)
    total = sum(o["count"] for o in manifest["output"])
    print(f"Exported {total} FHIR resources to {out} (manifest.json)")
    return EXIT_OK


def add_bulk_commands(commands: Any, client_for: ClientFor) -> None:
    def run(options: argparse.Namespace) -> int:
        with client_for(options) as client:
            return run_bulk_export(client, options)

    p = commands.add_parser(
        "bulk-export", help="(--server) FHIR Bulk Data export, downloaded into a new folder"
    )
    p.add_argument("--patient", help="an MRN or patient id (default: every patient)")
    p.add_argument(
        "--type", action="append", metavar="TYPE", help="resource types (repeat or comma-list)"
    )
    p.add_argument("--since", metavar="INSTANT", help="only what changed since this FHIR instant")
    p.add_argument("--out", required=True, help="a folder that does not exist yet")
    p.set_defaults(run=run, remote=True)
