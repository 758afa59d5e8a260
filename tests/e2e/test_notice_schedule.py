"""Issue 18: hold notices go out on the server's own schedule. A risk manager places a hold on
a served ``chartledger serve`` with two worker processes, sending every second, and nobody
asks for the notice: it arrives in the outbox once, is recorded once, and stays once however
many rounds both processes run and however many ``POST /holds/remind`` land on either of them
meanwhile. A delivery that fails (a file where the outbox folder should be) is reported in
``status --local``, ``GET /status`` and the hold report, and tried again until it goes. Both
stores."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from api.cli import main as chartledger
from api.client import Client
from api.hold_schemas import HoldIn, ScopeIn
from tests.e2e.conftest import Practice, events_of_type, served
from tests.e2e.test_clinical import staffed

SENT = "legal_hold.holds:Hold.NoticeSent"
PATIENCE = 30.0  # seconds any one expected change may take on a busy machine
EVERY = "1"  # CHARTLEDGER_NOTICE_EVERY_SECONDS of the served server


def eventually(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + PATIENCE
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"still not {what} after {PATIENCE} s"
        time.sleep(0.1)


def outbox(practice: Practice) -> list[Path]:
    folder = practice.settings.store.home / "outbox"
    return sorted(folder.glob("*.eml")) if folder.is_dir() else []


def notices_line(capsys: pytest.CaptureFixture[str]) -> str:
    """``chartledger status --local``'s line on the hold-notices loop."""
    capsys.readouterr()
    chartledger(["status", "--local"])
    lines = capsys.readouterr().out.strip().splitlines()
    return next(line for line in lines if line.startswith("hold-notices: "))


def place(url: str, risk_token: str | None, custodian: UUID) -> UUID:
    """A risk manager, over the served server, opens a matter and places a hold with a notice
    on the custodian; returns the hold's id."""
    with Client(url, token=risk_token) as risk:
        matter = risk.open_matter("Doe v. Practice", "CV-2026-18")
        hold = risk.place_hold(
            matter.matter_id,
            HoldIn(
                name="Doe records",
                scope=ScopeIn(custodians=[custodian]),
                notice="Preserve every record of the matter.",
            ),
        )
    return hold.hold_id


def test_a_placed_hold_s_notice_goes_out_by_itself_exactly_once_across_two_processes(
    practice: Practice,
) -> None:
    _, casey, risk = staffed(practice)
    casey_id = casey.me().user_id
    env = {**os.environ, "CHARTLEDGER_NOTICE_EVERY_SECONDS": EVERY}
    with served(env) as url:
        hold_id = place(url, risk.token, casey_id)

        # Meanwhile someone asks, on either process, for what is due now: they wait for the
        # sending lock and send only what no round has recorded.
        answers: list[int] = []

        def remind() -> None:
            with Client(url, token=risk.token) as client:
                answers.append(len(client.remind()))

        askers = [threading.Thread(target=remind) for _ in range(4)]
        for asker in askers:
            asker.start()
        for asker in askers:
            asker.join(PATIENCE)

        (eml,) = eventually("in the outbox", lambda: outbox(practice))
        assert str(hold_id) in eml.read_text() and str(casey_id) in eml.name
        eventually("recorded", lambda: events_of_type(practice, SENT))
        time.sleep(5 * float(EVERY))  # rounds of both processes, each looking again
        assert len(outbox(practice)) == 1
        (recorded,) = events_of_type(practice, SENT)
        seen = (recorded.custodian_id, recorded.kind, recorded.version)  # type: ignore[attr-defined]
        assert seen == (casey_id, "notice", 1)
        assert sorted(answers) in ([0, 0, 0, 0], [0, 0, 0, 1])  # the loop's, or one of these
        report = risk.hold_report(hold_id)
        assert [(d.custodian_id, d.kind) for d in report.deliveries] == [(casey_id, "notice")]
        assert report.due == []
        assert [(c.custodian_id, c.delivery) for c in report.custodians] == [(casey_id, "sent")]
        casey.acknowledge_hold(hold_id, 1)
        (custodian,) = risk.hold_report(hold_id).custodians
        assert custodian.delivery == "acknowledged"


def test_a_failing_delivery_is_reported_and_tried_again_until_it_goes(
    practice: Practice, capsys: pytest.CaptureFixture[str]
) -> None:
    owner, casey, risk = staffed(practice)
    casey_id = casey.me().user_id
    folder = practice.settings.store.home / "outbox"
    folder.write_text("a file where the outbox folder should be")
    env = {**os.environ, "CHARTLEDGER_NOTICE_EVERY_SECONDS": EVERY}
    with served(env) as url:
        hold_id = place(url, risk.token, casey_id)

        line = eventually(
            "reported failing",
            lambda: (lambda s: s if "(NoticesNotDelivered)" in s else None)(notices_line(capsys)),
        )
        assert "last failed" in line
        with Client(url, token=owner.token) as owner_remote:
            (loop,) = [s for s in owner_remote.status().loops if s.name == "hold-notices"]
        assert loop.failure == "NoticesNotDelivered" and loop.last_failure is not None
        assert events_of_type(practice, SENT) == []  # nothing recorded as sent that was not

        def failing_on_the_report() -> Any:
            (custodian,) = risk.hold_report(hold_id).custodians
            return custodian if custodian.delivery == "failing" else None

        custodian = eventually("failing on the hold report", failing_on_the_report)
        assert custodian.failure == "OutboxError" and custodian.tries >= 1
        assert custodian.failing_since is not None and custodian.notified_at is None

        folder.unlink()  # the outbox can be written again: the next try delivers
        (eml,) = eventually("delivered", lambda: outbox(practice))
        assert str(casey_id) in eml.name
        eventually("recorded", lambda: events_of_type(practice, SENT))

        def ran_since_failing() -> bool:
            with Client(url, token=owner.token) as owner_remote:
                (loop,) = [s for s in owner_remote.status().loops if s.name == "hold-notices"]
            assert loop.last_failure is not None
            return loop.last_ran is not None and loop.last_ran > loop.last_failure

        eventually("a good round after the failures", ran_since_failing)
        (custodian,) = risk.hold_report(hold_id).custodians
        assert (custodian.delivery, custodian.failure, custodian.tries) == ("sent", None, 0)
        time.sleep(3 * float(EVERY))
        assert len(outbox(practice)) == 1 and len(events_of_type(practice, SENT)) == 1
        assert httpx.get(url + "/health").json()["background"] == "ok"
