"""``POST /backups`` (owners only): what ``chartledger backup`` does, as a job (docs/JOBS.md).

The backup is written into ``<CHARTLEDGER_HOME>/backups/.partial-<id>/`` and renamed to
``backups/<id>/`` once complete, so a failed or cancelled backup leaves no folder that looks
like one (docs/BACKUP_FORMAT.md). Mount the backup medium at ``backups/`` to keep it off the
server's disk; the master key is never in a backup.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from uuid import uuid4

from fastapi.responses import JSONResponse

from api.deps import JobsDep, LedgerDep
from api.jobs import JobOut, JobProgress
from api.roles import Owner
from api.routers.jobs import accepted, started
from api.routing import Router
from domain.base import user_subject
from events.backup_write import take_backup
from events.ledger import Ledger
from events.private_files import private_dir

router = Router(tags=["backups"])


def backups_home(ledger: Ledger) -> Path:
    return ledger.config.home / "backups"


@router.post(
    "/backups",
    status_code=202,
    response_model=JobOut,
    response_class=JSONResponse,
    responses=started("the backup"),
)
def create_backup(principal: Owner, ledger: LedgerDep, jobs: JobsDep) -> JSONResponse:
    """Back the ledger up into a new folder on the server; the job's result names the folder,
    the tree size and root it holds, and the position of its ``Backups.Taken`` event."""
    backup_id = uuid4()
    home = backups_home(ledger)
    private_dir(home)
    partial, done = home / f".partial-{backup_id}", home / str(backup_id)

    def work(progress: JobProgress) -> dict[str, Any]:
        progress.update(0, None, "recording the backup")
        try:
            manifest = take_backup(
                ledger,
                partial,
                by=user_subject(principal.user_id),
                progress=progress.reporter("copying events"),
            )
            partial.rename(done)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return {
            "backup_id": str(backup_id),
            "folder": f"backups/{backup_id}",
            "tree_size": manifest.tree_size,
            "root": manifest.root,
            "newest_checkpoint": manifest.newest_checkpoint,
            "backup_event": manifest.backup_event,
        }

    session = str(principal.session_id)
    return accepted(jobs.start("backup", principal.user_id, work, session=session))
