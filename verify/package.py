"""The verifier as one file: ``chartledger-verify.pyz``, a zip application of this package.

Every production carries one (docs/BUNDLE_FORMAT.md §10), so that its recipient can run the
verifier with nothing but Python, msgpack and cryptography:

    python chartledger-verify.pyz bundle BUNDLE_FILE --trusted-key KEY_ID

The file is built reproducibly: the package's ``.py`` files in byte order of their names, each
STORED (not compressed) with a fixed time (1980-01-01 00:00:00) and mode (0644), after a fixed
``__main__.py``. The same source therefore gives the same bytes on any machine, and anyone can
check a carried verifier against the published source by building it again:

    python -m verify.package --digest                 # the SHA-256 of the verifier built here
    python -m verify.package chartledger-verify.pyz   # the file itself, to compare byte for byte

or by unzipping it and comparing its ``verify/`` folder with the source's. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

NAME = "chartledger-verify.pyz"
SHEBANG = b"#!/usr/bin/env python3\n"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
MAIN = b"""# chartledger-verify.pyz: run the Chartledger verifier (python -m verify) from one file.
import sys

from verify.__main__ import main

sys.exit(main())
"""


def sources(package: Path | None = None) -> list[tuple[str, bytes]]:
    """(name inside the archive, bytes) of every module of the package, in byte order."""
    root = package or Path(__file__).resolve().parent
    found = [(f"verify/{p.name}", p.read_bytes()) for p in root.glob("*.py") if p.is_file()]
    return sorted(found, key=lambda item: item[0].encode())


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    info.create_system = 3  # Unix, whatever the machine that builds it
    return info


def build(package: Path | None = None) -> bytes:
    """The zip application's bytes: the shebang line, then the archive."""
    out = io.BytesIO()
    out.write(SHEBANG)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(_entry("__main__.py"), MAIN)
        for name, data in sources(package):
            archive.writestr(_entry(name), data)
    return out.getvalue()


def digest(package: Path | None = None) -> str:
    return hashlib.sha256(build(package)).hexdigest()


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m verify.package",
        description="Build the verifier as one file (chartledger-verify.pyz), reproducibly.",
    )
    parser.add_argument("out", nargs="?", help="where to write the file (it must not exist)")
    parser.add_argument("--digest", action="store_true", help="print its SHA-256")
    options = parser.parse_args(args)
    if not options.out and not options.digest:
        parser.error("give a file to write, or --digest")
    data = build()
    if options.out:
        try:
            with open(options.out, "xb") as target:
                target.write(data)
        except OSError as error:
            print(f"python -m verify.package: {options.out}: {error.strerror}", file=sys.stderr)
            return 2
    if options.digest:
        print(hashlib.sha256(data).hexdigest())
    return 0


if __name__ == "__main__":
    sys.exit(main())
