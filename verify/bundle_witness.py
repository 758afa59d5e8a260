"""The bundle's ``witness/`` area (docs/BUNDLE_FORMAT.md §13): its checkpoint with the
cosignatures of outside witnesses, and RFC 3161 timestamps of it.

A cosignature is only worth the key that made it: without ``--trusted-witness`` the lines are
checked for shape and listed, and with it each trusted witness must have cosigned the bundle's
own checkpoint. The timestamps' imprint is checked here (stdlib DER reading); their CMS signature
needs the TSA's certificate chain and is left to a TSA-aware tool (§13.2).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Protocol

from verify.cosignature import Vkey, parse_cosignature
from verify.errors import MalformedInput, VerificationError
from verify.witness import OutsideCheckpoint, check_cosignatures, read_outside_checkpoint

__all__ = ["WITNESS_DIR", "WITNESS_NOTE", "check_witness_area", "timestamp_imprint"]

WITNESS_DIR = "witness/"
WITNESS_NOTE = "witness/checkpoint.note"
TIMESTAMP_RE = re.compile(r"\Awitness/timestamp-([1-9][0-9]{0,8})\.tsr\Z")
# RFC 3161 message imprint hash algorithms a verifier accepts (RFC 5754 OIDs).
HASHES = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
TSTINFO_OID = "1.2.840.113549.1.9.16.1.4"


class Report(Protocol):
    def good(self, item: str, text: str) -> None: ...
    def bad(self, item: str, text: str) -> None: ...


def check_witness_area(
    entries: dict[str, bytes],
    checkpoint_note: bytes | None,
    checkpoint_ok: bool,
    trusted: list[Vkey],
    report: Report,
) -> None:
    """§10 rules 35-38: the names under witness/, the cosigned checkpoint, each trusted witness,
    each timestamp. ``checkpoint_ok`` says whether checkpoint.note passed rule 9."""
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
    if checkpoint_note is None or not checkpoint_ok:
        for _, name in stamps:
            report.bad(f"timestamp {name}", "no valid checkpoint.note to check its imprint against")
        return
    body = checkpoint_note.split(b"\n\n", 1)[0] + b"\n"
    for _, name in sorted(stamps):
        try:
            algorithm, imprint, when = timestamp_imprint(entries[name])
            if imprint != hashlib.new(algorithm, body).digest():
                raise VerificationError(
                    "its message imprint is not the hash of the checkpoint body"
                )
        except VerificationError as e:
            report.bad(f"timestamp {name}", str(e))
            continue
        report.good(
            f"timestamp {name}",
            f"{algorithm} imprint of the checkpoint body, time {when}; the TSA's signature is "
            "not checked here (§13.2)",
        )


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


# --- RFC 3161 in DER, just far enough to find the TSTInfo -------------------------------------


def timestamp_imprint(response: bytes) -> tuple[str, bytes, str]:
    """(hash algorithm, message imprint, genTime) of an RFC 3161 TimeStampResp (DER) whose
    status is granted. Raises MalformedInput; checks no signature."""
    try:
        resp = _children(_one(response, 0x30))
        status = _children(_expect(resp[0], 0x30))
        if _integer(_expect(status[0], 0x02)) not in (0, 1):
            raise MalformedInput("the TSA did not grant it (PKIStatus not 0 or 1)")
        if len(resp) < 2:
            raise MalformedInput("no timeStampToken")
        content_info = _children(_expect(resp[1], 0x30))
        signed = _children(_one(_expect(content_info[1], 0xA0), 0x30))
        encap = _children(_expect(signed[2], 0x30))
        if _oid(_expect(encap[0], 0x06)) != TSTINFO_OID:
            raise MalformedInput("the token does not hold a TSTInfo")
        tst = _children(_one(_one(_expect(encap[1], 0xA0), 0x04), 0x30))
        imprint = _children(_expect(tst[2], 0x30))
        algorithm = _oid(_expect(_children(_expect(imprint[0], 0x30))[0], 0x06))
        if algorithm not in HASHES:
            raise MalformedInput(f"imprint hash {algorithm} is not SHA-256, -384 or -512")
        gen_time = _expect(tst[4], 0x18).decode("ascii")
        return HASHES[algorithm], _expect(imprint[1], 0x04), gen_time
    except (IndexError, UnicodeDecodeError):
        raise MalformedInput("not an RFC 3161 TimeStampResp") from None


_Tlv = tuple[int, bytes]


def _tlv(data: bytes, at: int) -> tuple[_Tlv, int]:
    tag = data[at]
    length = data[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4:
            raise MalformedInput("not DER: a length of unsupported size")
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    if at + length > len(data):
        raise MalformedInput("not DER: a value runs past its end")
    return (tag, data[at : at + length]), at + length


def _children(value: bytes) -> list[_Tlv]:
    found, at = [], 0
    while at < len(value):
        tlv, at = _tlv(value, at)
        found.append(tlv)
    return found


def _one(data: bytes, tag: int) -> bytes:
    tlv, end = _tlv(data, 0)
    if end != len(data):
        raise MalformedInput("not DER: bytes after the value")
    return _expect(tlv, tag) if tag != 0 else tlv[1]


def _expect(tlv: _Tlv, tag: int) -> bytes:
    if tlv[0] != tag:
        raise MalformedInput(f"not an RFC 3161 TimeStampResp: tag {tlv[0]:#x}, want {tag:#x}")
    return tlv[1]


def _integer(value: bytes) -> int:
    return int.from_bytes(value, "big", signed=True)


def _oid(value: bytes) -> str:
    if not value:
        raise MalformedInput("not DER: an empty object identifier")
    first = value[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    number = 0
    for byte in value[1:]:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    return ".".join(map(str, parts))
