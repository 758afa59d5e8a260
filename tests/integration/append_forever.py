"""Append to the configured practice's ledger until killed.

Run by tests/integration/test_concurrency.py as ``python -m tests.integration.append_forever``
with CHARTLEDGER_HOME (and CHARTLEDGER_DATABASE_URL) set. Saves of one to five events, for a
few patients, with a checkpoint every ten events, so a kill can land in any part of an append.
"""

from __future__ import annotations

import itertools

from events.config import StoreConfig
from events.ledger import Ledger
from tests.support import Chart, patient


def main() -> None:
    ledger = Ledger(StoreConfig.from_env(), every_events=10, every_seconds=10**9)
    subjects = [patient() for _ in range(4)]
    charts: list[Chart] = []
    for n in itertools.count():
        subject = subjects[n % len(subjects)]
        if len(charts) < len(subjects):
            chart = Chart(subjects=(subject,), text="opened")
            charts.append(chart)
        else:
            chart = charts[n % len(subjects)]
        for i in range(1 + n % 4):
            chart.note(subjects=(subject,), text=f"note {n}.{i}")
        ledger.save(chart)


if __name__ == "__main__":
    main()
