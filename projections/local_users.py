"""Users named on the local command line: ``--by owner`` as well as ``--by <user id>``.

A username is looked up in the practice's own store (its account's id is derived from the
username, ``domain.credentials.account_id``), so local commands need no server. The error names
the username the operator typed, never a patient.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.credentials import Account, account_id
from domain.errors import ChartError
from events.ledger import Ledger


class UnknownUser(ChartError):
    """No user has that username in this practice's store."""


def user_id_of(ledger: Ledger, who: str | UUID) -> UUID:
    """The id of the user ``who`` names: a user id as given, else a username's account's user."""
    if isinstance(who, UUID):
        return who
    try:
        return UUID(who)
    except ValueError:
        pass
    try:
        account = ledger.repository.get(account_id(who))
    except (AggregateNotFoundError, LookupError):
        raise UnknownUser(f"no user with the username {who!r}") from None
    if not isinstance(account, Account):
        raise UnknownUser(f"no user with the username {who!r}")
    return UUID(str(account.user_id))


def user_ids_of(ledger: Ledger, names: list[str]) -> list[UUID]:
    return [user_id_of(ledger, n) for n in names]


# The options by which local commands name people (``--by``, ``--custodian``).
PEOPLE_OPTIONS = ("by", "custodian")


def resolve_people(ledger: Ledger, options: object) -> None:
    """Turn each username in the options naming people into that user's id, in place, before a
    command runs; an unknown username is ``UnknownUser`` and nothing is done."""
    for name in PEOPLE_OPTIONS:
        given = getattr(options, name, None)
        if isinstance(given, list):
            setattr(options, name, user_ids_of(ledger, given))
        elif given is not None:
            setattr(options, name, user_id_of(ledger, given))


USER_HELP = "a username or user id"
