"""Recomputing the stored subject-heads leaves (``ledger_heads``, LEDGER_FORMAT.md §12.2).

``ledger_heads`` holds, per subject, its newest settled link (in ``ledger_links_main`` or
``ledger_links_mid``; SQLite's writer keeps the newest links in ``ledger_links_recent`` until
it merges them) and the hash of the subject-heads leaf (§7) it gives. It is a cache the signer
builds the heads root from; here it is trusted for nothing: each row is recomputed from the
links index (which the store check compares with the links the leaves carry), and each row
that disagrees is named by its index among the rows in UTF-8 order of their subjects and what
differs. No subject is named: a subject is a patient's or user's identifier.

Memory grows with the number of subjects, not of events: one row per subject.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from verify.errors import ChainBroken, HashMismatch, VerificationError
from verify.hashing import short
from verify.merkle import leaf_hash
from verify.records import head_bytes

Rows = Callable[[str], Sequence[Sequence[Any]]]
# Each subject's newest settled link: the row ledger_heads must hold for it.
SETTLED = (
    "(SELECT subject, seq, position FROM ledger_links_main "
    "UNION ALL SELECT subject, seq, position FROM ledger_links_mid)"
)
LATEST = (
    f"SELECT l.subject, l.seq, l.position FROM {SETTLED} l JOIN "
    f"(SELECT subject, MAX(seq) AS seq FROM {SETTLED} s GROUP BY subject) m "
    "ON l.subject = m.subject AND l.seq = m.seq"
)
STORED = "SELECT subject, seq, position, hash FROM ledger_heads"


def check_heads(rows: Rows) -> list[tuple[str, VerificationError]]:
    """(where, error) for each disagreement between ``ledger_heads`` and the links (at most
    one per subject, in the heads tree's leaf order); empty when they agree, or when the table
    is empty (a store made before it, or restored from a backup, which does not carry it: the
    application fills it when it opens the store, and an empty cache vouches for nothing)."""
    stored = {s: (seq, pos, bytes(h)) for s, seq, pos, h in rows(STORED)}
    if not stored:
        return []  # not built: the application fills it from the links when it opens the store
    expected = {s: (seq, pos) for s, seq, pos in rows(LATEST)}
    order = sorted(expected.keys() | stored.keys(), key=str.encode)
    found: list[tuple[str, VerificationError]] = []
    for index, subject in enumerate(order):
        where = f"ledger_heads leaf {index}"
        want, have = expected.get(subject), stored.get(subject)
        if have is None:
            found.append((where, ChainBroken("a subject with links has no stored head")))
        elif want is None:
            found.append((where, ChainBroken("a stored head names a subject with no links")))
        elif have[:2] != want:
            found.append(
                (
                    where,
                    ChainBroken(
                        f"stored head is link {have[0]} at position {have[1]}, "
                        f"the links give {want[0]} at position {want[1]}"
                    ),
                )
            )
        else:
            computed = leaf_hash(head_bytes(subject, *want))
            if have[2] != computed:
                found.append(
                    (
                        where,
                        HashMismatch(
                            f"stored hash {short(have[2])}, the head gives {short(computed)}"
                        ),
                    )
                )
    return found
