"""RFC 3161 timestamps of checkpoints from a Time-Stamping Authority (docs/WITNESS.md §6).

The message timestamped is the checkpoint's note body (every line up to the ``key`` line), so a
timestamp proves the tree of that size and root existed by the TSA's time. rfc3161-client builds
the request and checks the response: its nonce, the hash of the body, and the TSA's signature
and certificate chain up to a root the practice configured.
"""

from __future__ import annotations

from datetime import datetime

import httpx
from cryptography import x509
from rfc3161_client import (
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)
from rfc3161_client.tsp import PKIStatus

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"


class TimestampError(ValueError):
    """The TSA could not be reached, refused, or answered with a response that does not verify."""


def request_timestamp(
    url: str, message: bytes, roots: list[x509.Certificate], timeout: float = 10.0
) -> bytes:
    """Ask the TSA at ``url`` to timestamp ``message``; return its verified response (DER)."""
    request = (
        TimestampRequestBuilder()
        .data(message)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    try:
        reply = httpx.post(
            url, content=request.as_bytes(), headers={"Content-Type": QUERY_TYPE}, timeout=timeout
        )
    except httpx.HTTPError as e:
        raise TimestampError(f"the TSA at {url} cannot be reached: {type(e).__name__}") from None
    if reply.status_code != 200:
        raise TimestampError(f"the TSA at {url} answered HTTP {reply.status_code}")
    verify_timestamp(reply.content, message, roots, nonce=request.nonce)
    return reply.content


def verify_timestamp(
    response: bytes, message: bytes, roots: list[x509.Certificate], nonce: int | None = None
) -> datetime:
    """The time a valid TSA response for ``message`` states; a TimestampError otherwise."""
    try:
        decoded = decode_timestamp_response(response)
    except ValueError as e:
        raise TimestampError(f"not an RFC 3161 response: {e}") from None
    if decoded.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise TimestampError(f"the TSA refused: status {decoded.status}")
    if not roots:
        raise TimestampError("no TSA root certificate is configured")
    builder = VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    if nonce is not None:
        builder = builder.nonce(nonce)
    try:
        builder.build().verify_message(decoded, message)
    except VerificationError as e:
        raise TimestampError(f"the timestamp does not verify: {e}") from None
    return decoded.tst_info.gen_time


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)
