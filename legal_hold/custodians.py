"""Custodians of a hold: what each was sent, what each acknowledged, and what is due at time T.

``due(hold, at=T)`` is a pure function of the hold's recorded deliveries and acknowledgements and
the time passed in; nothing here reads the clock or sleeps. For the current notice version:

- a custodian who was never sent it is due the notice;
- a custodian who has not acknowledged it is due a reminder ``reminder_days`` after the last
  notice or reminder of that version, and again every ``reminder_days`` after that;
- once ``escalation_days`` have passed since the notice of that version went to a custodian who
  still has not acknowledged it, an escalation (to the hold's escalation contact, the user who
  placed it) is due, once per version.

A re-issued notice starts over: every custodian is due the new version and must acknowledge it.
Silent and released holds have nothing due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from legal_hold.holds import Hold


@dataclass(frozen=True)
class Due:
    hold_id: UUID
    custodian_id: UUID
    version: int
    kind: str  # notice, reminder, escalation
    since: datetime  # when it fell due


@dataclass(frozen=True)
class CustodianStatus:
    custodian_id: UUID
    version: int | None  # the current notice version
    notified_at: datetime | None  # when the current version was first sent to them
    acknowledged_at: datetime | None  # when they acknowledged the current version
    reminders: int  # reminders of the current version sent
    escalated_at: datetime | None

    @property
    def outstanding(self) -> bool:
        return self.version is not None and self.acknowledged_at is None


def status(hold: Hold) -> list[CustodianStatus]:
    """Each current custodian's standing on the current notice version."""
    version = hold.current_version
    found = []
    for custodian in hold.scope.custodians:
        sent = [d for d in hold.deliveries if d.custodian_id == custodian and d.version == version]
        notices = [d.at for d in sent if d.kind == "notice"]
        escalations = [d.at for d in sent if d.kind == "escalation"]
        found.append(
            CustodianStatus(
                custodian_id=custodian,
                version=version,
                notified_at=min(notices) if notices else None,
                acknowledged_at=None
                if version is None
                else hold.acknowledged_at(custodian, version),
                reminders=sum(1 for d in sent if d.kind == "reminder"),
                escalated_at=min(escalations) if escalations else None,
            )
        )
    return found


def due(hold: Hold, *, at: datetime) -> list[Due]:
    """What should be sent for ``hold`` at time ``at`` (and has not been)."""
    version = hold.current_version
    if not hold.active or hold.silent or version is None:
        return []
    if at < hold.notices[-1].at:
        return []
    remind_every = timedelta(days=hold.reminder_days)
    escalate_after = timedelta(days=hold.escalation_days)
    found: list[Due] = []
    for custodian in status(hold):
        if custodian.acknowledged_at is not None:
            continue
        if custodian.notified_at is None:
            found.append(
                Due(hold.id, custodian.custodian_id, version, "notice", hold.notices[-1].at)
            )
            continue
        last_contact = max(
            d.at
            for d in hold.deliveries
            if d.custodian_id == custodian.custodian_id
            and d.version == version
            and d.kind in ("notice", "reminder")
        )
        if at >= last_contact + remind_every:
            found.append(
                Due(
                    hold.id,
                    custodian.custodian_id,
                    version,
                    "reminder",
                    last_contact + remind_every,
                )
            )
        escalate_at = custodian.notified_at + escalate_after
        if custodian.escalated_at is None and at >= escalate_at:
            found.append(Due(hold.id, custodian.custodian_id, version, "escalation", escalate_at))
    return found


@dataclass(frozen=True)
class HoldReport:
    """A hold's scope and its changes over time, who was sent what and when, who acknowledged
    which version when, and what is outstanding (and due) at the time asked about."""

    hold_id: UUID
    matter_id: UUID
    name: str
    silent: bool
    active: bool
    placed_at: datetime
    released_at: datetime | None
    release_reason: str | None
    scope_history: list[dict[str, Any]]
    notices: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    acknowledgements: list[dict[str, Any]]
    custodians: list[CustodianStatus]
    outstanding: list[UUID]
    due: list[Due]


def report(hold: Hold, *, at: datetime) -> HoldReport:
    history = [
        {
            "at": change.at,
            "by": change.by,
            "change": change.change,
            "reason": change.reason,
            "scope": change.scope.to_payload(),
        }
        for change in hold.history
    ]
    custodians = status(hold)
    return HoldReport(
        hold_id=hold.id,
        matter_id=hold.matter_id,
        name=hold.name,
        silent=hold.silent,
        active=hold.active,
        placed_at=hold.placed_at,
        released_at=hold.released_at,
        release_reason=hold.release_reason,
        scope_history=history,
        notices=[{"version": n.version, "at": n.at, "by": n.by} for n in hold.notices],
        deliveries=[
            {"custodian_id": d.custodian_id, "version": d.version, "kind": d.kind, "at": d.at}
            for d in hold.deliveries
        ],
        acknowledgements=[
            {"custodian_id": a.custodian_id, "version": a.version, "at": a.at}
            for a in hold.acknowledgements
        ],
        custodians=custodians,
        outstanding=[c.custodian_id for c in custodians if c.outstanding] if hold.active else [],
        due=due(hold, at=at),
    )
