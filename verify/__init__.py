"""Chartledger's independent verifier: standard library, msgpack and cryptography only.

The hashing, Merkle and signature rules of docs/LEDGER_FORMAT.md live here once; events/
imports them. Nothing here imports the rest of the project.
"""

from verify.bundle import BundleReport, verify_bundle
from verify.errors import VerificationError
from verify.store import StoreReport, check_store, open_store, verify_store

__all__ = [
    "BundleReport",
    "StoreReport",
    "VerificationError",
    "check_store",
    "open_store",
    "verify_bundle",
    "verify_store",
]
