"""Draft FRE 902(13) and 902(14) certifications, as 28 U.S.C. 1746 unsworn declarations.

Filled with what the production knows (the algorithm, the signed checkpoint, the method and
every hash); left blank for what only the declarant can say (name, title, qualification, date
and place). Both are marked DRAFT: counsel reviews and completes them before anyone signs.
Plain UTF-8 text, lines ending in LF.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from legal_hold.review.items import ReviewInput

DRAFT_BANNER = "DRAFT - FOR REVIEW BY COUNSEL - NOT SIGNED - NOT VALID UNTIL COMPLETED AND SIGNED"
BLANK = "____________________"
VERIFY_COMMAND = "python -m verify bundle <bundle file> --trusted-key {key}"
GENESIS_KEY = "genesis_key_id"  # ReviewInput.extra: the key id of statement 0 of the key history


def trusted_key(review: ReviewInput) -> str:
    """The key id a verifier should pin: the practice's first signing key, as published."""
    return review.extra.get(GENESIS_KEY) or "<the practice's published first key id>"


# 28 U.S.C. 1746(2), for a declaration executed within the United States; use 1746(1)'s
# wording ("under the laws of the United States of America") if executed abroad.
DECLARATION_1746 = (
    "I declare under penalty of perjury that the foregoing is true and correct.\n\n"
    f"Executed on {BLANK} [date] at {BLANK} [city, state].\n\n\n"
    "______________________________\n"
    "[Signature]\n"
    f"{BLANK} [Printed name]\n"
)


@dataclass(frozen=True)
class HashedFile:
    """A file the declarations vouch for: its Bates range (if any), path and SHA-256."""

    path: str
    sha256: str
    bates: str = ""
    position: str = ""


def _para(number: int, text: str) -> str:
    body = textwrap.fill(" ".join(text.split()), width=92, subsequent_indent="    ")
    return f"{number}.  {body}\n\n"


def _caption(review: ReviewInput, title: str) -> str:
    forum = review.forum or f"{BLANK} [court]"
    return (
        f"{DRAFT_BANNER}\n\n{forum}\n"
        f"Matter: {review.matter_name} (No. {review.matter_number})\n\n{title}\n\n"
        f"I, {BLANK} [name], declare:\n\n"
    )


def _checkpoint(review: ReviewInput) -> str:
    return (
        f"a signed checkpoint of the ledger's Merkle log of tree size {review.checkpoint_size}, "
        f"root hash (SHA-256, hex) {review.checkpoint_root}, signed with Ed25519 by the key "
        f"with key id {review.checkpoint_key_id}"
    )


def _method(review: ReviewInput) -> str:
    return (
        "Each SHA-256 hash value listed here was computed by Chartledger "
        f"{review.software_version} over the exact bytes of the file as produced (FIPS 180-4 "
        "SHA-256, written as 64 lowercase hexadecimal digits). Anyone can recompute it with "
        "standard tools (for example `sha256sum FILE` on Linux, `shasum -a 256 FILE` on macOS, "
        "`certutil -hashfile FILE SHA256` on Windows) and compare. The bundle's manifest lists "
        "every file with its hash and is signed with the practice's signing key; the "
        "steps in README.txt, running `"
        + VERIFY_COMMAND.format(key=trusted_key(review))
        + "`, check the manifest's signature, every file's hash, every event's hash and its "
        "inclusion in the signed checkpoint, without any access to the producing party's systems"
    )


def _exhibit(title: str, files: Sequence[HashedFile]) -> str:
    lines = [f"{title}\n", "Bates | ledger position | path | SHA-256\n"]
    lines.extend(f"{f.bates or '-'} | {f.position or '-'} | {f.path} | {f.sha256}\n" for f in files)
    if not files:
        lines.append("(none)\n")
    return "".join(lines) + "\n"


def declaration_902_14(
    review: ReviewInput, natives: Sequence[HashedFile], renderings: Sequence[HashedFile]
) -> bytes:
    """Data copied from an electronic device, storage medium or file, authenticated by hash."""
    title = (
        "CERTIFICATION OF DATA COPIED FROM AN ELECTRONIC DEVICE, STORAGE MEDIUM, OR FILE\n"
        "PURSUANT TO FEDERAL RULES OF EVIDENCE 902(11) AND 902(14)"
    )
    text = _caption(review, title) + "".join(
        _para(n, p)
        for n, p in enumerate(
            (
                f"I am employed by {review.producing_party} as {BLANK} [title]. {BLANK} "
                "[How the declarant knows Chartledger, the records system in which the "
                "producing party keeps these records, and is qualified to make this "
                "certification.]",
                f"On {review.produced_at} (UTC), the files listed in Exhibit A ({len(natives)} "
                "native file(s): uploaded documents and email messages byte for byte as received) "
                f"and Exhibit B were copied from Chartledger's ledger into the production of "
                f"the matter named above (bundle format version {review.format_version}), "
                f"which holds {review.event_count} ledger events, every one of them included "
                f"in {_checkpoint(review)}.",
                "Each copy was authenticated by a process of digital identification: its hash "
                "value under the SHA-256 algorithm. The hash value of each native file equals "
                "the hash value recorded in the ledger event that stored the file (produced in "
                "the bundle at the ledger position listed in Exhibit A), and a copy with an "
                "identical hash value is identical to the original.",
                _method(review) + ".",
                "The hash values of the files are set out in Exhibits A and B.",
            ),
            start=1,
        )
    )
    text += DECLARATION_1746 + "\n\n"
    text += _exhibit("EXHIBIT A - NATIVE FILES (SHA-256)", natives)
    text += _exhibit("EXHIBIT B - RENDERINGS AND LOAD FILES (SHA-256)", renderings)
    return (text + DRAFT_BANNER + "\n").encode("utf-8")


def declaration_902_13(review: ReviewInput, renderings: Sequence[HashedFile]) -> bytes:
    """Records generated by an electronic process or system that produces an accurate result."""
    title = (
        "CERTIFICATION OF RECORDS GENERATED BY AN ELECTRONIC PROCESS OR SYSTEM\n"
        "PURSUANT TO FEDERAL RULES OF EVIDENCE 902(11) AND 902(13)"
    )
    text = _caption(review, title) + "".join(
        _para(n, p)
        for n, p in enumerate(
            (
                f"I am employed by {review.producing_party} as {BLANK} [title]. {BLANK} "
                "[How the declarant knows the system and is qualified to make this "
                "certification.]",
                "The records produced (the chart timelines and message threads listed in "
                "Exhibit A) were generated by Chartledger, an electronic records system that "
                "records every change and every read of a record as an event, at or near the "
                "time it happens, by or from information transmitted by a person with "
                "knowledge, in the course of the producing party's regularly conducted "
                f"activity, as a regular practice of that activity. {BLANK} [Confirm for this "
                "practice.]",
                "The system produces an accurate result: events are never changed or deleted "
                "(the database refuses it); each event is stored as canonical bytes with a "
                "SHA-256 hash and a salted SHA-256 commitment to its content; every event is a "
                "leaf of an append-only Merkle log hashed as in RFC 9162; and the log is "
                f"periodically signed with Ed25519 keys. The records produced are included in "
                f"{_checkpoint(review)}.",
                f"On {review.produced_at} (UTC) the renderings in Exhibit A were generated "
                "from those events by the same system, without editing, each page stamped "
                "with its Bates number; each entry shows its ledger position, at which the "
                "event itself is produced in the bundle with its inclusion proof.",
                _method(review) + ".",
            ),
            start=1,
        )
    )
    text += DECLARATION_1746 + "\n\n"
    text += _exhibit("EXHIBIT A - RENDERINGS AND LOAD FILES (SHA-256)", renderings)
    return (text + DRAFT_BANNER + "\n").encode("utf-8")
