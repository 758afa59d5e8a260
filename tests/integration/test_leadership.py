"""One leader at a time per loop (events/leadership.py): a flock in the home on SQLite, a session
advisory lock on a connection of its own on PostgreSQL, which a leader gives up when that
connection is cut (the database restarted, the host's network gone)."""

from __future__ import annotations

import threading

import pytest

from events.config import StoreConfig
from events.leadership import CHECK_EVERY, Candidate, NotLeader
from tests.conftest import pg_connect


def test_one_candidate_leads_at_a_time_and_another_takes_over_when_it_stops(
    store_config: StoreConfig,
) -> None:
    stop = threading.Event()
    first, second = (
        Candidate(store_config, "views-follower"),
        Candidate(store_config, "views-follower"),
    )
    other_loop = Candidate(store_config, "checkpoint-signer")
    try:
        with first.leading(stop) as step_down:
            assert not step_down.is_set()
            with pytest.raises(NotLeader), second.leading(stop):
                pass
            with other_loop.leading(stop):  # another loop's lock is another lock
                pass
        with second.leading(stop) as step_down:
            assert not step_down.is_set()
    finally:
        for candidate in (first, second, other_loop):
            candidate.close()


@pytest.mark.parametrize("store_config", ["postgres"], indirect=True)
def test_a_leader_whose_connection_is_cut_steps_down_and_another_leads(
    store_config: StoreConfig,
) -> None:
    stop = threading.Event()
    first, second = (
        Candidate(store_config, "checkpoint-signer"),
        Candidate(store_config, "checkpoint-signer"),
    )
    try:
        with first.leading(stop) as step_down:
            pid = first._connection().info.backend_pid
            with pg_connect() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            assert step_down.wait(CHECK_EVERY * 5), "the leader did not step down"
            with second.leading(stop) as successor:  # the lock went with the connection
                assert not successor.is_set()
        with first.leading(stop) as again:  # a new connection, a candidate like any other
            assert not again.is_set()
    finally:
        first.close()
        second.close()
