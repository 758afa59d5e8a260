"""``chartledger witness ...``: running a witness, and pointing a practice at witnesses and a TSA
(docs/WITNESS.md).

Witness side (its folder from --home or CHARTLEDGER_WITNESS_HOME, no practice needed):
``init --name``, ``follow VKEY``, ``serve``, ``watch URL``. Practice side: ``log-key``,
``add URL VKEY``, ``tsa URL --roots PEM``, ``push``, ``checkpoint-file``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import httpx

from api.remote_cli import UsageError
from api.witness.home import HOME_ENV, WitnessHome, WitnessHomeError
from api.witness.protocol import Witness
from api.witness.state import WitnessState
from api.witness.watch import Watched, WatchError, watch_once
from events.config import StoreConfig
from events.ledger import Ledger
from events.tiles import TileMismatch
from events.witnessing import Outward, add_witness, cosigned_note, send_all, set_tsa
from verify.cosignature import NOTE_ED25519_TYPE, format_vkey
from verify.errors import MalformedInput

EXIT_OK, EXIT_INVALID = 0, 1


def _home(options: argparse.Namespace) -> WitnessHome:
    try:
        return WitnessHome.from_option(options.home)
    except WitnessHomeError as e:
        raise UsageError(str(e)) from None


def cmd_init(config: StoreConfig, options: argparse.Namespace) -> int:
    home = _home(options)
    try:
        vkey = home.create(options.name)
    except WitnessHomeError as e:
        raise UsageError(str(e)) from None
    print(f"Witness {options.name} at {home.path}")
    print(f"  verifier key: {vkey}")
    print("Give the verifier key to the practices and verifiers that will rely on this witness.")
    return EXIT_OK


def cmd_follow(config: StoreConfig, options: argparse.Namespace) -> int:
    try:
        vkey = _home(options).follow(options.vkey)
    except WitnessHomeError as e:
        raise UsageError(str(e)) from None
    print(f"Following log {vkey.name} (key {vkey.key_hash.hex()})")
    return EXIT_OK


def cmd_serve(config: StoreConfig, options: argparse.Namespace) -> int:
    import uvicorn

    home = _home(options)
    try:
        print(f"Witness {home.name} on http://{options.host}:{options.port}/", flush=True)
        home.key()
    except (WitnessHomeError, OSError) as e:
        raise UsageError(str(e)) from None
    os.environ[HOME_ENV] = str(home.path)
    # One process: the check and the update of a log's latest checkpoint share one lock.
    uvicorn.run(
        "api.witness.app:app_from_environment",
        factory=True,
        host=options.host,
        port=options.port,
        log_level="warning",
        access_log=False,
    )
    return EXIT_OK


def cmd_watch(config: StoreConfig, options: argparse.Namespace) -> int:
    home = _home(options)
    headers = {}
    try:
        if options.token_file:
            token = Path(options.token_file).read_text().strip()
            headers["Authorization"] = f"Bearer {token}"
        state = WitnessState(home.state_path)
        witness = Witness(home.name, home.key(), home.logs(), state)
    except (WitnessHomeError, OSError) as e:
        raise UsageError(str(e)) from None
    try:
        with httpx.Client(base_url=options.url, headers=headers, timeout=30) as client:
            while True:
                try:
                    watched = watch_once(witness, client)
                except (WatchError, TileMismatch) as e:
                    print(f"chartledger: {e}", file=sys.stderr)
                    if options.once:
                        return EXIT_INVALID
                else:
                    print(_watched_line(watched), flush=True)
                    if options.once:
                        return EXIT_OK if watched.answer.status == 200 else EXIT_INVALID
                time.sleep(options.every)
    except KeyboardInterrupt:  # the way a watch without --once is stopped
        return EXIT_OK
    finally:
        state.close()


def _watched_line(watched: Watched) -> str:
    if watched.answer.status == 200:
        return (
            f"cosigned {watched.origin} at size {watched.size} (from {watched.old_size}, "
            f"{watched.tiles_read} tiles read)"
        )
    reason = watched.answer.body.strip().splitlines()[0] if watched.answer.body.strip() else ""
    return f"refused {watched.origin} at size {watched.size}: {reason}"


def cmd_log_key(config: StoreConfig, options: argparse.Namespace) -> int:
    ledger = Ledger(config)
    try:
        history = ledger.key_history()
    finally:
        ledger.close()
    print(format_vkey(ledger.origin, NOTE_ED25519_TYPE, history[-1].public_key))
    return EXIT_OK


def cmd_add(config: StoreConfig, options: argparse.Namespace) -> int:
    _practice_home(config)
    try:
        vkey = add_witness(config.home, options.url, options.vkey)
    except MalformedInput as e:
        raise UsageError(str(e)) from None
    print(f"Checkpoints will be sent to witness {vkey.name} at {options.url}")
    return EXIT_OK


def cmd_tsa(config: StoreConfig, options: argparse.Namespace) -> int:
    _practice_home(config)
    try:
        set_tsa(config.home, options.url, options.roots)
    except (OSError, ValueError) as e:
        raise UsageError(f"--roots {options.roots}: {e}") from None
    print(f"Checkpoints will be timestamped by {options.url}")
    return EXIT_OK


def cmd_push(config: StoreConfig, options: argparse.Namespace) -> int:
    ledger = Ledger(config)
    try:
        outward = Outward.load(config.home)
        if outward.empty:
            raise UsageError("no witness or TSA is configured: see `chartledger witness add`")
        failures = send_all(ledger.db, outward)
    finally:
        ledger.close()
    for failure in failures:
        print(f"chartledger: {failure}", file=sys.stderr)
    return EXIT_INVALID if failures else EXIT_OK


def cmd_checkpoint_file(config: StoreConfig, options: argparse.Namespace) -> int:
    ledger = Ledger(config)
    try:
        size = options.size
        if size is None:
            with ledger.db.read() as c:
                c.execute("SELECT MAX(size) FROM ledger_checkpoints")
                row = c.fetchone()
            size = row[0] if row is not None and row[0] is not None else 0
        try:
            note = cosigned_note(ledger.db, size)
        except LookupError as e:
            raise UsageError(str(e)) from None
    finally:
        ledger.close()
    sys.stdout.write(note.decode())
    return EXIT_OK


def _practice_home(config: StoreConfig) -> None:
    if not config.practice_path.exists():
        raise UsageError(f"no practice at {config.home}: run `chartledger init` first")


def add_commands(commands: argparse._SubParsersAction, parser_class: type) -> None:  # type: ignore[type-arg]
    witness = commands.add_parser("witness", help="witnesses and timestamps of checkpoints")
    actions = witness.add_subparsers(dest="action", required=True, parser_class=parser_class)
    init = actions.add_parser("init", help="(witness) make a witness's key and folder")
    init.add_argument("--home", help=f"the witness's folder (default ${HOME_ENV})")
    init.add_argument("--name", required=True, help="its key name, e.g. witness.example.org/w1")
    init.set_defaults(run=cmd_init)
    follow = actions.add_parser("follow", help="(witness) trust a log's verifier key")
    follow.add_argument("--home", help=f"the witness's folder (default ${HOME_ENV})")
    follow.add_argument("vkey", help="the log's key, as `chartledger witness log-key` prints it")
    follow.set_defaults(run=cmd_follow)
    serve = actions.add_parser("serve", help="(witness) serve POST /add-checkpoint")
    serve.add_argument("--home", help=f"the witness's folder (default ${HOME_ENV})")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8100)
    serve.set_defaults(run=cmd_serve)
    watch = actions.add_parser(
        "watch", help="(witness) fetch a log's checkpoints and tiles and cosign them"
    )
    watch.add_argument("--home", help=f"the witness's folder (default ${HOME_ENV})")
    watch.add_argument("url", help="the practice's URL (it serves /checkpoint and /tile/...)")
    watch.add_argument("--token-file", help="a file holding an auditor's bearer token, if the "
                       "log is not published")  # fmt: skip
    watch.add_argument("--every", type=float, default=60.0, help="seconds between looks")
    watch.add_argument("--once", action="store_true", help="look once; exit 1 unless cosigned")
    watch.set_defaults(run=cmd_watch)
    log_key = actions.add_parser("log-key", help="print this practice's log verifier key")
    log_key.set_defaults(run=cmd_log_key)
    add = actions.add_parser("add", help="send this practice's checkpoints to a witness")
    add.add_argument("url", help="the witness's submission prefix, e.g. https://w.example/")
    add.add_argument("vkey", help="the witness's verifier key")
    add.set_defaults(run=cmd_add)
    tsa = actions.add_parser("tsa", help="have this practice's checkpoints timestamped (RFC 3161)")
    tsa.add_argument("url", help="the TSA's URL")
    tsa.add_argument("--roots", required=True, help="PEM file of the TSA's root certificate(s)")
    tsa.set_defaults(run=cmd_tsa)
    push = actions.add_parser("push", help="send the newest checkpoint out now")
    push.set_defaults(run=cmd_push)
    out = actions.add_parser(
        "checkpoint-file", help="print a checkpoint with its cosignatures (to keep elsewhere)"
    )
    out.add_argument("--size", type=int, help="the checkpoint's size (default: the newest)")
    out.set_defaults(run=cmd_checkpoint_file)
