"""RFC 3161 timestamps of checkpoints, from a real and independent TSA: OpenSSL's
``openssl ts -reply`` with a CA and a TSA certificate made here, behind a small local HTTP
endpoint on 127.0.0.1. The practice's side (events/timestamps.py, events/witnessing.py) builds
the request and checks the reply with rfc3161-client."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from events.ledger import Ledger
from events.timestamps import (
    TimestampError,
    load_certificates,
    request_timestamp,
    verify_timestamp,
)
from events.witnessing import Outward, send_all, set_tsa
from tests.support import append_charts, patient
from verify.checkpoint import parse_note

TS_CONFIG = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""
TSA_EXTENSIONS = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
"""


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder: Path, name: str) -> None:
    openssl(
        *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
        *("-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2"),
        *("-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
        cwd=folder,
    )


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(URL of the TSA, its root certificate's PEM file)."""
    folder = tmp_path_factory.mktemp("tsa")
    make_ca(folder, "root")
    openssl(
        *("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
        *("-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=Test TSA"),
        cwd=folder,
    )
    (folder / "tsa.ext").write_text(TSA_EXTENSIONS)
    openssl(
        *("x509", "-req", "-in", "tsa.csr", "-CA", "root.pem", "-CAkey", "root.key"),
        *("-CAcreateserial", "-out", "tsa.pem", "-days", "1", "-extfile", "tsa.ext"),
        cwd=folder,
    )
    (folder / "serial").write_text("01\n")
    (folder / "ts.cnf").write_text(TS_CONFIG.format(dir=folder))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:  # one serial file, one request at a time
                (folder / "query.tsq").write_bytes(query)
                openssl(
                    *("ts", "-reply", "-config", "ts.cnf", "-queryfile", "query.tsq"),
                    *("-out", "reply.tsr"),
                    cwd=folder,
                )
                reply = (folder / "reply.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder / "root.pem"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


BODY = b"chartledger.local/x\n41\n" + b"A" * 44 + b"\n"


def test_a_timestamp_from_the_openssl_tsa_verifies(tsa: tuple[str, Path]) -> None:
    url, root = tsa
    roots = load_certificates(root.read_bytes())
    response = request_timestamp(url, BODY, roots)
    when = verify_timestamp(response, BODY, roots)
    assert abs(when.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=5)


def test_a_tampered_timestamp_fails(tsa: tuple[str, Path], tmp_path: Path) -> None:
    url, root = tsa
    roots = load_certificates(root.read_bytes())
    response = request_timestamp(url, BODY, roots)
    # The TSA's signature is the response's last field: one bit of it changed.
    flipped = response[:-1] + bytes([response[-1] ^ 1])
    with pytest.raises(TimestampError):
        verify_timestamp(flipped, BODY, roots)
    # Another message than the one timestamped (a checkpoint with another root).
    with pytest.raises(TimestampError):
        verify_timestamp(response, BODY.replace(b"A", b"B"), roots)
    # A TSA chained to a root the practice did not configure.
    make_ca(tmp_path, "other")
    with pytest.raises(TimestampError):
        verify_timestamp(response, BODY, load_certificates((tmp_path / "other.pem").read_bytes()))
    with pytest.raises(TimestampError):
        verify_timestamp(b"\x30\x03\x02\x01\x00", BODY, roots)


def test_the_practice_keeps_a_timestamp_of_its_newest_checkpoint(
    ledger: Ledger, tsa: tuple[str, Path]
) -> None:
    url, root = tsa
    set_tsa(ledger.config.home, url, str(root))
    append_charts(ledger, [patient() for _ in range(3)])
    checkpoint = ledger.checkpointer.issue()
    assert send_all(ledger.db, Outward.load(ledger.config.home)) == []
    with ledger.db.read() as c:
        c.execute("SELECT size, tsa, response FROM ledger_timestamps")
        rows = c.fetchall()
    assert [(size, tsa_url) for size, tsa_url, _ in rows] == [(checkpoint.size, url)]
    stored = bytes(rows[0][2])
    with ledger.db.read() as c:
        c.execute("SELECT note FROM ledger_checkpoints WHERE size = ?", (checkpoint.size,))
        body = parse_note(bytes(c.fetchone()[0])).body
    verify_timestamp(stored, body, load_certificates(root.read_bytes()))
    assert send_all(ledger.db, Outward.load(ledger.config.home)) == []  # nothing new to send
