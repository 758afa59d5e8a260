"""``chartledger --server URL jobs list|show ID|wait ID|cancel ID`` and ``backups create``: the
server's jobs (docs/JOBS.md) from the command line. ``wait`` and ``backups create`` show the
job's progress on stderr (a bar on a terminal, plain lines otherwise) and exit 0 once it
succeeded, 2 with the problem's words if it failed or was cancelled (as any refused request)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

from api.client import Client
from api.progress_bar import job_printer

COMMANDS = frozenset({"jobs", "backups"})
EXIT_OK = 0
ClientFor = Callable[[argparse.Namespace], Client]


def _line(job: dict[str, Any]) -> str:
    total = "?" if job.get("total") is None else job["total"]
    stage = f" ({job['stage']})" if job.get("stage") else ""
    return (
        f"{job['job_id']}  {job['kind']:<10}  {job['state']:<9}  {job['done']}/{total}{stage}  "
        f"started {job['started_at']}"
    )


def _show(job: dict[str, Any]) -> None:
    print(_line(job))
    if job.get("finished_at"):
        print(f"  finished {job['finished_at']}")
    for key in ("result", "error"):
        if job.get(key) is not None:
            print(f"  {key}: {json.dumps(job[key], indent=2, sort_keys=True)}")


def add_commands(commands: Any, client_for: ClientFor) -> None:
    def jobs_list(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            for job in client.jobs():
                print(_line(job))
        return EXIT_OK

    def jobs_show(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            _show(client.job(o.job_id))
        return EXIT_OK

    def jobs_wait(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            job = client.wait_for_job(client.job(o.job_id), on_progress=job_printer())
        _show(job)
        return EXIT_OK

    def jobs_cancel(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            job = client.cancel_job(o.job_id)
        print(_line(job))
        return EXIT_OK

    def backups_create(o: argparse.Namespace) -> int:
        with client_for(o) as client:
            if client.on_progress is None:
                client.on_progress = job_printer()
            backup = client.backup()
        print(
            f"Backed up {backup['tree_size']} events on the server into "
            f"<CHARTLEDGER_HOME>/{backup['folder']} (root {backup['root']}, backup event at "
            f"position {backup['backup_event']}); the master key is not in it"
        )
        return EXIT_OK

    group = commands.add_parser("jobs", help="(--server) long work on the server and its progress")
    actions = group.add_subparsers(dest="action", required=True, parser_class=type(group))
    p = actions.add_parser("list", help="your newest jobs (owners and auditors: everyone's)")
    p.set_defaults(run=jobs_list)
    for name, run, text in (
        ("show", jobs_show, "a job's state, progress, and its result or problem"),
        ("wait", jobs_wait, "follow a job to its end, showing its progress on stderr"),
        ("cancel", jobs_cancel, "cancel a queued or running job (nothing it wrote is kept)"),
    ):
        p = actions.add_parser(name, help=text)
        p.add_argument("job_id", type=UUID)
        p.set_defaults(run=run)
    group = commands.add_parser("backups", help="(--server) backups taken by the server")
    actions = group.add_subparsers(dest="action", required=True, parser_class=type(group))
    p = actions.add_parser(
        "create", help="(owner) back the ledger up on the server, under its home's backups/"
    )
    p.set_defaults(run=backups_create)
