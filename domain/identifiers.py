"""Identifiers the practice keeps unique (an MRN names one patient), enforced by the store."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, patient_subject


class MrnClaim(Record):
    """One MRN, claimed by one patient. Saved in the same transaction as the patient's
    registration, under a stream id only the practice can compute from the MRN (a keyed hash,
    so the id gives nothing away), it makes the store itself refuse a second patient with the
    same MRN, however two registrations race."""

    @staticmethod
    def create_id(claim_id: UUID) -> UUID:
        return claim_id

    @event("Claimed")
    def __init__(self, claim_id: UUID, patient_id: UUID) -> None:
        self.patient_id = patient_id

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.patient_id),)
