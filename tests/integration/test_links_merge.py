"""Where the store keeps each leaf's links (LEDGER_FORMAT.md §11), on SQLite and PostgreSQL.

On SQLite an append puts its links in ``ledger_links_recent``, the append whose positions
reach or cross a multiple of ``LINKS_MERGE_EVERY`` moves every recent link into
``ledger_links_mid``, and the one that crosses a multiple of ``LINKS_SETTLE_EVERY`` moves mid's
into ``ledger_links_main``, each in the append's transaction; PostgreSQL's writer puts them into
main at once.
Whatever the appends, the ``ledger_links`` view holds exactly the links the leaves carry, recent
holds those of the appends since the last merge, and a writer whose head cache knows nothing
(another process) continues every subject's chain from what the tables hold.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import store
from events.config import StoreConfig
from events.ledger import Ledger
from events.schema import create_tables
from tests.support import QUIET, Chart, init_practice, patient, set_env
from verify.records import parse_leaf
from verify.store import check_store, open_store

EVERY = 5
SUBJECTS = ["patient:a", "patient:b", "patient:c", "user:d"]
Link = tuple[str, int, int]

# Each save: one chart per entry, each about one or two subjects; saved by the test's ledger
# or by a second one whose head cache starts empty.
saves = st.lists(
    st.tuples(
        st.lists(
            st.sets(st.sampled_from(SUBJECTS), min_size=1, max_size=2), min_size=1, max_size=7
        ),
        st.booleans(),
    ),
    min_size=1,
    max_size=8,
)


def _rows(ledger: Ledger, sql: str) -> list[tuple[Any, ...]]:
    with ledger.db.read() as c:
        c.execute(sql)
        return [tuple(r) for r in c.fetchall()]


def _carried(ledger: Ledger) -> list[Link]:
    """Every link the leaves carry, as (subject, seq, position), checking each chain as it goes:
    seq 1, 2, … and each prev the subject's previous position."""
    heads: dict[str, tuple[int, int | None]] = {}
    links = []
    for position, leaf in _rows(
        ledger, "SELECT position, leaf FROM ledger_leaves ORDER BY position"
    ):
        for subject, seq, prev in parse_leaf(bytes(leaf)).links:
            assert (seq, prev) == (
                heads.get(subject, (0, None))[0] + 1,
                heads.get(subject, (0, None))[1],
            )
            heads[subject] = (seq, position)
            links.append((subject, seq, position))
    return sorted(links)


def _table(ledger: Ledger, name: str) -> list[Link]:
    return sorted(_rows(ledger, f"SELECT subject, seq, position FROM {name}"))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(saves=saves)
def test_the_links_view_holds_every_leafs_links_whatever_the_appends(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, saves: list[tuple[list[set[str]], bool]]
) -> None:
    monkeypatch.setattr(store, "LINKS_MERGE_EVERY", EVERY)
    other = Ledger(ledger.config, **QUIET)
    try:
        for charts, by_other in saves:
            (size,) = _rows(ledger, "SELECT COUNT(*) FROM ledger_leaves")[0]
            recent_before = _table(ledger, "ledger_links_recent")
            writer = other if by_other else ledger
            writer.save(*(Chart(subjects=tuple(sorted(s)), text="x") for s in charts))
            end = size + len(charts)
            carried = _carried(ledger)
            assert _table(ledger, "ledger_links") == carried
            new = [link for link in carried if link[2] >= size]
            if ledger.db.dialect == "postgres":  # its writer puts links straight into main
                assert _table(ledger, "ledger_links_recent") == []
            elif size // EVERY != end // EVERY:  # this append merged
                assert _table(ledger, "ledger_links_recent") == []
                assert _table(ledger, "ledger_links_mid") == carried  # none settled yet
            else:
                assert _table(ledger, "ledger_links_recent") == sorted(recent_before + new)
    finally:
        other.close()


def test_a_merge_across_many_appends_leaves_a_store_that_verifies(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "LINKS_MERGE_EVERY", 16)
    monkeypatch.setattr(store, "LINKS_SETTLE_EVERY", 32)
    counts: Counter[str] = Counter()
    for n in range(40):
        subjects = (patient(), SUBJECTS[n % 4]) if n % 3 else (SUBJECTS[n % 4],)
        ledger.save(Chart(subjects=tuple(sorted(subjects)), text=str(n)))
        counts.update(subjects)
    ledger.checkpointer.issue()
    main, recent = _table(ledger, "ledger_links_main"), _table(ledger, "ledger_links_recent")
    mid = _table(ledger, "ledger_links_mid")
    if ledger.db.dialect == "sqlite":
        assert main and recent  # both in use at the end (41 positions: settled at 32)
        assert mid == []
    else:
        assert recent == mid == []
    assert sorted(main + mid + recent) == _carried(ledger)
    heads = _rows(ledger, "SELECT subject, MAX(seq) FROM ledger_links GROUP BY subject")
    assert {s: n for s, n in heads if s in SUBJECTS} == {s: counts[s] for s in SUBJECTS}
    raw = open_store(_where(ledger.config))
    try:
        report = check_store(raw, workers=1)
    finally:
        raw.close()  # an open snapshot would hold the schema the fixture drops
    assert not report.problems, report.problems


def _where(config: StoreConfig) -> str:
    return config.database_url or str(config.sqlite_path)


def test_a_store_made_before_the_split_moves_its_links_table_to_main(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layout before: one append-only table ``ledger_links`` holding every link, made here
    from a new store by raw SQL. Opening the store renames it to main and appends carry on."""
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config, **QUIET)
    try:
        ledger.save(*(Chart(subjects=(s,), text="before") for s in SUBJECTS))
        links = _carried(ledger)
        with ledger.db.write() as c:
            _make_old_layout(c, ledger.db.dialect)
        assert _rows(ledger, "SELECT subject, seq, position FROM ledger_links") != []
    finally:
        ledger.close()
    set_env(store_config, monkeypatch)
    reopened = Ledger(store_config, **QUIET)
    try:
        assert _table(reopened, "ledger_links_main") == links
        assert _table(reopened, "ledger_links_recent") == []
        reopened.save(Chart(subjects=(SUBJECTS[0],), text="after"))
        assert _table(reopened, "ledger_links") == _carried(reopened)
        with reopened.db.write() as c:
            create_tables(c, reopened.db.dialect)  # opening again changes nothing
        assert _table(reopened, "ledger_links") == _carried(reopened)
    finally:
        reopened.close()


def _make_old_layout(c: Any, dialect: str) -> None:
    c.execute("DROP VIEW ledger_links")
    c.execute("DROP TABLE ledger_links_mid")  # empty: nothing settled in these few appends
    c.execute(
        "INSERT INTO ledger_links_main (subject, seq, position) "
        "SELECT subject, seq, position FROM ledger_links_recent"
    )
    if dialect == "sqlite":
        c.execute("DROP TRIGGER ledger_links_recent_refuse_delete")
        c.execute("DELETE FROM ledger_links_recent")
        for action in ("update", "delete"):
            c.execute(f"DROP TRIGGER ledger_links_main_refuse_{action}")
        c.execute("DROP TABLE ledger_links_recent")
        c.execute("ALTER TABLE ledger_links_main RENAME TO ledger_links")
        c.execute(
            "CREATE TRIGGER ledger_links_refuse_delete BEFORE DELETE ON ledger_links "
            "BEGIN SELECT RAISE(ABORT, 'append-only'); END"
        )
    else:
        c.execute("DROP TABLE ledger_links_recent")
        for name in ("refuse_change", "refuse_truncate"):
            c.execute(f"DROP TRIGGER ledger_links_main_{name} ON ledger_links_main")
        c.execute("ALTER TABLE ledger_links_main RENAME TO ledger_links")
        c.execute(
            "CREATE TRIGGER ledger_links_refuse_change BEFORE UPDATE OR DELETE ON ledger_links "
            "FOR EACH ROW EXECUTE FUNCTION chartledger_refuse()"
        )


def test_a_store_made_before_mid_gets_it_and_its_view_when_opened(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layout before: a view over main and recent only, no mid (and, on SQLite, recent's
    guard letting a row leave only for main). Opening makes mid and the view over all three,
    and a merge moves recent's links into mid past the new guard."""
    ledger.save(*(Chart(subjects=(s,), text="before") for s in SUBJECTS))
    with ledger.db.write() as c:
        c.execute("DROP VIEW ledger_links")
        c.execute("DROP TABLE ledger_links_mid")
        c.execute(
            "CREATE VIEW ledger_links AS SELECT subject, seq, position FROM ledger_links_main "
            "UNION ALL SELECT subject, seq, position FROM ledger_links_recent"
        )
    reopened = Ledger(ledger.config, **QUIET)
    try:
        monkeypatch.setattr(store, "LINKS_MERGE_EVERY", 1)
        reopened.save(Chart(subjects=(SUBJECTS[0],), text="after"))
        assert _table(reopened, "ledger_links") == _carried(reopened)
        if reopened.db.dialect == "sqlite":
            assert _table(reopened, "ledger_links_recent") == []
            assert _table(reopened, "ledger_links_mid") != []
    finally:
        reopened.close()
