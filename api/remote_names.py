"""People, patients and matters named on the remote command line as a person would name them:
a username, an MRN, a matter's number, or still an id. Each is resolved through the API
before anything is written, and a name that matches nothing is misuse (exit 2, one line).

Looking someone up needs the API's own permission: usernames come from ``GET /users`` (owners,
user administrators, risk managers and auditors), MRNs from the patient search (clinicians,
staff, risk managers, owners, which records the search). A caller without it is told to give
the id instead, before any request that the server would refuse and record as a refused
attempt.
"""

from __future__ import annotations

from uuid import UUID

from api.cli_errors import UsageError
from api.client import Client

# Roles whose callers may list users, and search patients (api/roles.py).
USER_LISTERS = ("owner", "user_admin", "risk_manager", "auditor")
PATIENT_SEARCHERS = ("owner", "clinician", "staff", "risk_manager")


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def _may(client: Client, roles: tuple[str, ...], what: str, option: str) -> None:
    held = client.me().roles
    if not any(r in held for r in roles):
        raise UsageError(
            f"{option}: your roles cannot look up {what} (that needs {' or '.join(roles)}); "
            "give the id instead"
        )


class Names:
    """Resolves names through one client, asking the server at most once per kind."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._users: dict[str, UUID] | None = None

    def user(self, who: str, option: str = "user") -> UUID:
        """A user's id from their id or username (case-insensitive, as logins are)."""
        found = _uuid(who)
        if found is not None:
            return found
        if self._users is None:
            _may(self.client, USER_LISTERS, "usernames", option)
            self._users = {u.username.casefold(): u.user_id for u in self.client.users()}
        try:
            return self._users[who.casefold()]
        except KeyError:
            raise UsageError(f"{option}: no user with the username {who!r}") from None

    def users(self, names: list[str], option: str) -> list[UUID]:
        return [self.user(n, option) for n in names]

    def patient(self, which: str, option: str = "patient", purpose: str = "TREAT") -> UUID:
        """A patient's id from their id or MRN (the search is recorded, under ``purpose``)."""
        found = _uuid(which)
        if found is not None:
            return found
        _may(self.client, PATIENT_SEARCHERS, "patients by MRN", option)
        matches = [
            p.patient_id
            for p in self.client.search_patients(which, purpose)
            if p.mrn.casefold() == which.casefold()
        ]
        if len(matches) != 1:
            # An MRN is PHI: the refusal does not repeat it.
            raise UsageError(f"{option}: no patient has the MRN given")
        return matches[0]

    def patients(self, names: list[str], option: str, purpose: str = "TREAT") -> list[UUID]:
        return [self.patient(n, option, purpose) for n in names]

    def matter(self, which: str) -> UUID:
        """A matter's id from its id or its number (e.g. CV-2026-17)."""
        found = _uuid(which)
        if found is not None:
            return found
        matches = [m.matter_id for m in self.client.matters() if m.number == which]
        if len(matches) != 1:
            raise UsageError(f"matter: no matter numbered {which!r}")
        return matches[0]
