"""The transparency-dev/merkle conformance vectors, read in place from ``shared/vectors/rfc9162``.

Every JSON file there is one case. Cases with ``wantErr`` false must be accepted; cases with
``wantErr`` true must be rejected with a ``VerificationError``, never any other exception.
The folder lives beside the repository (``CHARTLEDGER_VECTORS`` overrides it); a missing or
empty folder fails the run rather than skipping it.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from verify.errors import VerificationError
from verify.merkle import root_from_inclusion_proof, verify_consistency, verify_inclusion

VECTORS = Path(
    os.environ.get("CHARTLEDGER_VECTORS")
    or Path(__file__).resolve().parents[4] / "shared" / "vectors" / "rfc9162"
)
FILES = sorted(VECTORS.rglob("*.json")) if VECTORS.is_dir() else []
INCLUSION_FIELDS = {"leafIdx", "treeSize", "root", "leafHash", "proof", "desc", "wantErr"}
CONSISTENCY_FIELDS = {"size1", "size2", "root1", "root2", "proof", "desc", "wantErr"}


def _hash(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _proof(items: list[str] | None) -> list[bytes]:
    # The files come from Go, which writes an empty (nil) slice as null; happy paths have it.
    return [] if items is None else [_hash(item) for item in items]


def _check_inclusion(case: dict[str, Any]) -> None:
    index, size = case["leafIdx"], case["treeSize"]
    leaf, root, proof = _hash(case["leafHash"]), _hash(case["root"]), _proof(case["proof"])
    verify_inclusion(index, size, leaf, proof, root)
    assert root_from_inclusion_proof(index, size, leaf, proof) == root


def _check_consistency(case: dict[str, Any]) -> None:
    verify_consistency(
        case["size1"],
        case["size2"],
        _hash(case["root1"]),
        _hash(case["root2"]),
        _proof(case["proof"]),
    )


def test_vectors_are_found() -> None:
    assert VECTORS.is_dir(), (
        f"RFC 9162 vectors not found at {VECTORS}: put the shared folder beside the repository "
        "or set CHARTLEDGER_VECTORS"
    )
    assert len(FILES) > 0, f"no *.json vector files under {VECTORS}"
    kinds = {path.relative_to(VECTORS).parts[0] for path in FILES}
    assert kinds == {"inclusion", "consistency"}, f"unexpected vector folders {sorted(kinds)}"


@pytest.mark.parametrize(
    "path",
    FILES or [pytest.param(None, id="no-vectors-found")],
    ids=lambda path: path.relative_to(VECTORS).as_posix() if path else "no-vectors-found",
)
def test_vector(path: Path | None) -> None:
    if path is None:
        pytest.fail(f"no RFC 9162 vector files under {VECTORS}")
    case = json.loads(path.read_text(encoding="utf-8"))
    if set(case) == INCLUSION_FIELDS:
        check = _check_inclusion
    elif set(case) == CONSISTENCY_FIELDS:
        check = _check_consistency
    else:
        pytest.fail(f"{path} has unknown fields {sorted(case)}")
    assert isinstance(case["wantErr"], bool)
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            check(case)
    else:
        check(case)
