"""A patient's request to amend their record (HIPAA, 45 CFR 164.526).

Requested, then accepted once (naming the addendum or correction made) or denied once (with the
basis of 164.526(a)(2) and the written denial). After a denial the patient may file a statement
of disagreement (164.526(d)(1)(ii)), and the practice may then file a rebuttal (164.526(d)(2)).
The request, the decision, the disagreement and the rebuttal stay linked in one stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, patient_subject
from domain.checks import choice, identifier, moment, optional_text, text
from domain.checks import text as _text
from domain.errors import AmendmentStateError

TARGET_TYPES = (
    "note",
    "lab_result",
    "problem",
    "medication",
    "allergy",
    "vital_sign",
    "patient",
    "document",
)
DENIAL_BASES = (
    "not_created_by_covered_entity",  # 164.526(a)(2)(i)
    "not_in_designated_record_set",  # 164.526(a)(2)(ii)
    "not_available_for_inspection",  # 164.526(a)(2)(iii), under 164.524
    "accurate_and_complete",  # 164.526(a)(2)(iv)
)


class AmendmentRequest(Record):
    @classmethod
    def request(
        cls,
        *,
        patient_id: UUID,
        target_type: str,
        target_id: UUID,
        requested_change: str,
        reason: str,
        received_at: datetime,
    ) -> AmendmentRequest:
        return cls(
            patient_id=identifier(patient_id, "patient_id"),
            target_type=choice(target_type, "target_type", TARGET_TYPES),
            target_id=identifier(target_id, "target_id"),
            requested_change=text(requested_change, "requested_change"),
            reason=text(reason, "reason"),
            received_at=moment(received_at, "received_at"),
        )

    @event("Requested")
    def __init__(
        self,
        patient_id: UUID,
        target_type: str,
        target_id: UUID,
        requested_change: str,
        reason: str,
        received_at: datetime,
    ) -> None:
        self.patient_id = patient_id
        self.target_type = target_type
        self.target_id = target_id
        self.requested_change = requested_change
        self.reason = reason
        self.received_at = received_at
        self.status = "requested"
        self.decided_by: UUID | None = None
        self.decided_at: datetime | None = None
        self.amendment_id: UUID | None = None
        self.basis: str | None = None
        self.denial_text: str | None = None
        self.disagreement: str | None = None
        self.rebuttal: str | None = None

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.patient_id),)

    def accept(
        self, *, decided_by: UUID, at: datetime, amendment_id: UUID, note: str | None = None
    ) -> None:
        """Accept, linking the amendment made: an ``addendum_id`` or a lab ``correction_id``."""
        self._check_undecided()
        self._accept(
            decided_by=identifier(decided_by, "decided_by"),
            decided_at=moment(at, "at"),
            amendment_id=identifier(amendment_id, "amendment_id"),
            note=optional_text(note, "note"),
        )

    @event("Accepted")
    def _accept(
        self, decided_by: UUID, decided_at: datetime, amendment_id: UUID, note: str | None
    ) -> None:
        self.status = "accepted"
        self.decided_by = decided_by
        self.decided_at = decided_at
        self.amendment_id = amendment_id

    def deny(self, *, decided_by: UUID, at: datetime, basis: str, denial_text: str) -> None:
        self._check_undecided()
        self._deny(
            decided_by=identifier(decided_by, "decided_by"),
            decided_at=moment(at, "at"),
            basis=choice(basis, "basis", DENIAL_BASES),
            denial_text=text(denial_text, "denial_text"),
        )

    @event("Denied")
    def _deny(self, decided_by: UUID, decided_at: datetime, basis: str, denial_text: str) -> None:
        self.status = "denied"
        self.decided_by = decided_by
        self.decided_at = decided_at
        self.basis = basis
        self.denial_text = denial_text

    def file_disagreement(self, *, statement: str, at: datetime) -> None:
        if self.status != "denied":
            raise AmendmentStateError(
                f"amendment request {self.id}: a disagreement follows a denial only"
            )
        if self.disagreement is not None:
            raise AmendmentStateError(f"amendment request {self.id} already has a disagreement")
        self._file_disagreement(statement=text(statement, "statement"), filed_at=moment(at, "at"))

    @event("DisagreementFiled")
    def _file_disagreement(self, statement: str, filed_at: datetime) -> None:
        self.disagreement = statement

    def file_rebuttal(self, *, author_id: UUID, text: str, at: datetime) -> None:
        if self.disagreement is None:
            raise AmendmentStateError(
                f"amendment request {self.id}: a rebuttal follows a disagreement only"
            )
        if self.rebuttal is not None:
            raise AmendmentStateError(f"amendment request {self.id} already has a rebuttal")
        self._file_rebuttal(
            author_id=identifier(author_id, "author_id"),
            text=_text(text, "text"),
            filed_at=moment(at, "at"),
        )

    @event("RebuttalFiled")
    def _file_rebuttal(self, author_id: UUID, text: str, filed_at: datetime) -> None:
        self.rebuttal = text

    def _check_undecided(self) -> None:
        if self.status != "requested":
            raise AmendmentStateError(f"amendment request {self.id} is already {self.status}")
