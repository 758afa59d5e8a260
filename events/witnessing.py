"""Sending checkpoints out of the practice (docs/WITNESS.md §4): to the witnesses it is
configured with (C2SP tlog-witness), and to a Time-Stamping Authority (RFC 3161).

The configuration is ``witnesses.json`` in the practice home:

    {"witnesses": [{"url": "https://w.example/", "vkey": "w.example/w1+…+…"}],
     "tsa": {"url": "https://tsa.example/", "roots": "tsa-roots.pem"}}

Cosignatures and timestamps are kept in ``ledger_cosignatures`` and ``ledger_timestamps``
(append-only). Sending happens on a thread of its own after a checkpoint commits, so a witness
or TSA that is down never holds up an append; what failed is logged (the URL and the reason,
nothing from the records) and tried again later, and ``chartledger witness push`` does it by hand.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from events.db import Database
from events.private_files import write_private
from events.tiles import TileMismatch, TileReader, consistency_proof
from events.timestamps import TimestampError, load_certificates, request_timestamp
from verify.checkpoint import UnverifiedCheckpoint, parse_note
from verify.cosignature import Vkey, parse_vkey, split_signed_note, verify_cosignature
from verify.errors import VerificationError

log = logging.getLogger("chartledger.witnessing")
CONFIG_FILE = "witnesses.json"
SIZE_TYPE = "text/x.tlog.size"
RETRY_FIRST, RETRY_MOST = 5.0, 300.0  # seconds between attempts, doubling


class WitnessingError(ValueError):
    """A witness or TSA could not be reached, refused, or answered what does not verify."""


@dataclass(frozen=True)
class WitnessConfig:
    url: str
    vkey: Vkey


@dataclass(frozen=True)
class TsaConfig:
    url: str
    roots_pem: bytes


@dataclass(frozen=True)
class Outward:
    witnesses: list[WitnessConfig] = field(default_factory=list)
    tsa: TsaConfig | None = None

    @property
    def empty(self) -> bool:
        return not self.witnesses and self.tsa is None

    @classmethod
    def load(cls, home: Path) -> Outward:
        """The practice's witnesses.json; a WitnessingError names what is wrong with it."""
        path = home / CONFIG_FILE
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text())
            witnesses = [
                WitnessConfig(url=w["url"].rstrip("/"), vkey=parse_vkey(w["vkey"]))
                for w in raw.get("witnesses", [])
            ]
            tsa = None
            if raw.get("tsa"):
                roots = Path(raw["tsa"]["roots"])
                pem = (roots if roots.is_absolute() else home / roots).read_bytes()
                tsa = TsaConfig(raw["tsa"]["url"], pem)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, VerificationError) as e:
            raise WitnessingError(f"{path} cannot be used: {type(e).__name__}: {e}") from None
        return cls(witnesses, tsa)


def add_witness(home: Path, url: str, vkey_text: str) -> Vkey:
    vkey = parse_vkey(vkey_text)
    path = home / CONFIG_FILE
    raw = json.loads(path.read_text()) if path.exists() else {}
    raw.setdefault("witnesses", [])
    raw["witnesses"] = [w for w in raw["witnesses"] if w["url"].rstrip("/") != url.rstrip("/")]
    raw["witnesses"].append({"url": url, "vkey": vkey_text.strip()})
    write_private(path, (json.dumps(raw, indent=2) + "\n").encode())
    return vkey


def set_tsa(home: Path, url: str, roots: str) -> None:
    load_certificates(Path(roots).read_bytes())  # refuse a file that holds no certificate
    path = home / CONFIG_FILE
    raw = json.loads(path.read_text()) if path.exists() else {}
    raw["tsa"] = {"url": url, "roots": roots}
    write_private(path, (json.dumps(raw, indent=2) + "\n").encode())


def latest_note(db: Database) -> bytes | None:
    with db.read() as c:
        c.execute("SELECT note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
        row = c.fetchone()
    return None if row is None else bytes(row[0])


def cosigned_size(db: Database, witness: str) -> int:
    with db.read() as c:
        c.execute("SELECT MAX(size) FROM ledger_cosignatures WHERE witness = ?", (witness,))
        row = c.fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def consistency_lines(db: Database, old: int, size: int) -> list[str]:
    """The RFC 9162 consistency proof from ``old`` to ``size``, one base64 hash a line, read
    from the stored tiles (events/tiles.py): only the few tiles on the two trees' right edges,
    the same a witness following the log over HTTP would fetch (docs/TILES.md)."""
    if old == 0 or old == size:
        return []
    try:
        with db.read() as c:
            proof = consistency_proof(TileReader(c), old, size)
    except TileMismatch:
        # Tiles cut short or missing: nothing is sent that the store cannot stand behind.
        raise WitnessingError(
            f"the stored tiles cannot prove size {size} extends size {old}: run chartledger verify"
        ) from None
    return [base64.b64encode(h).decode() for h in proof]


def push_to_witness(db: Database, witness: WitnessConfig, client: httpx.Client) -> int | None:
    """Send the newest checkpoint to ``witness`` and keep its cosignature; return the size
    cosigned (None when there was nothing new). Raises WitnessingError."""
    note = latest_note(db)
    if note is None:
        return None
    checkpoint = parse_note(note)
    name = witness.vkey.name
    old = cosigned_size(db, name)
    if old >= checkpoint.size and _has_cosignature(db, checkpoint.size, name):
        return None
    for _ in range(3):  # a 409 tells the size the witness holds: try again from there
        if old > checkpoint.size:
            raise WitnessingError(
                f"witness {name} holds size {old}, beyond this log's newest checkpoint "
                f"{checkpoint.size}: this log was rolled back, or another log shares its origin"
            )
        lines = [f"old {old}", *consistency_lines(db, old, checkpoint.size)]
        body = ("\n".join(lines) + "\n\n").encode() + note
        try:
            reply = client.post(f"{witness.url}/add-checkpoint", content=body)
        except httpx.HTTPError as e:
            raise WitnessingError(f"witness {name} cannot be reached: {type(e).__name__}") from None
        if reply.status_code == 409 and reply.headers.get("content-type", "").startswith(SIZE_TYPE):
            old = int(reply.text.strip())
            continue
        if reply.status_code != 200:
            raise WitnessingError(
                f"witness {name} refused size {checkpoint.size}: HTTP {reply.status_code}"
            )
        keep_cosignature(db, checkpoint, witness.vkey, reply.text)
        return checkpoint.size
    raise WitnessingError(f"witness {name} keeps changing its size")


def keep_cosignature(
    db: Database, checkpoint: UnverifiedCheckpoint, vkey: Vkey, reply: str
) -> None:
    """Store the witness's cosignature line from its reply, once it verifies."""
    for line in reply.splitlines():
        try:
            verify_cosignature(checkpoint.body, line, vkey)
        except VerificationError:
            continue  # another key's line, which signed-note says to ignore
        with db.write(lock=False) as c:
            c.execute(
                "INSERT INTO ledger_cosignatures (size, witness, line) VALUES (?, ?, ?) "
                "ON CONFLICT (size, witness) DO NOTHING",
                (checkpoint.size, vkey.name, line),
            )
        return
    raise WitnessingError(f"witness {vkey.name} answered no valid cosignature by its key")


def _has_cosignature(db: Database, size: int, witness: str) -> bool:
    with db.read() as c:
        c.execute(
            "SELECT 1 FROM ledger_cosignatures WHERE size = ? AND witness = ?", (size, witness)
        )
        return c.fetchone() is not None


def timestamp_latest(db: Database, tsa: TsaConfig) -> int | None:
    """Have the newest checkpoint timestamped by the TSA, unless it already is; the size."""
    note = latest_note(db)
    if note is None:
        return None
    checkpoint = parse_note(note)
    with db.read() as c:
        c.execute(
            "SELECT 1 FROM ledger_timestamps WHERE size = ? AND tsa = ?", (checkpoint.size, tsa.url)
        )
        if c.fetchone() is not None:
            return None
    try:
        response = request_timestamp(tsa.url, checkpoint.body, load_certificates(tsa.roots_pem))
    except TimestampError as e:
        raise WitnessingError(str(e)) from None
    with db.write(lock=False) as c:
        c.execute(
            "INSERT INTO ledger_timestamps (size, tsa, response) VALUES (?, ?, ?) "
            "ON CONFLICT (size, tsa) DO NOTHING",
            (checkpoint.size, tsa.url, response),
        )
    return checkpoint.size


def send_all(db: Database, outward: Outward, timeout: float = 10.0) -> list[str]:
    """One round: every witness and the TSA. Returns what failed, one line each."""
    failures = []
    with httpx.Client(timeout=timeout) as client:
        for witness in outward.witnesses:
            try:
                push_to_witness(db, witness, client)
            except WitnessingError as e:
                failures.append(str(e))
    if outward.tsa is not None:
        try:
            timestamp_latest(db, outward.tsa)
        except WitnessingError as e:
            failures.append(str(e))
    return failures


def cosigned_note(db: Database, size: int) -> bytes:
    """The checkpoint at ``size`` with every cosignature kept for it: the file to hand to an
    attorney, or to ``verify store --checkpoint``."""
    with db.read() as c:
        c.execute("SELECT note FROM ledger_checkpoints WHERE size = ?", (size,))
        row = c.fetchone()
        if row is None:
            raise LookupError(f"no checkpoint at size {size}")
        c.execute("SELECT line FROM ledger_cosignatures WHERE size = ? ORDER BY witness", (size,))
        lines = [str(r[0]) for r in c.fetchall()]
    note = bytes(row[0])
    split_signed_note(note)  # a stored note is a signed note; refuse to extend anything else
    return note + "".join(line + "\n" for line in lines).encode()


class Sender:
    """The thread that sends each new checkpoint out, retrying with a growing pause."""

    def __init__(self, db: Database, outward: Outward) -> None:
        self._db = db
        self._outward = outward
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def kick(self, size: int | None = None) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="chartledger-witnessing", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=15)

    def _run(self) -> None:
        pause = RETRY_FIRST
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                failures = send_all(self._db, self._outward)
            except Exception as e:  # never let the thread die: the next checkpoint retries too
                failures = [f"sending checkpoints failed: {type(e).__name__}"]
            for failure in failures:
                log.warning("%s; will try again", failure)
            if failures:
                if self._stop.wait(pause):
                    return
                pause = min(pause * 2, RETRY_MOST)
                self._wake.set()
            else:
                pause = RETRY_FIRST
