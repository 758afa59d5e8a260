"""The bundle's ``witness/`` area (docs/BUNDLE_FORMAT.md §13): its checkpoint with the
cosignatures of outside witnesses, and RFC 3161 timestamps of it.

A cosignature or a timestamp is only worth the key that made it: without ``--trusted-witness``
(``--trusted-tsa``) they are checked for shape and listed, and with it each trusted witness (TSA)
must have cosigned (timestamped) the bundle's own checkpoint.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Protocol

from cryptography import x509

from verify.cosignature import Vkey, parse_cosignature
from verify.errors import MalformedInput, VerificationError
from verify.rfc3161 import Timestamp, check_tsa_signature, read_timestamp
from verify.witness import OutsideCheckpoint, check_cosignatures, read_outside_checkpoint

__all__ = ["WITNESS_DIR", "WITNESS_NOTE", "check_witness_area", "tsa_name"]

WITNESS_DIR = "witness/"
WITNESS_NOTE = "witness/checkpoint.note"
TIMESTAMP_RE = re.compile(r"\Awitness/timestamp-([1-9][0-9]{0,8})\.tsr\Z")


class Report(Protocol):
    def good(self, item: str, text: str) -> None: ...
    def bad(self, item: str, text: str) -> None: ...


def check_witness_area(
    entries: dict[str, bytes],
    checkpoint_note: bytes | None,
    checkpoint_ok: bool,
    trusted: list[Vkey],
    report: Report,
    trusted_tsas: list[x509.Certificate] | None = None,
) -> None:
    """§10 rules 35-39: the names under witness/, the cosigned checkpoint, each trusted witness,
    each timestamp, each trusted TSA. ``checkpoint_ok`` says whether checkpoint.note passed
    rule 9."""
    stamps = []
    for name in sorted(entries):
        if not name.startswith(WITNESS_DIR) or name == WITNESS_NOTE:
            continue
        match = TIMESTAMP_RE.match(name)
        if match is None:
            report.bad(
                f"file {name}", "under witness/ but neither the cosigned checkpoint nor a timestamp"
            )
        else:
            stamps.append((int(match.group(1)), name))
    numbers = sorted(n for n, _ in stamps)
    if numbers != list(range(1, len(numbers) + 1)):
        report.bad("timestamps", f"numbered {numbers}: want 1, 2, … with no gap")
    outside = _cosigned(entries, checkpoint_note, checkpoint_ok, report)
    for witness in trusted:
        item = f"witness {witness.name}"
        if outside is None:
            report.bad(item, f"the bundle carries no valid {WITNESS_NOTE} with its cosignature")
            continue
        try:
            when = check_cosignatures(outside, [witness])[witness.name]
        except VerificationError as e:
            report.bad(item, str(e))
            continue
        report.good(item, f"trusted; cosigned size {outside.checkpoint.size} at {_time(when)}")
    tsas = trusted_tsas or []
    if checkpoint_note is None or not checkpoint_ok:
        for _, name in stamps:
            report.bad(f"timestamp {name}", "no valid checkpoint.note to check its imprint against")
        for certificate in tsas:
            report.bad(f"tsa {tsa_name(certificate)}", "no valid checkpoint.note to check against")
        return
    body = checkpoint_note.split(b"\n\n", 1)[0] + b"\n"
    signed_by: dict[int, str] = {}  # trusted TSA (index) → the timestamp it signed
    for _, name in sorted(stamps):
        try:
            stamp = read_timestamp(entries[name])
            if stamp.imprint != hashlib.new(stamp.algorithm, body).digest():
                raise VerificationError(
                    "its message imprint is not the hash of the checkpoint body"
                )
        except VerificationError as e:
            report.bad(f"timestamp {name}", str(e))
            continue
        by = [i for i, cert in enumerate(tsas) if _signed(stamp, cert)]
        for i in by:
            signed_by.setdefault(i, name)
        who = (
            "signed by trusted TSA " + ", ".join(tsa_name(tsas[i]) for i in by)
            if by
            else "its signature is checked only against a --trusted-tsa certificate"
        )
        report.good(
            f"timestamp {name}",
            f"{stamp.algorithm} imprint of the checkpoint body, time {stamp.gen_time}; {who}",
        )
    for i, certificate in enumerate(tsas):
        item = f"tsa {tsa_name(certificate)}"
        if i in signed_by:
            report.good(item, f"trusted; timestamped the checkpoint ({signed_by[i]})")
        else:
            report.bad(item, "no timestamp of the bundle's checkpoint is signed by this TSA")


def tsa_name(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or "(no subject)"


def _signed(stamp: Timestamp, certificate: x509.Certificate) -> bool:
    try:
        check_tsa_signature(stamp, certificate)
    except VerificationError:
        return False
    return True


def _cosigned(
    entries: dict[str, bytes], checkpoint_note: bytes | None, checkpoint_ok: bool, report: Report
) -> OutsideCheckpoint | None:
    note = entries.get(WITNESS_NOTE)
    if note is None:
        return None
    item = WITNESS_NOTE
    if checkpoint_note is None or not checkpoint_ok:
        report.bad(item, "no valid checkpoint.note for it to extend")
        return None
    if not note.startswith(checkpoint_note) or len(note) == len(checkpoint_note):
        report.bad(item, "is not checkpoint.note, byte for byte, followed by cosignature lines")
        return None
    try:
        text = note[len(checkpoint_note) :].decode("utf-8")
        if not text.endswith("\n"):
            raise MalformedInput("its last line does not end in a newline")
        seen: dict[tuple[str, bytes], int] = {}
        for line in text[:-1].split("\n"):
            cosignature = parse_cosignature(line)
            signer = (cosignature.name, cosignature.key_hash)
            if signer in seen:
                raise MalformedInput(f"two cosignature lines by {cosignature.name}'s key")
            seen[signer] = cosignature.timestamp
        outside = read_outside_checkpoint(note)
    except (UnicodeDecodeError, VerificationError) as e:
        report.bad(item, str(e) if isinstance(e, VerificationError) else "not UTF-8")
        return None
    listed = ", ".join(f"{name} at {_time(t)}" for (name, _), t in sorted(seen.items()))
    report.good(
        item,
        f"{len(seen)} cosignature line(s) of the checkpoint: {listed} "
        "(only a --trusted-witness key makes one count)",
    )
    return outside


def _time(seconds: int) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} s"
