"""python -m verify: check a Chartledger store against docs/LEDGER_FORMAT.md, or an
e-discovery bundle against docs/BUNDLE_FORMAT.md.

Exit status 0: valid; 1: invalid; 2: misuse (bad arguments, unreadable input).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cryptography import x509

from verify.bundle import BundleReport, check_bundle
from verify.cosignature import Vkey, parse_vkey
from verify.errors import VerificationError
from verify.hashing import short
from verify.store import StoreReport, check_store, open_store
from verify.witness import OutsideCheckpoint, check_cosignatures, read_outside_checkpoint

EXIT_OK, EXIT_INVALID, EXIT_MISUSE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_MISUSE)


def progress_printer(label: str, stream=sys.stderr, unit: str = "leaves"):  # type: ignore[no-untyped-def]
    """A progress line on a terminal; nothing when output is redirected."""
    if not stream.isatty():
        return None
    step = {"last": -1}

    def show(done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if percent != step["last"]:
            step["last"] = percent
            end = "\n" if done >= total else ""
            stream.write(f"\r{label}: {done}/{total} {unit} ({percent}%){end}")
            stream.flush()

    return show


def print_report(location: str, report: StoreReport) -> int:
    for problem in report.problems:
        print(problem.line())
    if report.ok:
        print(
            f"OK: {location}: {report.size} leaves, {report.events} events, "
            f"{report.checkpoints} checkpoints, {report.keys} keys, root {short(report.root)}"
        )
        return EXIT_OK
    print(f"FAIL: {location}: {len(report.problems)} problems")
    return EXIT_INVALID


def main(args: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m verify", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    store = commands.add_parser("store", help="check a live store from its raw tables")
    where = store.add_mutually_exclusive_group(required=True)
    where.add_argument("--database-url", help="postgresql://user@host/db[?schema=s]")
    where.add_argument("--sqlite", help="path of a Chartledger SQLite file")
    store.add_argument("--trusted-key", help="key id (hex) the key history must start with")
    add_checkpoint_options(store)
    store.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes checking ranges of the log at once (default: one per core)",
    )
    bundle = commands.add_parser("bundle", help="check an e-discovery bundle (one .zip file)")
    bundle.add_argument("file", help="the bundle")
    bundle.add_argument("--trusted-key", help="key id (hex) the key history must start with")
    bundle.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes checking the event records at once (default: one per core)",
    )
    bundle.add_argument(
        "--trusted-witness",
        metavar="VKEY",
        action="append",
        default=[],
        help="a witness's verifier key; the bundle's checkpoint must carry its cosignature "
        "(repeatable)",
    )
    bundle.add_argument(
        "--trusted-tsa",
        metavar="PEM",
        action="append",
        default=[],
        help="a TSA's own certificate (PEM); a timestamp of the bundle's checkpoint must be "
        "signed by its key (repeatable)",
    )
    options = parser.parse_args(args)
    if options.command == "bundle":
        try:
            witnesses = [parse_vkey(text) for text in options.trusted_witness]
        except VerificationError as e:
            print(f"python -m verify: error: --trusted-witness: {e}", file=sys.stderr)
            return EXIT_MISUSE
        tsas = []
        for pem in options.trusted_tsa:
            try:
                tsas.append(x509.load_pem_x509_certificate(Path(pem).read_bytes()))
            except (OSError, ValueError):
                print(
                    f"python -m verify: error: --trusted-tsa {pem}: not a PEM certificate",
                    file=sys.stderr,
                )
                return EXIT_MISUSE
        return run_bundle(
            options.file, options.trusted_key, max(1, options.workers), witnesses, tsas
        )

    location = options.database_url or options.sqlite
    try:
        outside, witnesses = read_checkpoint_options(options)
        raw = open_store(location)
    except VerificationError as e:
        print(f"python -m verify: error: {e}", file=sys.stderr)
        return EXIT_MISUSE
    try:
        report = check_store(
            raw,
            options.trusted_key,
            progress_printer("verifying"),
            workers=max(1, options.workers),
            outside=outside,
        )
    finally:
        raw.close()
    check_outside_cosignatures(report, outside, witnesses)
    shown = location if options.sqlite else "postgresql store"
    return print_report(shown, report)


def add_checkpoint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a checkpoint held outside the store (cosigned or not): the store must extend it",
    )
    parser.add_argument(
        "--trusted-witness",
        metavar="VKEY",
        action="append",
        default=[],
        help="a witness's verifier key; --checkpoint must carry its cosignature (repeatable)",
    )


def read_checkpoint_options(
    options: argparse.Namespace,
) -> tuple[OutsideCheckpoint | None, list[Vkey]]:
    """The --checkpoint file and --trusted-witness keys; a VerificationError is misuse."""
    witnesses = [parse_vkey(text) for text in options.trusted_witness]
    if options.checkpoint is None:
        if witnesses:
            raise VerificationError("--trusted-witness needs --checkpoint")
        return None, witnesses
    try:
        data = Path(options.checkpoint).read_bytes()
    except OSError as e:
        raise VerificationError(f"{options.checkpoint}: {e.strerror}") from None
    return read_outside_checkpoint(data), witnesses


def check_outside_cosignatures(
    report: StoreReport, outside: OutsideCheckpoint | None, witnesses: list[Vkey]
) -> None:
    if outside is None or not witnesses:
        return
    try:
        check_cosignatures(outside, witnesses)
    except VerificationError as e:
        report.fail(outside.where, e)


def run_bundle(
    file: str,
    trusted_key: str | None,
    workers: int = 1,
    witnesses: list[Vkey] | None = None,
    tsas: list[x509.Certificate] | None = None,
) -> int:
    if not os.path.isfile(file):
        print(f"python -m verify: error: {file}: no such file", file=sys.stderr)
        return EXIT_MISUSE
    try:
        with open(file, "rb"):
            pass
    except OSError as e:  # a file that is there but cannot be read: not the bundle's fault
        print(f"python -m verify: error: {file}: cannot be read ({e.strerror})", file=sys.stderr)
        return EXIT_MISUSE
    progress = progress_printer("verifying", unit="events")
    report = check_bundle(
        Path(file),
        trusted_key,
        progress,
        workers=workers,
        trusted_witnesses=witnesses,
        trusted_tsas=tsas,
    )
    return print_bundle_report(report)


def print_bundle_report(report: BundleReport) -> int:
    for line in report.lines:
        print(line)
    failures = report.failures
    if report.ok:
        print(
            f"OK: {report.location}: {report.events} events, "
            f"checkpoint size {report.checkpoint_size}, {len(report.lines)} items checked"
        )
        return EXIT_OK
    print(f"FAIL: {report.location}: {len(failures)} of {len(report.lines)} items failed")
    return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
