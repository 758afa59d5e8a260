"""``chartledger produce``: write a matter's e-discovery bundle, acting as a named risk manager.

Exit status 0: produced; 2: misuse or refused, with one line saying why (ids and positions
only). Progress goes to stderr on a terminal.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from uuid import UUID

from events.ledger import Ledger
from legal_hold.cli import EXIT_OK, _run
from legal_hold.production import produce
from projections.local_users import USER_HELP
from verify.__main__ import progress_printer


def withheld_item(text: str) -> tuple[int, str]:
    """``POSITION=CLAIM``, e.g. ``1042=attorney-client``."""
    position, sep, claim = text.partition("=")
    if not sep or not position.isdigit() or not claim.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not POSITION=CLAIM")
    return int(position), claim.strip()


def cmd_produce(ledger: Ledger, o: argparse.Namespace) -> int:
    produced = produce(
        ledger,
        o.matter,
        Path(o.out),
        by=o.by,
        withhold=dict(o.withhold),
        since=o.since_checkpoint,
        progress=progress_printer("producing", unit="events"),
        review_progress=progress_printer("review files", unit="documents"),
    )
    print(
        f"Produced {produced.path}: {produced.events} events of {len(produced.subjects)} "
        f"subjects, checkpoint size {produced.checkpoint_size}, SHA-256 {produced.sha256} "
        f"(production {produced.production_id})"
    )
    return EXIT_OK


def add_commands(commands: Any) -> None:
    """Add ``produce`` to chartledger's parser."""
    p = commands.add_parser("produce", help="write a matter's e-discovery bundle")
    p.add_argument("--matter", type=UUID, required=True, help="the matter's id")
    p.add_argument("--out", required=True, help="the bundle file to write (must not exist)")
    p.add_argument(
        "--by", metavar="USER", required=True, help=f"the producing risk manager ({USER_HELP})"
    )
    p.add_argument(
        "--withhold",
        type=withheld_item,
        action="append",
        default=[],
        metavar="POSITION=CLAIM",
        help="withhold the event at POSITION as privileged (repeatable)",
    )
    p.add_argument(
        "--since-checkpoint",
        type=int,
        metavar="SIZE",
        help="prove the log grew from the checkpoint of this size (one the other side holds)",
    )
    p.set_defaults(run=_run(True, cmd_produce))
