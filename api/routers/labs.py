"""Lab results: recorded exactly as received (a decimal string and its UCUM unit), and
converted by the table, each conversion its own event beside the original value."""

from __future__ import annotations

from uuid import UUID

from fastapi import status

from api.auth import load
from api.care import add_to_chart, chart_access
from api.deps import LedgerDep, RunnerDep
from api.roles import Clinician
from api.routing import Router
from api.schemas import ConversionIn, ConversionOut, LabIn, LabOut
from domain.labs import LabResult
from domain.quantities import Quantity

router = Router(prefix="/labs", tags=["labs"])


def _out(lab: LabResult) -> LabOut:
    return LabOut(
        lab_id=lab.id,
        patient_id=lab.patient_id,
        value=lab.value,
        unit=lab.unit,
        value_version=lab.value_version,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def record(body: LabIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep) -> LabOut:
    source = body.source_message if body.source_message is not None else body.model_dump_json()
    lab = add_to_chart(
        ledger,
        runner,
        principal,
        body.patient_id,
        lambda: LabResult.receive(
            patient_id=body.patient_id,
            loinc_code=body.loinc_code,
            test_name=body.test_name,
            quantity=Quantity(body.value, body.unit),
            performing_lab=body.performing_lab,
            source_message=source.encode(),
            source_format=body.source_format,
            reference_range=body.reference_range,
            abnormal_flag=body.abnormal_flag,
            collected_at=body.collected_at,
        ),
        category="labs",
    )
    return _out(lab)


@router.post("/{lab_id}/conversions", status_code=status.HTTP_201_CREATED)
def convert(
    lab_id: UUID, body: ConversionIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> ConversionOut:
    lab = load(ledger, lab_id, LabResult)
    access = chart_access(
        ledger,
        runner,
        principal,
        lab.patient_id,
        action="change",
        category="labs",
        target_id=lab.id,
    )
    conversion = lab.record_conversion(body.to_unit)
    with access.acting():
        ledger.save(lab)
    return ConversionOut(
        lab_id=lab.id,
        from_value=conversion.original.value,
        from_unit=conversion.original.unit,
        converted_value=conversion.converted.value,
        to_unit=conversion.converted.unit,
        factor=conversion.factor,
        rule=conversion.rule,
    )
