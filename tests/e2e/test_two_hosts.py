"""Two `chartledger serve` processes, each with a practice home of its own (the keys copied from
the first, as docs/DEPLOYMENT.md says), on one PostgreSQL schema: two hosts of one practice.

A session used on one counts as activity on the other (the idle clocks' table); a logout and a
revocation through one are refused at the other on the next request; each host's ``GET /status``
and ``/health`` report ok the loops the other leads (the shared heartbeats); the leader killed with
SIGKILL, the other takes over the views and the checkpoints within 10 s, and the checkpoints
have neither a gap nor a duplicate. Both servers run on 127.0.0.1: what tells the hosts apart
is their homes, the only thing they could share on one machine (their lock files among them).
PostgreSQL only: SQLite keeps its one-host design.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api import auth
from api.client import Client, Unauthorized
from api.demo import demo_totp_secret, load_demo
from api.notice_loop import LEADER as NOTICES_LEADER
from api.settings import Settings
from api.status import FOLLOWER, NOTICES, SIGNER
from events.config import StoreConfig
from events.leadership import lock_key
from events.ledger import Ledger
from tests.conftest import PG_URL, _unavailable, pg_connect
from tests.e2e.conftest import CHARTLEDGER, ITERATIONS, OWNER, OWNER_PASSWORD, code_now
from tests.support import QUIET
from verify.checkpoint import parse_note, verify_checkpoint
from verify.keyhistory import key_for_size, parse_statement

pytestmark = pytest.mark.postgres
IDLE_SECONDS = 3
TAKEOVER_SECONDS = 10


@dataclass
class Host:
    home: Path
    url: str
    process: subprocess.Popen[str]


@dataclass
class Pair:
    a: Host
    b: Host
    schema: str
    owner_secret: bytes

    def sql(self, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with pg_connect() as conn:
            conn.execute(f'SET search_path TO "{self.schema}"')
            return conn.execute(statement, params).fetchall()  # type: ignore[arg-type]


def _serve(env: dict[str, str], home: Path) -> Host:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [*CHARTLEDGER, "serve", "--workers", "1", "--host", "127.0.0.1", "--port", str(port)],
        env={**env, "CHARTLEDGER_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return Host(home, f"http://127.0.0.1:{port}", process)


def _wait_until_serving(host: Host) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert host.process.poll() is None, "a server stopped at start"
        try:
            if httpx.get(host.url + "/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{host.url} did not answer")


def _init(env: dict[str, str], home: Path) -> subprocess.Popen[str]:
    words = ["init", "--name", "Two Hosts", "--owner", OWNER, "--owner-name", "Olive"]
    return subprocess.Popen(
        CHARTLEDGER + words,
        env={**env, "CHARTLEDGER_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Both hosts run `chartledger init` at once on the one empty schema: one makes the
    practice, the other is refused and leaves nothing behind; the keys of the one are copied to
    the other's home; both servers start at once, and both serve."""
    if not PG_URL:
        _unavailable("CHARTLEDGER_TEST_DATABASE_URL is not set")
    schema = "t_hosts_" + os.urandom(6).hex()
    with pg_connect() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    root = tmp_path_factory.mktemp("hosts")
    env = {
        **os.environ,
        "CHARTLEDGER_DATABASE_URL": f"{PG_URL}?schema={schema}",
        "CHARTLEDGER_PBKDF2_ITERATIONS": str(ITERATIONS),
        "CHARTLEDGER_IDLE_TIMEOUT_SECONDS": str(IDLE_SECONDS),
        "CHARTLEDGER_CHECKPOINT_SECONDS": "1",
        "CHARTLEDGER_OWNER_PASSWORD": OWNER_PASSWORD,
    }
    hosts: list[Host] = []
    try:
        racing = {root / name: _init(env, root / name) for name in ("a", "b")}
        done = {home: (p.wait(120), *p.communicate()) for home, p in racing.items()}
        made = [home for home, (code, _, _) in done.items() if code == 0]
        assert len(made) == 1, done
        first = made[0]
        second = next(home for home in done if home != first)
        code, _, refused = done[second]
        assert code == 2 and refused.count("\n") == 1 and "already holds" in refused, refused
        assert not (second / "practice.json").exists()  # nothing half-made left behind
        secret = re.search(r"totp secret:  ([A-Z2-7]+)", done[first][1])
        assert secret, done[first][1]
        config = StoreConfig(home=first, database_url=env["CHARTLEDGER_DATABASE_URL"])
        ledger = Ledger(config, **QUIET)
        try:  # in this process: one interpreter fewer to start
            load_demo(ledger, Settings(store=config, pbkdf2_iterations=ITERATIONS), patients=2)
        finally:
            ledger.close()
        # The second host's home: the keys and practice.json, copied (docs/DEPLOYMENT.md).
        second.mkdir(mode=0o700, exist_ok=True)
        shutil.copy2(first / "practice.json", second / "practice.json")
        shutil.copytree(first / "keys", second / "keys", dirs_exist_ok=True)
        hosts = [_serve(env, first), _serve(env, second)]  # starting at once
        for host in hosts:
            _wait_until_serving(host)
        pair = Pair(hosts[0], hosts[1], schema, auth.from_base32(secret.group(1)))
        assert pair.sql("SELECT count(*) FROM ledger_keys") == [(1,)]  # one init
        yield pair
    finally:
        for host in hosts:
            if host.process.poll() is None:
                host.process.terminate()
                host.process.wait(20)
        with pg_connect() as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _login(url: str, username: str, password: str) -> Client:
    client = Client(url)
    client.login(username, password, auth.totp(demo_totp_secret(username), int(time.time())))
    return client


def _on(url: str, client: Client) -> Client:
    return Client(url, token=client.token)


def test_a_session_used_on_one_host_counts_as_activity_on_the_other(pair: Pair) -> None:
    """Logged in and used on A only; on B, past the idle timeout since the login but not since
    the last use on A, the session is alive: B read A's clock."""
    ames = _login(pair.a.url, "dr.ames", "demo-clinician-1")
    logged_in = time.monotonic()
    time.sleep(IDLE_SECONDS * 0.6)
    assert ames.me().roles == ["clinician"]  # on A
    time.sleep(max(0.0, logged_in + IDLE_SECONDS + 0.6 - time.monotonic()))
    assert _on(pair.b.url, ames).me().roles == ["clinician"]


def test_a_logout_and_a_revocation_through_one_host_are_refused_at_the_other(pair: Pair) -> None:
    desk = _login(pair.a.url, "frontdesk", "demo-frontdesk-1")
    at_b = _on(pair.b.url, desk)
    assert at_b.me().roles == ["staff"]
    desk.logout()  # through A
    with pytest.raises(Unauthorized):
        at_b.me()

    baker = _login(pair.b.url, "dr.baker", "demo-clinician-2")
    assert baker.me().roles == ["clinician"]
    owner = Client(pair.a.url)
    owner.login(OWNER, OWNER_PASSWORD, code_now(pair.owner_secret))
    owner.deactivate_user(baker.me().user_id, "left the practice")  # through A
    with pytest.raises(Unauthorized):
        baker.me()  # at B, the next request


def _leader_pid(pair: Pair, name: str) -> int | None:
    space, text = lock_key(pair.schema, name)
    rows = pair.sql(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid "
        "AND l.objid = hashtext(%s)::oid",
        (space, text),
    )
    return int(str(rows[0][0]).rsplit(" ", 1)[1]) if rows else None


def _log_size(pair: Pair) -> int:
    ((top,),) = pair.sql("SELECT MAX(position) FROM ledger_leaves")
    return 0 if top is None else int(top) + 1  # type: ignore[call-overload]


def test_each_host_reports_ok_the_loops_the_other_host_leads(pair: Pair) -> None:
    """Each loop runs at one host only, and its heartbeat file is in that host's home alone;
    yet ``GET /status`` and ``/health`` at either host say every loop is ok (read from the
    ``loop_beats`` table both hosts write)."""
    homes = {pair.a.process.pid: pair.a.home, pair.b.process.pid: pair.b.home}
    locks = {SIGNER: SIGNER, FOLLOWER: FOLLOWER, NOTICES: NOTICES_LEADER}
    leaders = {loop: _leader_pid(pair, lock) for loop, lock in locks.items()}
    assert set(leaders.values()) <= set(homes), leaders
    for loop, pid in leaders.items():
        elsewhere = next(home for p, home in homes.items() if p != pid)
        assert not (elsewhere / "status" / f"{loop}.json").exists(), loop

    owner = Client(pair.a.url)
    owner.login(OWNER, OWNER_PASSWORD, code_now(pair.owner_secret))
    deadline = time.monotonic() + 30
    while True:
        seen = {
            host.url: (
                {s.name: s.state for s in _on(host.url, owner).status().loops},
                httpx.get(host.url + "/health").json()["background"],
            )
            for host in (pair.a, pair.b)
        }
        every_loop_ok = {SIGNER: "ok", FOLLOWER: "ok", NOTICES: "ok"}
        if all(states == every_loop_ok and word == "ok" for states, word in seen.values()):
            break
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)


def test_the_leader_killed_the_other_host_takes_over_views_and_checkpoints(pair: Pair) -> None:
    pids = {pair.a.process.pid: pair.a, pair.b.process.pid: pair.b}
    signer = _leader_pid(pair, SIGNER)
    assert signer in pids, "one of the two servers signs"
    dead, alive = pids[signer], pair.b if pids[signer] is pair.a else pair.a
    os.kill(signer, signal.SIGKILL)
    dead.process.wait(10)
    killed = time.monotonic()

    chen = _login(alive.url, "dr.chen", "demo-clinician-3")  # writes, on the survivor
    assert chen.me().roles == ["clinician"]
    size = _log_size(pair)
    while True:
        leaders = {_leader_pid(pair, SIGNER), _leader_pid(pair, FOLLOWER)}
        ((signed,),) = pair.sql("SELECT MAX(size) FROM ledger_checkpoints")
        views = pair.sql("SELECT MIN(position) FROM projection_positions")[0][0]
        if leaders == {alive.process.pid} and signed == size and views == size:
            print(f"taken over {time.monotonic() - killed:.1f} s after the SIGKILL")  # -s shows it
            break
        assert time.monotonic() - killed < TAKEOVER_SECONDS, (leaders, signed, views, size)
        time.sleep(0.2)

    # No gap, no duplicate: one checkpoint per size, each signed by the key of its size, the
    # last at the log's size; every one made by one signer at a time.
    history = [parse_statement(bytes(s)) for (s,) in pair.sql("SELECT statement FROM ledger_keys")]
    rows = pair.sql("SELECT size, note FROM ledger_checkpoints ORDER BY size")
    sizes = [int(s) for s, _ in rows]  # type: ignore[call-overload]
    assert sizes == sorted(set(sizes)) and sizes[-1] == size
    for checkpoint_size, note in rows:
        checkpoint = parse_note(bytes(note))  # type: ignore[arg-type]
        assert checkpoint.size == checkpoint_size
        verify_checkpoint(checkpoint, key_for_size(history, checkpoint.size).public_key)
