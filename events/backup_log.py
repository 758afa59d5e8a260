"""The log's roots computed while its leaves stream past, for a backup and for its check.

A leaf at a time: the Merkle root (RFC 9162, LEDGER_FORMAT.md §6), the subject-heads root (§7)
and each subject's chain (§5), so a backup's roots need no second pass and no more memory
than one entry per subject.
"""

from __future__ import annotations

import hashlib

import msgpack

from verify.compact import CompactRange, HeadsTree
from verify.errors import ChainBroken

_head = msgpack.Packer(use_bin_type=True, autoreset=True).pack


class LogRoots:
    def __init__(self) -> None:
        self.range = CompactRange()
        self.heads_tree = HeadsTree()
        self.heads: dict[str, tuple[int, int]] = {}  # subject -> (seq, position)

    @property
    def size(self) -> int:
        return self.range.size

    def add(self, position: int, leaf: bytes, links: list[list[object]]) -> None:
        """Append the leaf at ``position``; ChainBroken if its links do not continue each
        subject's chain."""
        self.range.append(hashlib.sha256(b"\x00" + leaf).digest())
        for subject, seq, prev in links:
            assert isinstance(subject, str)
            known_seq, known_position = self.heads.get(subject, (0, None))
            if (seq, prev) != (known_seq + 1, known_position):
                raise ChainBroken(
                    f"position {position}: a link is [#{seq}, prev {prev}], "
                    f"expected [#{known_seq + 1}, prev {known_position}]"
                )
            self.heads[subject] = (seq, position)
            self.heads_tree.set(
                subject, hashlib.sha256(b"\x00" + _head([subject, seq, position])).digest()
            )

    def root(self) -> bytes:
        return self.range.root()

    def subjects_root(self) -> bytes:
        return self.heads_tree.root()
