"""Reading an RFC 3161 timestamp (a TimeStampResp, DER) far enough to check it against one TSA
certificate the reader trusts: the TSTInfo's message imprint, and the CMS signer's signature over
its signed attributes, whose message digest binds the TSTInfo (RFC 5652 §5.4).

No certificate chain is validated: the reader names the TSA by its own certificate. DER is read
with the standard library; signatures are checked with ``cryptography``.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from verify.errors import MalformedInput, ProofInvalid

__all__ = ["Timestamp", "check_tsa_signature", "read_timestamp"]

HASHES = {  # RFC 5754: the digest algorithms a verifier accepts
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
TSTINFO_OID = "1.2.840.113549.1.9.16.1.4"
CONTENT_TYPE_OID = "1.2.840.113549.1.9.3"
MESSAGE_DIGEST_OID = "1.2.840.113549.1.9.4"
ECDSA = {
    "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
}
RSA_WITH = {
    "1.2.840.113549.1.1.11": "sha256",
    "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
}
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
ED25519 = "1.3.101.112"
_HASH_CLASSES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


class Timestamp(NamedTuple):
    algorithm: str  # of the message imprint
    imprint: bytes
    gen_time: str  # GeneralizedTime as written
    tst_info: bytes  # the eContent: the TSTInfo's DER
    digest_algorithm: str  # the signer's
    signed_attrs: bytes  # DER, re-tagged as the SET OF that was signed
    message_digest: bytes
    content_type: str
    signature_algorithm: str
    signature: bytes


def read_timestamp(response: bytes) -> Timestamp:
    """The parts of a granted TimeStampResp; MalformedInput for anything else. Checks nothing."""
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
        tst_der = _one(_expect(encap[1], 0xA0), 0x04)
        tst = _children(_one(tst_der, 0x30))
        imprint = _children(_expect(tst[2], 0x30))
        algorithm = _hash_name(_algorithm(imprint[0]))
        gen_time = _expect(tst[4], 0x18).decode("ascii")
        signer_infos = _children(_expect(signed[-1], 0x31))
        if len(signer_infos) != 1:
            raise MalformedInput(f"{len(signer_infos)} signers, want 1")
        signer = _children(_expect(signer_infos[0], 0x30))
        digest_algorithm = _hash_name(_algorithm(signer[2]))
        attrs = _expect(signer[3], 0xA0)
        found: dict[str, bytes] = {}
        for attr in _children(attrs):
            oid, values = _children(_expect(attr, 0x30))
            found[_oid(_expect(oid, 0x06))] = _expect(_children(_expect(values, 0x31))[0], -1)
        if MESSAGE_DIGEST_OID not in found or CONTENT_TYPE_OID not in found:
            raise MalformedInput("the signed attributes lack the content type or message digest")
        return Timestamp(
            algorithm=algorithm,
            imprint=_expect(imprint[1], 0x04),
            gen_time=gen_time,
            tst_info=tst_der,
            digest_algorithm=digest_algorithm,
            signed_attrs=b"\x31" + _length(len(attrs)) + attrs,
            message_digest=_strip(found[MESSAGE_DIGEST_OID], 0x04),
            content_type=_oid(_strip(found[CONTENT_TYPE_OID], 0x06)),
            signature_algorithm=_algorithm(signer[4]),
            signature=_expect(signer[5], 0x04),
        )
    except (IndexError, ValueError):  # UnicodeDecodeError is a ValueError
        raise MalformedInput("not an RFC 3161 TimeStampResp") from None


def check_tsa_signature(stamp: Timestamp, certificate: x509.Certificate) -> None:
    """The token's signer signed it with ``certificate``'s key; ProofInvalid otherwise."""
    if stamp.content_type != TSTINFO_OID:
        raise ProofInvalid("the signed content type is not a TSTInfo")
    if hashlib.new(stamp.digest_algorithm, stamp.tst_info).digest() != stamp.message_digest:
        raise ProofInvalid("the signed message digest is not the TSTInfo's")
    key = certificate.public_key()
    data, sig, oid = stamp.signed_attrs, stamp.signature, stamp.signature_algorithm
    try:
        if oid in ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig, data, ec.ECDSA(_HASH_CLASSES[ECDSA[oid]]()))
        elif oid in RSA_WITH and isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, data, padding.PKCS1v15(), _HASH_CLASSES[RSA_WITH[oid]]())
        elif oid == RSA_ENCRYPTION and isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, data, padding.PKCS1v15(), _HASH_CLASSES[stamp.digest_algorithm]())
        elif oid == ED25519 and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sig, data)
        else:
            raise ProofInvalid(f"signature algorithm {oid} does not fit the TSA's key")
    except InvalidSignature:
        raise ProofInvalid("the TSA's signature does not verify with its certificate") from None


# --- DER --------------------------------------------------------------------------------------

_Tlv = tuple[int, bytes]


def _tlv(data: bytes, at: int) -> tuple[_Tlv, int]:
    tag = data[at]
    if tag & 0x1F == 0x1F:
        raise MalformedInput("not DER: a multi-byte tag")
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
    return _expect(tlv, tag)


def _expect(tlv: _Tlv, tag: int) -> bytes:
    """The value of ``tlv`` when its tag is ``tag``; with tag -1, the whole TLV re-encoded."""
    if tag == -1:
        return bytes([tlv[0]]) + _length(len(tlv[1])) + tlv[1]
    if tlv[0] != tag:
        raise MalformedInput(f"not an RFC 3161 TimeStampResp: tag {tlv[0]:#x}, want {tag:#x}")
    return tlv[1]


def _strip(encoded: bytes, tag: int) -> bytes:
    return _one(encoded, tag)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _algorithm(tlv: _Tlv) -> str:
    return _oid(_expect(_children(_expect(tlv, 0x30))[0], 0x06))


def _hash_name(oid: str) -> str:
    if oid not in HASHES:
        raise MalformedInput(f"hash algorithm {oid} is not SHA-256, -384 or -512")
    return HASHES[oid]


def _integer(value: bytes) -> int:
    return int.from_bytes(value, "big", signed=True)


def _oid(value: bytes) -> str:
    if not value:
        raise MalformedInput("not DER: an empty object identifier")
    first = min(value[0] // 40, 2)
    parts = [first, value[0] - 40 * first]
    number = 0
    for byte in value[1:]:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    return ".".join(map(str, parts))
