"""``add-checkpoint`` as C2SP tlog-witness defines it (docs/WITNESS.md §3), without HTTP.

``Witness.add_checkpoint`` takes the request body and answers (status, body, content type):
200 with the cosignature line; 400 malformed or old size above the checkpoint's; 403 no
signature by a key trusted for the origin; 404 unknown origin; 409 the old size is not the size
last cosigned (the body says which) or, at the same size, the root differs (a fork); 422 the
consistency proof does not verify.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable
from typing import NamedTuple

from api.witness.state import Advance, Latest, WitnessState
from events.keys import SigningKey
from verify.cosignature import (
    NOTE_ED25519_TYPE,
    Cosignature,
    Vkey,
    cosignature_key_hash,
    cosigned_message,
    format_cosignature,
    split_signed_note,
)
from verify.errors import MalformedInput, ProofInvalid, SignatureInvalid
from verify.merkle import verify_consistency
from verify.signing import verify_signature

SIZE_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
_SIZE_RE = re.compile(r"\A(0|[1-9][0-9]{0,19})\Z")


class Answer(NamedTuple):
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


class Refusal(NamedTuple):
    answer: Answer
    evidence: bool = True


class Request(NamedTuple):
    old_size: int
    proof: list[bytes]
    note: bytes
    body: bytes  # the checkpoint's note body, what the log and the witness sign
    origin: str
    size: int
    root: bytes
    signatures: list[tuple[str, bytes]]  # (name, blob)


def parse_request(data: bytes) -> Request:
    head, sep, note = data.partition(b"\n\n")
    if not sep:
        raise MalformedInput("no empty line before the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise MalformedInput("the old size and proof lines are not ASCII") from None
    if not lines[0].startswith("old ") or not _SIZE_RE.match(lines[0][4:]):
        raise MalformedInput("the first line must be 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise MalformedInput(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = [_b64(line, "a consistency proof line") for line in lines[1:]]
    body, signature_lines = split_signed_note(note)
    checkpoint = body.decode().split("\n")
    if len(checkpoint) < 4 or not checkpoint[0] or not _SIZE_RE.match(checkpoint[1]):
        raise MalformedInput("the checkpoint needs an origin, a size and a root hash")
    root = _b64(checkpoint[2], "the root hash")
    if len(root) != 32:
        raise MalformedInput("the root hash is not 32 bytes")
    signatures = []
    for line in signature_lines:
        name, _, blob = line[2:].partition(" ")
        try:
            signatures.append((name, base64.b64decode(blob, validate=True)))
        except (binascii.Error, ValueError):
            continue  # not ours to read; signed-note says unknown signatures are ignored
    return Request(
        old_size=int(lines[0][4:]),
        proof=proof,
        note=note,
        body=body,
        origin=checkpoint[0],
        size=int(checkpoint[1]),
        root=root,
        signatures=signatures,
    )


def signed_by_trusted_key(request: Request, keys: list[Vkey]) -> bool:
    """Whether any signature line verifies under a key trusted for the origin; lines by other
    keys are ignored, so a checkpoint signed by a log's old and new key passes with either."""
    for key in keys:
        if key.key_type != NOTE_ED25519_TYPE or key.name != request.origin:
            continue
        for name, blob in request.signatures:
            if name != key.name or len(blob) != 68 or blob[:4] != key.key_hash:
                continue
            try:
                verify_signature(key.public_key, blob[4:], request.body, request.origin)
            except SignatureInvalid:
                continue
            return True
    return False


class Witness:
    def __init__(
        self,
        name: str,
        key: SigningKey,
        logs: dict[str, list[Vkey]],
        state: WitnessState,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._key = key
        self._key_hash = cosignature_key_hash(name, key.public_key)
        self.logs = logs
        self.state = state
        self._clock = clock

    def add_checkpoint(self, data: bytes) -> Answer:
        try:
            request = parse_request(data)
        except MalformedInput as e:
            return Answer(400, f"malformed request: {e}\n")
        keys = self.logs.get(request.origin)
        if keys is None:
            return Answer(404, "unknown log origin\n")
        if not signed_by_trusted_key(request, keys):
            return Answer(403, "no valid signature by a key trusted for this log\n")
        if request.old_size > request.size:
            return Answer(400, "the old size is greater than the checkpoint's size\n")
        if request.old_size == 0 and request.proof:
            return Answer(400, "a consistency proof from size 0 must be empty\n")

        def decide(latest: Latest) -> Advance | Refusal:
            if request.old_size != latest.size:
                return Refusal(Answer(409, f"{latest.size}\n", SIZE_TYPE), evidence=False)
            if request.old_size == request.size and latest.root not in (None, request.root):
                return Refusal(Answer(409, "fork: same size, different root hash\n"))
            if 0 < request.old_size < request.size:
                assert latest.root is not None
                try:
                    verify_consistency(
                        request.old_size, request.size, latest.root, request.root, request.proof
                    )
                except (MalformedInput, ProofInvalid):
                    return Refusal(Answer(422, "the consistency proof does not verify\n"))
            return Advance(request.size, request.root, request.note)

        refusal = self.state.advance(request.origin, decide)
        if refusal is None:
            return Answer(200, self.cosign(request.body))
        if refusal.evidence:
            # Signed by the log and refused: kept, since it may prove the log misbehaved.
            self.state.refused(request.origin, refusal.answer.body.strip(), data)
        return refusal.answer

    def cosign(self, body: bytes) -> str:
        timestamp = int(self._clock())
        signature = self._key.sign(cosigned_message(body, timestamp))
        return format_cosignature(Cosignature(self.name, self._key_hash, timestamp, signature))


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedInput(f"{what} is not base64") from None
