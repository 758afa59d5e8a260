"""Small aggregates for exercising the ledger without the clinical domain."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from types import ModuleType
from uuid import uuid4

from eventsourcing.domain import Aggregate, event

from api.cli import main as cli_main
from domain.imports.fhir_records import Context
from events.config import StoreConfig
from events.ledger import Ledger


class Chart(Aggregate):
    """A stand-in record: each event concerns the subjects it names."""

    @event("Opened")
    def __init__(self, subjects: tuple[str, ...], text: str) -> None:
        self.texts = [text]

    @event("Noted")
    def note(self, subjects: tuple[str, ...], text: str) -> None:
        self.texts.append(text)


def aggregates_in(*packages: ModuleType) -> Iterator[type[Aggregate]]:
    """Every ``Aggregate`` subclass defined in a module of ``packages`` (found where it is
    defined, not where it is imported), module by module."""
    for package in packages:
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for aggregate in vars(module).values():
                if (
                    inspect.isclass(aggregate)
                    and issubclass(aggregate, Aggregate)
                    and aggregate.__module__ == module.__name__
                ):
                    yield aggregate


QUIET = {"every_events": 10**9, "every_seconds": 10**9}  # no automatic checkpoints


def patient() -> str:
    return f"patient:{uuid4()}"


def user() -> str:
    return f"user:{uuid4()}"


def init_practice(config: StoreConfig, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Run `chartledger init` for ``config`` exactly as a user would."""
    set_env(config, monkeypatch)
    assert cli_main(["init", "--name", "Test Practice"]) == 0


def set_env(config: StoreConfig, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CHARTLEDGER_HOME", str(config.home))
    if config.database_url:
        monkeypatch.setenv("CHARTLEDGER_DATABASE_URL", config.database_url)
    else:
        monkeypatch.delenv("CHARTLEDGER_DATABASE_URL", raising=False)


def append_charts(ledger: Ledger, subjects: list[str], events_per_chart: int = 3) -> list[Chart]:
    charts = []
    for subject in subjects:
        chart = Chart(subjects=(subject,), text="opened")
        for i in range(events_per_chart - 1):
            chart.note(subjects=(subject,), text=f"note {i}")
        ledger.save(chart)
        charts.append(chart)
    return charts


def oru_r01(mrn: str, results: int, control_id: str = "BULK0001") -> bytes:
    """One HL7 v2 ORU^R01 for the patient with ``mrn``, one OBR and ``results`` numeric OBX
    segments (glucose values that vary), CR-separated: about 48 bytes a result, so 20,000 of
    them make the 0.9 MB message of issue 17, under the default 1 MiB body limit."""
    head = [
        f"MSH|^~\\&|LABSYS|Acme Lab|CHARTLEDGER|Clinic|20261120083000||ORU^R01^ORU_R01|{control_id}"
        "|P|2.5.1",
        f"PID|1||{mrn}^^^Clinic^MR||Doe^Jane||19800314|F",
        "OBR|1|ORD1|FIL1|24323-8^Comprehensive metabolic panel^LN|||20261120071500",
    ]
    obx = [
        f"OBX|{n}|NM|2345-7^Glucose^LN||{70 + n % 60}.{n % 10}|mg/dL||N|||F"
        for n in range(1, results + 1)
    ]
    return ("\r".join(head + obx) + "\r").encode()


def leaves(ledger: Ledger) -> int:
    """How many leaves the log holds."""
    with ledger.db.read() as c:
        c.execute("SELECT COUNT(*) FROM ledger_leaves")
        row = c.fetchone()
    assert row is not None
    return int(row[0])


FHIR_SOURCE = "https://ehr.example.org/fhir"
# A FHIR import's context knowing one patient, "p1", and nothing else: for reading resources
# one at a time (domain.imports.fhir_records.item).
FHIR_CONTEXT = Context(
    source=FHIR_SOURCE,
    binaries={},
    patients={"p1"},
    known_patient=lambda pairs: None,
    mrn_taken=lambda mrn: False,
)
