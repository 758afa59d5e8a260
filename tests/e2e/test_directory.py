"""Naming people for a hold, over HTTP on both stores: a risk manager reads the user directory
and finds patients by MRN (each patient shown recorded as a read of their demographics, under
the purpose given), as the console's hold pages do; an auditor reads the directory too; a
clinician reads neither the directory nor gets more than the front desk's search, and each
refusal is recorded."""

from __future__ import annotations

import pytest

from api.client import Forbidden
from tests.e2e.conftest import Practice, add_member
from tests.e2e.test_clinical import ada, staffed


def test_a_risk_manager_names_custodians_and_patients(practice: Practice) -> None:
    owner, clinician, risk = staffed(practice)
    auditor = add_member(practice, owner, "aud", "Avery Auditor", "auditor").client()
    patient = clinician.register_patient(ada()).patient_id

    directory = {u.username: u.roles for u in risk.users()}
    assert directory["casey"] == ["clinician"] and directory["rita"] == ["risk_manager"]
    assert {u.username for u in auditor.users()} == set(directory)

    found = risk.search_patients("MRN-7", "HLEGAL")
    assert [p.patient_id for p in found] == [patient]
    rita = risk.me().user_id
    reads = [
        r for r in owner.audit(patient_id=str(patient), user_id=str(rita)) if r.outcome == "success"
    ]
    assert reads and all(r.purpose == "HLEGAL" for r in reads)

    with pytest.raises(Forbidden):
        clinician.users()
    with pytest.raises(Forbidden):
        auditor.search_patients("MRN-7", "HLEGAL")
    refused = owner.audit(user_id=str(auditor.me().user_id))
    assert any(r.outcome != "success" and r.action for r in refused)
