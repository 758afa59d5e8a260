"""The bundle as a container (docs/BUNDLE_FORMAT.md §1 and §9): entry names, the STORED method,
and where each native must be. Pure rules; ``verify.bundle`` reads the archive and reports.
"""

from __future__ import annotations

import re
from typing import Any

NATIVES_DIR = "natives/"
DOCUMENT = "domain.documents:Document.Stored"
EMAIL = "domain.messages:Thread.EmailIngested"
NATIVE_FIELDS = {DOCUMENT: "content", EMAIL: "raw"}
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}\Z")
_DRIVE = re.compile(r"\A[A-Za-z]:")
STORED = 0


def name_problem(name: str, method: int) -> str | None:
    """Why an entry named ``name``, stored with compression ``method``, may not be in a bundle;
    None when it may. A name is a relative path of non-empty segments, none of them ``.`` or
    ``..``, ``/``-separated, that could not land outside the folder it is unpacked into."""
    if not name:
        return "has an empty name"
    if name.endswith("/"):
        return "is a directory entry: a bundle holds files only"
    if name.startswith("/") or _DRIVE.match(name):
        return "is an absolute path"
    if "\\" in name or "\x00" in name:
        return "has a backslash or NUL in its name"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "has an empty, '.' or '..' segment in its name"
    if method != STORED:
        return f"is compressed (method {method}): every entry is STORED (method 0)"
    return None


def native_path(position: int, event_type: str, payload: dict[str, Any]) -> str:
    """Where the native of a produced document or email must be: ``natives/<position><ext>``,
    ``<ext>`` the original file name's extension in lower case (``.bin`` without one) for a
    document, ``.eml`` for an email."""
    if event_type == EMAIL:
        return f"{NATIVES_DIR}{position}.eml"
    name = payload.get("original_filename")
    found = _SUFFIX.search(name) if type(name) is str else None
    return f"{NATIVES_DIR}{position}{found.group(0).lower() if found else '.bin'}"


def strictly_ascending(values: list[Any], key: Any = None) -> int | None:
    """The index of the first value not strictly above the one before it, or None."""
    keys = [key(v) if key else v for v in values]
    for i in range(1, len(keys)):
        if not keys[i - 1] < keys[i]:
            return i
    return None
