"""What legal holds and retention refuse, as a small tree under ``HoldError``.

``HoldError`` is a ``domain.errors.ChartError``, so the API's one error table maps these too.
Messages name ids, versions and fields, never names, notice text or anything from a chart.
"""

from __future__ import annotations

from uuid import UUID

from domain.errors import ChartError, InvalidEntry


class HoldError(ChartError):
    """A legal-hold or retention rule refused a command."""


class InvalidHoldEntry(HoldError, InvalidEntry):
    """A field of a matter, hold, notice or policy is missing or malformed."""


class MatterStateError(HoldError):
    """A matter step its state does not allow (closing twice, a hold on a closed matter)."""


class HoldStateError(HoldError):
    """A hold step its state does not allow (changing a released hold, a notice on a silent one)."""


class NoticeStateError(HoldError):
    """An acknowledgement of a superseded or unknown notice version, or by a non-custodian."""


class UnderLegalHold(HoldError):
    """Disposal refused: the patient is in scope of at least one active hold."""

    def __init__(self, patient_id: UUID, hold_ids: list[UUID]) -> None:
        self.patient_id = patient_id
        self.hold_ids = hold_ids
        held = ", ".join(str(h) for h in hold_ids)
        super().__init__(
            f"patient {patient_id} is in scope of {len(hold_ids)} active legal hold(s) ({held}): "
            "nothing of theirs may be disposed of until the last of them is released"
        )


class NotEligible(HoldError):
    """Disposal refused: the retention policy does not yet allow it (or cannot tell)."""


class NothingToDispose(HoldError):
    """The patient has no data key left: their record was already disposed of."""


class DisposalContended(HoldError):
    """Disposal gave up: the patient's keys or record kept changing while it was planned.
    Nothing was disposed of; trying again later is safe."""


class NotAdopted(HoldError):
    """A retention run or disposal named a policy (name and version) the practice never adopted."""


class BelowFloor(HoldError):
    """A policy keeps some record for less than the practice's retention floor (set at init)."""


class PerCallPolicy(InvalidHoldEntry):
    """A request carried a policy's rules instead of naming an adopted policy."""


class ProposalStateError(HoldError):
    """A disposal proposal that is unknown, expired, or already approved."""


class DisposalNotPermitted(HoldError):
    """The two-person rule refused a step: the wrong role, a session without a TOTP code, the
    proposer approving, no owner among the two, or a release of someone else's hold."""
