"""``chartledger backup --out DIR`` and ``chartledger restore DIR``: the practice's ledger
copied to a store-neutral folder and back, into SQLite or PostgreSQL (docs/BACKUP_FORMAT.md).

Restore rebuilds the read models from the restored log, so they come out as the source's.
Exit status 0: done; 2: refused or misuse, with one line saying why (no PHI); 1: restored,
but the views did not rebuild (run ``chartledger projections rebuild``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.base import user_subject
from events.backup_format import BackupError
from events.backup_restore import restore_backup
from events.backup_write import take_backup
from events.config import StoreConfig
from events.context import acting
from events.keys import KeyError_
from events.ledger import Ledger
from projections.local_users import USER_HELP, UnknownUser, user_id_of
from projections.rebuild import rebuild
from verify.__main__ import progress_printer

EXIT_OK, EXIT_VIEWS, EXIT_REFUSED = 0, 1, 2


def _refused(message: str) -> int:
    print(f"chartledger: error: {message}", file=sys.stderr)
    return EXIT_REFUSED


def _check_owner(ledger: Ledger, who: str) -> UUID:
    try:
        by = user_id_of(ledger, who)
    except UnknownUser as e:
        raise BackupError(str(e)) from None
    try:
        user = ledger.repository.get(by)
    except (AggregateNotFoundError, LookupError):
        raise BackupError(f"no user {by}") from None
    has_role = getattr(user, "has_role", None)
    if not callable(has_role) or not has_role("owner"):
        raise BackupError(f"user {by} is not an active owner: backups are an owner's act")
    return by


def cmd_backup(config: StoreConfig, options: argparse.Namespace) -> int:
    ledger = Ledger(config)
    started = time.perf_counter()
    try:
        by = None
        if options.by is not None:
            by = user_subject(_check_owner(ledger, options.by))
        with acting(by, "cli"):
            manifest = take_backup(
                ledger, options.out, by=by, progress=progress_printer("backing up", unit="events")
            )
    except BackupError as e:
        return _refused(str(e))
    finally:
        ledger.close()
    seconds = time.perf_counter() - started
    print(f"Backed up {manifest.tree_size} events to {options.out} in {seconds:.1f} s")
    print(f"  root:        {manifest.root} at size {manifest.tree_size}")
    print(f"  checkpoint:  size {manifest.newest_checkpoint}")
    print(f"  backup event at position {manifest.backup_event}")
    print(
        "The master key is not in the backup: keep it apart from the backups (see README, "
        "'Backup, restore and the master key'); without it the backup cannot be restored."
    )
    return EXIT_OK


def cmd_restore(config: StoreConfig, options: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        restored = restore_backup(
            config,
            options.folder,
            master_key_file=options.master_key,
            trusted_key=options.trusted_key,
            trusted_witnesses=options.trusted_witness,
            checking=progress_printer("checking backup", unit="events"),
            restoring=progress_printer("restoring", unit="events"),
            verifying=progress_printer("verifying the restored store"),
        )
    except (BackupError, KeyError_) as e:
        return _refused(str(e))
    except FileNotFoundError as e:
        return _refused(f"cannot read {e.filename}")
    ledger = Ledger(config)
    try:
        rebuild(ledger, (), progress_printer("rebuilding views", unit="events"))
    except Exception as e:  # the log is restored and verified; only the views are behind
        print(
            f"chartledger: error: the store is restored and verifies, but its views did not "
            f"rebuild ({type(e).__name__}): run `chartledger projections rebuild`",
            file=sys.stderr,
        )
        return EXIT_VIEWS
    finally:
        ledger.close()
    seconds = time.perf_counter() - started
    print(f"Restored {restored.size} events into {config.display_location()} in {seconds:.1f} s")
    print(f"  root:        {restored.root} at size {restored.size}")
    print(f"  checkpoints: {restored.checkpoints}, data keys: {restored.data_keys}")
    witnessed = restored.witnessed
    print(
        f"  cosignatures: {witnessed.cosignatures} ({witnessed.verified} verified under a known "
        f"witness key), timestamps: {witnessed.timestamps}"
    )
    print("  views rebuilt from the restored log; run `chartledger verify` to open every payload")
    return EXIT_OK


def add_commands(commands: Any) -> None:
    """Add ``backup`` and ``restore`` to chartledger's parser."""
    backup = commands.add_parser("backup", help="copy the ledger to a new folder (no master key)")
    backup.add_argument("--out", type=Path, required=True, help="a new or empty folder")
    backup.add_argument(
        "--by",
        metavar="USER",
        help=f"the owner taking the backup, recorded with its event ({USER_HELP})",
    )
    backup.set_defaults(run=cmd_backup)
    restore = commands.add_parser("restore", help="restore a backup into an empty store")
    restore.add_argument("folder", type=Path, help="the backup folder")
    restore.add_argument(
        "--master-key",
        type=Path,
        help="the practice's master key file (default: the home's keys/master.key)",
    )
    restore.add_argument("--trusted-key", help="key id the backup's key history must start with")
    restore.add_argument(
        "--trusted-witness",
        metavar="VKEY",
        action="append",
        default=[],
        help="a witness's verifier key: its cosignatures in the backup must verify under it "
        "(repeatable; the new home's witnesses.json is read too)",
    )
    restore.set_defaults(run=cmd_restore)
