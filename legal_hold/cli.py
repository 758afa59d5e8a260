"""``chartledger matters|holds|retention ...``: legal holds as local administration commands.

Retention here is read-only (the floor, adopted policies, a run under one of them): adopting a
policy and disposing of a record need people signed in with TOTP codes, so they are done over
the API (``chartledger --server URL policies|disposals ...``).

Each command that changes something names the acting user with ``--by`` (a username or a
user id; usernames, here and in ``--custodian``, are looked up in the local store), who must be an
active risk manager (as over HTTP: owners too need the role, which an owner can grant, in the
open); its events carry that user as their actor. Exit status 0: done; 2: misuse or refused,
with one line saying why (ids only, never a name or chart content).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.base import user_subject
from domain.errors import ChartError
from events.config import StoreConfig
from events.context import acting
from events.ledger import Ledger
from legal_hold import holds as lh
from legal_hold.custodians import report
from legal_hold.hold_releases import release as release_hold
from legal_hold.holds import Scope
from legal_hold.notice_failures import delivery_states, failing
from legal_hold.notices import outbox_from_env, send_due_alone
from legal_hold.policies import adopted_policy, load_book
from legal_hold.retention import disposal_run
from projections.local_users import USER_HELP, resolve_people

EXIT_OK, EXIT_REFUSED = 0, 2
ALLOWED_ROLES = ("risk_manager",)


def _now() -> datetime:
    return datetime.now(UTC)


def _acting_user(ledger: Ledger, by: UUID) -> None:
    try:
        user = ledger.repository.get(by)
    except (AggregateNotFoundError, LookupError):
        raise ChartError(f"no user {by}") from None
    roles = getattr(user, "roles", ())
    if not getattr(user, "active", False) or not any(r in roles for r in ALLOWED_ROLES):
        raise ChartError(f"user {by} is not an active risk manager")


def _run(needs_by: bool, body: Callable[[Ledger, argparse.Namespace], int]) -> Any:
    def run(config: StoreConfig, options: argparse.Namespace) -> int:
        ledger = Ledger(config)
        try:
            resolve_people(ledger, options)
            if needs_by:
                _acting_user(ledger, options.by)
                with acting(user_subject(options.by), "cli"):
                    return body(ledger, options)
            return body(ledger, options)
        except (ChartError, AggregateNotFoundError) as e:
            print(f"chartledger: refused: {e}", file=sys.stderr)
            return EXIT_REFUSED
        finally:
            ledger.close()

    return run


def _scope(options: argparse.Namespace) -> Scope:
    return Scope.of(
        patients=options.patient,
        custodians=options.custodian,
        all_patients=options.all_patients,
        start=options.start,
        end=options.end,
        categories=options.category,
    )


def matters_open(ledger: Ledger, o: argparse.Namespace) -> int:
    matter = lh.open_matter(ledger, name=o.name, number=o.number, forum=o.forum, at=_now(), by=o.by)
    print(f"Opened matter {matter.id}")
    return EXIT_OK


def matters_close(ledger: Ledger, o: argparse.Namespace) -> int:
    lh.close_matter(ledger, o.matter, reason=o.reason, at=_now(), by=o.by)
    print(f"Closed matter {o.matter}")
    return EXIT_OK


def matters_list(ledger: Ledger, o: argparse.Namespace) -> int:
    for matter in lh.matters(ledger):
        state = "open" if matter.is_open else f"closed {matter.closed_at}"
        print(f"{matter.id}  {matter.number}  {state}")
    return EXIT_OK


def holds_place(ledger: Ledger, o: argparse.Namespace) -> int:
    hold = lh.place_hold(
        ledger,
        matter_id=o.matter,
        name=o.name,
        scope=_scope(o),
        at=_now(),
        by=o.by,
        silent=o.silent,
        reminder_days=o.reminder_days,
        escalation_days=o.escalation_days,
        notice=o.notice,
    )
    print(f"Placed hold {hold.id}" + (" (silent)" if hold.silent else ""))
    return EXIT_OK


def holds_notice(ledger: Ledger, o: argparse.Namespace) -> int:
    version = lh.issue_notice(ledger, o.hold, text=o.text, at=_now(), by=o.by)
    print(f"Issued notice version {version} of hold {o.hold}")
    return EXIT_OK


def holds_ack(ledger: Ledger, o: argparse.Namespace) -> int:
    with acting(user_subject(o.custodian), "cli"):
        lh.acknowledge(ledger, o.hold, custodian_id=o.custodian, version=o.version, at=_now())
    print(f"Acknowledged notice version {o.version} of hold {o.hold}")
    return EXIT_OK


def holds_release(ledger: Ledger, o: argparse.Namespace) -> int:
    # As over HTTP: only whoever placed the hold (or an owner) releases it; a refusal is recorded.
    hold = release_hold(
        ledger,
        o.hold,
        by=o.by,
        roles=getattr(ledger.repository.get(o.by), "roles", ()),
        reason=o.reason,
        at=_now(),
        patients=o.patient,
        custodians=o.custodian,
    )
    print(f"{'Released' if not hold.active else 'Partly released'} hold {o.hold}")
    return EXIT_OK


def holds_remind(ledger: Ledger, o: argparse.Namespace) -> int:
    sent = send_due_alone(ledger, outbox_from_env(ledger.config.home), at=_now())
    for item in sent:
        d = item.due
        print(f"sent {d.kind} v{d.version} of hold {d.hold_id} about custodian {d.custodian_id}")
    print(f"{len(sent)} sent")
    return EXIT_OK


def holds_report(ledger: Ledger, o: argparse.Namespace) -> int:
    seen = report(lh.get_hold(ledger, o.hold), at=_now())
    print(
        f"hold {seen.hold_id} on matter {seen.matter_id}: {'active' if seen.active else 'released'}"
    )
    for change in seen.scope_history:
        scope = change["scope"]
        print(
            f"  {change['at']}  {change['change']} by {change['by']}: "
            f"{len(scope['patients'])} patient(s), {len(scope['custodians'])} custodian(s)"
        )
    states = delivery_states(
        seen.hold_id,
        seen.custodians,
        seen.due,
        failing(ledger),
        sends=seen.active and not seen.silent,
    )
    for custodian, state in zip(seen.custodians, states, strict=True):
        failing_now = (
            f" since {state.failing_since} ({state.failure}, {state.tries} tries)"
            if state.state == "failing"
            else ""
        )
        print(
            f"  custodian {custodian.custodian_id}: version {custodian.version}, notified "
            f"{custodian.notified_at}, acknowledged {custodian.acknowledged_at}; "
            f"delivery {state.state}{failing_now}"
        )
    print(f"  outstanding: {len(seen.outstanding)}; due now: {len(seen.due)}")
    return EXIT_OK


def retention_run(ledger: Ledger, o: argparse.Namespace) -> int:
    policy = adopted_policy(ledger, o.policy, o.version, at=_now())
    for c in disposal_run(ledger, policy, at=_now()):
        state = "disposable" if c.disposable else ("held" if c.held_by else "kept")
        print(f"{c.patient_id}  {state}  kept until {c.retain_until}")
    return EXIT_OK


def retention_policies(ledger: Ledger, o: argparse.Namespace) -> int:
    book = load_book(ledger, at=_now())
    f = book.floor
    print(
        f"floor: adults {f.adult_years}y, minors {f.minor_years}y past majority at {f.majority_age}"
    )
    for a in book.adoptions:
        rules = ", ".join(
            f"{c} {r.adult_years}y/{r.minor_years}y" for c, r in sorted(a.policy.rules.items())
        )
        print(
            f"{a.policy.label}: majority {a.policy.majority_age}; {rules}; adopted by "
            f"{a.adopted_by} at {a.adopted_at}"
        )
    return EXIT_OK


def add_commands(commands: Any, skip: tuple[str, ...] = ()) -> None:
    """Add the ``matters``, ``holds`` and ``retention`` commands to chartledger's parser (but
    those in ``skip``: with --server, ``matters`` and ``holds`` are api/remote_legal_cli.py's)."""

    def by(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--by", metavar="USER", required=True, help=f"the acting risk manager ({USER_HELP})"
        )

    def scope(p: argparse.ArgumentParser, full: bool) -> None:
        p.add_argument("--patient", type=UUID, action="append", default=[])
        p.add_argument("--custodian", metavar="USER", action="append", default=[], help=USER_HELP)
        if full:
            p.add_argument("--all-patients", action="store_true")
            p.add_argument("--start", type=date.fromisoformat)
            p.add_argument("--end", type=date.fromisoformat)
            p.add_argument("--category", action="append", default=[])

    def policy(p: argparse.ArgumentParser) -> None:
        p.add_argument("--policy", required=True, help="an adopted policy's name")
        p.add_argument("--version", type=int, required=True, help="its adopted version")

    if "matters" not in skip:
        matters = commands.add_parser("matters", help="legal matters")
        m = matters.add_subparsers(dest="action", required=True)
        p = m.add_parser("open", help="open a matter")
        p.add_argument("--name", required=True)
        p.add_argument("--number", required=True)
        p.add_argument("--forum")
        by(p)
        p.set_defaults(run=_run(True, matters_open))
        p = m.add_parser("close", help="close a matter whose holds are all released")
        p.add_argument("matter", type=UUID)
        p.add_argument("--reason", required=True)
        by(p)
        p.set_defaults(run=_run(True, matters_close))
        p = m.add_parser("list", help="every matter")
        p.set_defaults(run=_run(False, matters_list))

    if "holds" not in skip:
        holds = commands.add_parser("holds", help="legal holds, notices and reminders")
        h = holds.add_subparsers(dest="action", required=True)
        p = h.add_parser("place", help="place a hold on a matter")
        p.add_argument("matter", type=UUID)
        p.add_argument("--name", required=True)
        scope(p, full=True)
        p.add_argument("--silent", action="store_true", help="send no notices")
        p.add_argument("--notice", help="the notice's text (not for silent holds)")
        p.add_argument("--reminder-days", type=int, default=7)
        p.add_argument("--escalation-days", type=int, default=14)
        by(p)
        p.set_defaults(run=_run(True, holds_place))
        p = h.add_parser("notice", help="issue or re-issue a hold's notice")
        p.add_argument("hold", type=UUID)
        p.add_argument("--text", required=True)
        by(p)
        p.set_defaults(run=_run(True, holds_notice))
        p = h.add_parser("ack", help="record a custodian's acknowledgement")
        p.add_argument("hold", type=UUID)
        p.add_argument("--custodian", metavar="USER", required=True, help=USER_HELP)
        p.add_argument("--version", type=int, required=True)
        p.set_defaults(run=_run(False, holds_ack))
        p = h.add_parser("release", help="release a hold, or only the patients/custodians named")
        p.add_argument("hold", type=UUID)
        p.add_argument("--reason", required=True)
        scope(p, full=False)
        by(p)
        p.set_defaults(run=_run(True, holds_release))
        p = h.add_parser("remind", help="send every notice, reminder and escalation due now")
        p.set_defaults(run=_run(False, holds_remind))
        p = h.add_parser("report", help="a hold's scope over time, notices and acknowledgements")
        p.add_argument("hold", type=UUID)
        p.set_defaults(run=_run(False, holds_report))

    retention = commands.add_parser("retention", help="retention runs and disposal")
    r = retention.add_subparsers(dest="action", required=True)
    p = r.add_parser("run", help="list each patient's retention and whether it is disposable")
    policy(p)
    p.set_defaults(run=_run(False, retention_run))
    p = r.add_parser("policies", help="the retention floor and every adopted policy")
    p.set_defaults(run=_run(False, retention_policies))
    # No local disposal: it takes two people signed in with TOTP codes, over the API
    # (chartledger --server URL disposals propose|approve).
