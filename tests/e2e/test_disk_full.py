"""A SQLite practice whose disk fills up answers 503 storage-full problems with Retry-After
(issue 20), never a 500, and stays up; once space is freed, writes resume and nothing
acknowledged was lost (issue 23).

The practice's home is on a small tmpfs of its own. Mounting one needs root; where the test is
not root it runs itself again inside ``unshare -rm`` (a user and mount namespace in which it
may mount). Only where neither works is it skipped, and under CI=true it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from uuid import UUID

import pytest

from api.schemas import LabIn, PatientIn
from events.config import StoreConfig
from tests.e2e.conftest import Practice, add_member, events_of_type
from tests.integration.test_concurrency import verdicts

pytestmark = pytest.mark.faults  # with tests/faults/ (docs/FAULTS.md)

DISK = "8m"  # the tmpfs: the practice (about 1 MB) and a filler that takes nearly all the rest
LEFT_FREE = 96 * 1024  # bytes the filler leaves, so a few writes land before the disk is full
INSIDE = "CHARTLEDGER_TEST_DISK_FULL_INSIDE"  # set when running inside unshare -rm
RECEIVED = "domain.labs:LabResult.Received"
REPO = Path(__file__).resolve().parents[2]


def _mount(where: Path) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", str(where)],
        capture_output=True,
    )
    return done.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture
def store_config(tmp_path: Path) -> Iterator[StoreConfig]:
    """A SQLite practice home on a tmpfs of its own (overrides the two-store fixture: a full
    disk under PostgreSQL is the database server's disk, not the practice's)."""
    disk = tmp_path / "disk"
    if not _mount(disk):
        if os.environ.get(INSIDE):
            pytest.fail("mount failed inside unshare -rm")
        pytest.skip("not root here: this test runs itself inside unshare -rm instead")
    try:
        yield StoreConfig(home=disk / "home")
    finally:
        _umount(disk)


def fill(disk: Path) -> Path:
    """A filler file taking all but ``LEFT_FREE`` bytes of the disk."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with filler.open("wb") as f:
        f.write(b"\0" * max(0, free - LEFT_FREE))
    return filler


def lab(patient_id: UUID, n: int) -> LabIn:
    return LabIn(
        patient_id=patient_id,
        loinc_code="2345-7",
        test_name="Glucose",
        value=f"5.{n}",
        unit="mg/dL",
        performing_lab=f"LAB-{n}",  # one per write, to find each in the chart
        source_message="OBX|1|NM|2345-7^Glucose^LN||5.2|mg/dL\r" + "x" * 2000,
    )


def test_a_full_disk_is_503_not_500_and_writes_resume_when_space_is_freed(
    practice: Practice, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = practice.owner()
    clinician = add_member(practice, owner, "casey", "Dr. Casey", "clinician").client()
    body = PatientIn(
        mrn="FULL-1", given_name="D", family_name="Isk", birth_date=date(1960, 1, 1), sex="female"
    )
    patient = clinician.register_patient(body).patient_id
    owner.assign_care(patient, clinician.me().user_id)
    http = practice.http_client()
    http.headers["Authorization"] = f"Bearer {clinician.token}"
    filler = fill(practice.settings.store.home.parent)

    kept, statuses = [], []
    for n in range(400):
        answer = http.post("/labs", json=lab(patient, n).model_dump(mode="json"))
        statuses.append(answer.status_code)
        if answer.status_code == 201:
            kept.append(f"LAB-{n}")
            continue
        assert answer.status_code == 503, answer.text  # never a 500
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == "urn:chartledger:problem:storage-full"
        assert int(answer.headers["Retry-After"]) >= 1
        if statuses.count(503) >= 20:
            break
    assert statuses.count(503) >= 20, statuses  # the disk did fill
    assert http.get("/health").json()["store"] == "storage-full"  # the server is up, and says
    assert http.get("/health/ready").status_code == 503

    filler.unlink()
    assert http.get("/health/ready").status_code == 200
    for n in range(1000, 1005):
        answer = http.post("/labs", json=lab(patient, n).model_dump(mode="json"))
        assert answer.status_code == 201, answer.text
        kept.append(f"LAB-{n}")

    logged = [e.performing_lab for e in events_of_type(practice, RECEIVED)]  # type: ignore[attr-defined]
    assert sorted(logged) == sorted(kept)  # each acknowledged lab once; no refused one
    for code, out in verdicts(practice.settings.store, capsys):
        assert code == 0, out


@pytest.mark.skipif(os.getuid() == 0 or bool(os.environ.get(INSIDE)), reason="root mounts")
def test_the_full_disk_test_runs_inside_unshare_where_not_root() -> None:
    unshare = shutil.which("unshare")
    if unshare is None:
        _neither("no unshare here")
    done = subprocess.run(
        [unshare, "-rm", sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p",
         "no:cacheprovider", f"{__file__}::test_a_full_disk_is_503_not_500_and_writes_resume"
         "_when_space_is_freed"],
        env={**os.environ, INSIDE: "1"}, cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    if "unshare failed" in done.stderr or "Operation not permitted" in done.stderr:
        _neither(done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, done.stdout + done.stderr


def _neither(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"a small tmpfs cannot be mounted here (not root, {reason})")
    pytest.skip(f"a small tmpfs cannot be mounted here (not root, {reason})")
