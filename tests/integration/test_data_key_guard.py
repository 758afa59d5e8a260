"""On PostgreSQL the writer role deletes a data key only as a disposal (LEDGER_FORMAT.md §11).

Plain DELETE on ``ledger_data_keys`` is not granted to ``chartledger_writer``; the one way is
``chartledger_destroy_data_key(name, disposal)``, which refuses unless the ``Disposed`` event of
stream ``disposal`` was appended in the same transaction, and refuses the practice's and users'
keys outright. Disposal through the application goes that way and still verifies.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from eventsourcing.utils import get_topic

from domain.patients import Patient
from events.config import StoreConfig, parse_database_url
from events.guards import WRITER_ROLE
from events.ledger import Ledger
from events.sealing import DESTROY_FUNCTION, DISPOSED_TYPE
from legal_hold.retention import Disposal, Policy, dispose
from tests.conftest import pg_connect
from tests.support import QUIET, init_practice

POSTGRES_ONLY = pytest.mark.parametrize(
    "store_config", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
LATER = datetime.now(UTC) + timedelta(days=8 * 366)
POLICY = Policy.simple("adults-7y", adult_years=7, minor_years=3)
REFUSED = psycopg.errors.InsufficientPrivilege


@pytest.fixture
def practice(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Ledger, Any]]:
    """The ledger with one registered patient, and a plain connection acting as the writer."""
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config, **QUIET)
    assert store_config.database_url is not None
    conn = pg_connect(store_config.database_url)
    conn.execute(f'SET search_path TO "{parse_database_url(store_config.database_url).schema}"')
    conn.execute(f"SET ROLE {WRITER_ROLE}")
    try:
        yield ledger, conn
    finally:
        conn.close()
        ledger.close()


def register(ledger: Ledger) -> uuid.UUID:
    patient = Patient.register(
        mrn=f"MRN-{uuid.uuid4().hex[:6]}",
        given_name="Ada",
        family_name="Example",
        birth_date=date(1970, 5, 1),
        sex="female",
    )
    ledger.save(patient)
    return patient.id


def key_of(conn: Any, subject: str) -> str:
    ((name,),) = conn.execute(
        "SELECT name FROM ledger_data_keys WHERE subject = %s", (subject,)
    ).fetchall()
    return str(name)


def keys(conn: Any) -> set[str]:
    return {str(n) for (n,) in conn.execute("SELECT name FROM ledger_data_keys").fetchall()}


def test_the_disposed_event_type_is_the_disposals() -> None:
    assert get_topic(Disposal.Disposed) == DISPOSED_TYPE


@POSTGRES_ONLY
def test_the_writer_roles_plain_delete_of_a_data_key_is_refused(
    practice: tuple[Ledger, Any],
) -> None:
    ledger, conn = practice
    name = key_of(conn, f"patient:{register(ledger)}")
    before = keys(conn)
    for statement in ["DELETE FROM ledger_data_keys", "TRUNCATE ledger_data_keys"]:
        with pytest.raises(REFUSED, match=r"^permission denied for table ledger_data_keys$"):
            conn.execute(statement)
    with pytest.raises(REFUSED, match=r"^permission denied for table ledger_data_keys$"):
        conn.execute("DELETE FROM ledger_data_keys WHERE name = %s", (name,))
    assert keys(conn) == before


@POSTGRES_ONLY
def test_the_function_refuses_without_a_disposed_event_in_the_same_transaction(
    practice: tuple[Ledger, Any],
) -> None:
    ledger, conn = practice
    patient = register(ledger)
    name = key_of(conn, f"patient:{patient}")
    # No such disposal at all.
    with pytest.raises(REFUSED, match="only with its Disposed event"):
        conn.execute(f"SELECT {DESTROY_FUNCTION}(%s, %s)", (name, uuid.uuid4()))
    # A real disposal, but committed earlier: it cannot cover a key deleted later.
    earlier = register(ledger)
    disposal = dispose(ledger, earlier, policy=POLICY, by=uuid.uuid4(), at=LATER)
    before = keys(conn)
    with pytest.raises(REFUSED, match="only with its Disposed event"):
        conn.execute(f"SELECT {DESTROY_FUNCTION}(%s, %s)", (name, disposal.id))
    # The practice's own key and a user's are never disposed of, whatever the transaction holds.
    for owner in ("practice", f"user:{disposal.by}"):
        with pytest.raises(REFUSED, match="only a patient's data key is ever disposed of"):
            conn.execute(f"SELECT {DESTROY_FUNCTION}(%s, %s)", (key_of(conn, owner), disposal.id))
    assert name in before and keys(conn) == before


@POSTGRES_ONLY
def test_the_function_deletes_beside_a_disposed_event_of_its_own_transaction(
    practice: tuple[Ledger, Any],
) -> None:
    ledger, conn = practice
    name = key_of(conn, f"patient:{register(ledger)}")
    stream = uuid.uuid4()
    # The writer role appends (as the application would) a Disposed event and its leaf, then
    # calls the function, all in one transaction; rolled back after, to leave the log sound.
    ((tip,),) = conn.execute("SELECT MAX(position) + 1 FROM ledger_leaves").fetchall()
    conn.execute("BEGIN")
    try:
        conn.execute(
            "INSERT INTO ledger_leaves (position, stream, version, leaf) VALUES (%s, %s, 1, '')",
            (tip, stream),
        )
        conn.execute(
            "INSERT INTO stored_events (originator_id, originator_version, topic, state, position) "
            "VALUES (%s, 1, %s, '', %s)",
            (stream, DISPOSED_TYPE, tip),
        )
        conn.execute(f"SELECT {DESTROY_FUNCTION}(%s, %s)", (name, stream))
        assert name not in keys(conn)
    finally:
        conn.execute("ROLLBACK")
    assert name in keys(conn)


@POSTGRES_ONLY
def test_a_disposal_through_the_application_goes_through_the_function_and_verifies(
    practice: tuple[Ledger, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from api.cli import main as cli_main

    ledger, conn = practice
    patient = register(ledger)
    name = key_of(conn, f"patient:{patient}")
    dispose(ledger, patient, policy=POLICY, by=uuid.uuid4(), at=LATER)
    assert name not in keys(conn)
    capsys.readouterr()
    assert cli_main(["verify"]) == 0
    assert ", 1 disposed" in capsys.readouterr().out
