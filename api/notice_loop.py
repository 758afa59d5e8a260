"""Hold notices on the server's own schedule: every ``CHARTLEDGER_NOTICE_EVERY_SECONDS`` (60 by
default) one server process sends the notices, reminders and escalations due then
(``legal_hold/notices.py``), each hold's reminders by its own ``reminder_days`` and
``escalation_days`` (``legal_hold/custodians.py``).

One process sends: the leader (``hold-notices-leader.lock`` in the practice home on SQLite, an
advisory lock in the store on PostgreSQL: ``events/leadership.py``), as one follows the views;
the others look again every few seconds, so a successor takes over when it stops. What keeps
a notice from going twice is not that choice but the ledger: each round takes the practice's
sending lock (on PostgreSQL a database lock too, for servers on other machines
sharing the store), which ``holds remind`` takes as well, and reads under it what was sent.

A delivery that fails (SMTP refusing, an unwritable outbox) does not stop the others; the round
then fails with ``NoticesNotDelivered``, which the heartbeat (``hold-notices`` in ``GET /status``
and ``chartledger status --local``) shows, and the next round, after a growing wait, tries
again what is still due. Which deliveries are failing is kept for the hold report
(``legal_hold/notice_failures.py``).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from api.status import NOTICES
from events.background import Heartbeat, keep_running
from events.context import acting
from events.leadership import lead_when_chosen
from events.ledger import Ledger
from legal_hold.notice_failures import record_round
from legal_hold.notices import NoticesNotDelivered, outbox_from_env, send_due_alone

LEADER = "hold-notices-leader"  # the lock file's name in the home (SQLite), or the advisory lock's


def notice_heartbeat(ledger: Ledger, every: float) -> Heartbeat:
    """Late once a round is missed (two cadences), with room for a slow SMTP server (each
    message may take its 30 s timeout); while rounds fail they come at most 4 cadences apart."""
    return Heartbeat(ledger.config.home, NOTICES, every, 2 * every + 60.0, ledger.db)


def send_notices_when_chosen(ledger: Ledger, stop: threading.Event, every: float) -> None:
    """Run until ``stop``: the leader's rounds, or waiting to become the leader."""
    home = ledger.config.home
    heartbeat = notice_heartbeat(ledger, every)

    def one_round() -> None:
        outbox = outbox_from_env(home)  # read each round: an address book edited is used
        at = datetime.now(UTC)
        try:
            # No user sends these: the events name the schedule as their session instead.
            with acting(None, NOTICES):
                send_due_alone(ledger, outbox, at=at, keep_going=True)
        except NoticesNotDelivered as e:
            record_round(ledger, e.failed, at=at)  # for the hold report: who is not reached
            raise
        record_round(ledger, [], at=at)

    def send_while_leading(step_down: threading.Event) -> None:
        keep_running(
            "hold notices: sending", one_round, step_down, every, 4 * every, heartbeat, at_once=True
        )

    lead_when_chosen(ledger.config, LEADER, stop, send_while_leading)
