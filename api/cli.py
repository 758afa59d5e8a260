"""The ``chartledger`` command: local administration of a practice's ledger, and (with
``--server URL``: login, logout, enroll, password, recover, recover-approved, recovery-codes,
patients, chart, labs, notes, audit, access-report, users, break-glass, alerts, policies,
disposals, productions, exports, status; api/remote_cli.py, api/remote_legal_cli.py) the thin
client against a running server, its session token kept in ~/.chartledger-token
(CHARTLEDGER_TOKEN_FILE) with mode 0600. ``matters`` and ``holds`` work on the local store, or
over the server when --server is given on the command line. ``status --local`` reads the
server's background loops from the practice home instead (api/status.py). Each command's --help
ends with the environment variables it reads.

Exit status 0: success; 1: the store failed verification; 2: misuse, with one line saying what
is wrong. Nothing here prints PHI.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import httpx
import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from pydantic import ValidationError

from api.auth import base32, check_password, new_account, totp_uri
from api.backup_cli import add_commands as add_backup_commands
from api.bulk_cli import add_bulk_commands
from api.client import ApiError, Client, invalid_fields
from api.env_vars import document
from api.import_cli import add_commands as add_import_commands
from api.jobs_cli import COMMANDS as JOB_COMMANDS
from api.jobs_cli import add_commands as add_job_commands
from api.progress_bar import job_printer
from api.remote_cli import KEEP_CODES, REMOTE_COMMANDS, UsageError
from api.remote_cli import add_commands as add_remote_commands
from api.remote_legal_cli import add_export_commands as add_remote_export_commands
from api.remote_legal_cli import add_matters_and_holds, add_review_commands
from api.settings import Settings
from api.status import LoopStatus, background_status
from api.witness_cli import add_commands as add_witness_commands
from domain.base import user_subject
from domain.credentials import check_username
from domain.errors import InvalidEntry
from domain.practice import Practice
from events.config import ConfigError, StoreConfig
from events.context import acting
from events.keys import KeyError_
from events.ledger import (
    AlreadyInitialised,
    Ledger,
    NotInitialised,
    StoreMismatch,
    create_practice_files,
    record_genesis_key,
    remove_practice_files,
)
from events.loop_beats import read_shared_at
from events.private_files import private_text
from events.rotation import rotate_signing_key
from events.store_errors import DRIVER_ERRORS, classify
from events.tiles import TileMismatch
from events.verification import verify_configured_store
from events.witnessing import WitnessingError
from legal_hold.cli import add_commands as add_legal_hold_commands
from legal_hold.policies import DEFAULT_FLOOR, Floor, set_floor
from legal_hold.production_cli import add_commands as add_production_commands
from projections.ehi_export_cli import add_commands as add_export_commands
from projections.rebuild import UnknownProjection, all_projections, rebuild, runner_for
from projections.runner import log_size
from verify.__main__ import (
    add_checkpoint_options,
    check_outside_cosignatures,
    print_report,
    progress_printer,
    read_checkpoint_options,
)
from verify.cosignature import check_name
from verify.errors import VerificationError

EXIT_OK, EXIT_INVALID, EXIT_MISUSE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        print(f"chartledger: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_MISUSE)


def owner_details(options: argparse.Namespace) -> tuple[str, str, str] | None:
    """The first owner's username, name and password: from the options and
    CHARTLEDGER_OWNER_PASSWORD, else asked for on a terminal, else none (said on stdout)."""
    interactive = sys.stdin.isatty()
    username = options.owner
    if username is None and not interactive:
        return None
    if username is None:
        username = input("First owner's username: ").strip()
    name = options.owner_name or (input("First owner's full name: ").strip() if interactive else "")
    password = os.environ.get("CHARTLEDGER_OWNER_PASSWORD") or ""
    if not password and interactive:
        password = getpass.getpass("First owner's password: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("the two passwords differ")
    if not name:
        raise UsageError("give the first owner's name with --owner-name")
    if not password:
        raise UsageError("set CHARTLEDGER_OWNER_PASSWORD or run init on a terminal to be asked")
    try:
        check_username(username)
        check_password(password)
    except InvalidEntry as e:
        raise UsageError(str(e)) from None
    return username, name, password


def retention_floor(options: argparse.Namespace) -> Floor:
    """The floor no adopted retention policy may go below: the init options, else
    CHARTLEDGER_RETENTION_FLOOR_{ADULT_YEARS,MINOR_YEARS,MAJORITY_AGE}, else the US defaults."""
    found = {}
    for field in ("adult_years", "minor_years", "majority_age"):
        given = getattr(options, f"floor_{field}")
        if given is None:
            given = os.environ.get(f"CHARTLEDGER_RETENTION_FLOOR_{field.upper()}") or None
        if given is None:
            given = getattr(DEFAULT_FLOOR, field)
        try:
            found[field] = int(given)
        except ValueError:
            raise UsageError(f"the retention floor's {field} must be a whole number") from None
    try:
        return Floor(**found)
    except InvalidEntry as e:
        raise UsageError(str(e)) from None


def cmd_init(config: StoreConfig, options: argparse.Namespace) -> int:
    owner = owner_details(options)
    floor = retention_floor(options)
    settings = Settings.from_env()
    if options.origin is not None:
        try:
            check_name(options.origin)
        except VerificationError as e:
            raise UsageError(f"--origin: {e}") from None
    practice, signing_key = create_practice_files(config, options.name, options.origin)
    made = None
    try:
        ledger = Ledger(config)
        try:
            record_genesis_key(ledger, signing_key)
            ledger.save(Practice(practice_id=UUID(practice["practice_id"]), name=options.name))
            if owner is not None:
                username, name, password = owner
                made = new_account(
                    settings,
                    username=username,
                    name=name,
                    role="owner",
                    password=password,
                    with_recovery_codes=True,
                )
                with acting(user_subject(made.user.id), "init"):
                    ledger.save(made.user, made.account)
            # Set by the first owner, or chosen at init. A bare practice (no owner, the default
            # floor) gets the same default, recorded with its first adoption (load_book), so
            # its log starts with the practice alone, as the ledger's own tests expect.
            by = None if made is None else made.user.id
            if by is not None or floor != DEFAULT_FLOOR:
                with acting(None if by is None else user_subject(by), "init"):
                    set_floor(ledger, floor, by=by, at=datetime.now(UTC))
            checkpoint = ledger.checkpointer.issue()
        finally:
            ledger.close()
    except BaseException:
        # Leave no half-made practice behind: the next init must start clean.
        remove_practice_files(config)
        raise
    print(f"Initialised practice {practice['name']!r} ({practice['practice_id']})")
    print(f"  store:        {config.display_location()}")
    print(f"  master key:   {config.master_key_path} (mode 0600)")
    print(f"  signing key:  {config.signing_key_path(signing_key.key_id)} (mode 0600)")
    print(f"  key id:       {signing_key.key_id}")
    print(f"  origin:       {practice['origin']}")
    print(f"  checkpoint:   size {checkpoint.size}")
    print(
        f"  retention floor: adults {floor.adult_years} years after the last encounter; minors "
        f"{floor.minor_years} years past majority at {floor.majority_age} (no policy goes below)"
    )
    print(
        "Back up the keys folder now and keep it apart from the database: without the master "
        "key no record can be read, and anyone holding it can read them all. Publish the key id "
        "above so that verifiers can check bundles against it."
    )
    if made is None:
        print("No owner was created (no --owner and no terminal to ask on).")
        return EXIT_OK
    assert made.totp_secret is not None
    print(f"First owner {made.account.username!r} (user {made.user.id})")
    print(f"  totp secret:  {base32(made.totp_secret)}")
    print(f"  totp uri:     {totp_uri(made.totp_secret, made.account.username)}")
    print(f"  {KEEP_CODES}")
    for code in made.recovery_codes:
        print(f"    {code}")
    return EXIT_OK


def cmd_checkpoint(config: StoreConfig, options: argparse.Namespace) -> int:
    ledger = Ledger(config)
    try:
        try:
            checkpoint = ledger.checkpointer.issue()
        except TileMismatch as e:  # LEDGER_FORMAT.md §12: `chartledger verify` names the tile
            print(f"FAIL: no checkpoint signed: {e}", file=sys.stderr)
            return EXIT_INVALID
        with ledger.db.read() as c:
            c.execute("SELECT note FROM ledger_checkpoints WHERE size = ?", (checkpoint.size,))
            row = c.fetchone()
    finally:
        ledger.close()
    assert row is not None
    sys.stdout.write(bytes(row[0]).decode())
    return EXIT_OK


def cmd_verify(config: StoreConfig, options: argparse.Namespace) -> int:
    try:
        outside, witnesses = read_checkpoint_options(options)
    except VerificationError as e:
        raise UsageError(str(e)) from None
    ledger = Ledger(config)
    try:
        trusted_key = options.trusted_key or ledger.practice.get("genesis_key_id")
        report, opened, disposed = verify_configured_store(
            ledger, trusted_key, progress_printer("verifying"), outside=outside
        )
    finally:
        ledger.close()
    check_outside_cosignatures(report, outside, witnesses)
    code = print_report(config.display_location(), report)
    print(f"payloads: {opened} opened and matching their commitments, {disposed} disposed")
    return code


def cmd_rotate_key(config: StoreConfig, options: argparse.Namespace) -> int:
    ledger = Ledger(config)
    try:
        statement = rotate_signing_key(ledger)
        ledger.checkpointer.issue()
    finally:
        ledger.close()
    print(f"New signing key {statement.key_id} in force from tree size {statement.from_size}")
    print(f"  file: {config.signing_key_path(statement.key_id)} (mode 0600); back it up.")
    return EXIT_OK


def cmd_projections_rebuild(config: StoreConfig, options: argparse.Namespace) -> int:
    ledger = Ledger(config)
    try:
        names = [options.name] if options.name else []
        started = time.perf_counter()
        size = rebuild(ledger, names, progress_printer("rebuilding", unit="events"))
        seconds = time.perf_counter() - started
    finally:
        ledger.close()
    which = options.name or ", ".join(p.name for p in all_projections())
    print(f"Rebuilt {which} from {size} events in {seconds:.1f} s")
    return EXIT_OK


def cmd_projections_status(config: StoreConfig, options: argparse.Namespace) -> int:
    ledger = Ledger(config)
    try:
        runner = runner_for(ledger)
        positions = runner.positions()
        size = log_size(ledger.db)
    finally:
        ledger.close()
    for name, position in sorted(positions.items()):
        print(f"{name}: {position} of {size} events applied")
    return EXIT_OK


def cmd_status_local(config: StoreConfig, options: argparse.Namespace) -> int:
    """``status --local``: the server's background loops, from the heartbeats in the practice
    home (no server; on PostgreSQL the group's shared rows too, on a connection of its own,
    the files alone when the database cannot be reached): one line each; exit 1 when one is
    not ok."""
    if not config.practice_path.exists():
        raise NotInitialised(f"no practice at {config.home}: run `chartledger init` first")
    found = background_status(config.home, shared=lambda: read_shared_at(config.database_url))
    for loop in found.loops:
        print(f"{loop.name}: {loop.state}{_loop_details(loop, found.at)}")
    return EXIT_OK if found.healthy else EXIT_INVALID


def _loop_details(loop: LoopStatus, at: datetime) -> str:
    def when(moment: datetime) -> str:
        ago = max(0, round((at - moment).total_seconds()))
        return f"{moment.strftime('%Y-%m-%dT%H:%M:%SZ')} ({ago} s ago)"

    said = []
    if loop.last_ran is not None:
        said.append(f"last ran {when(loop.last_ran)}")
    elif loop.started is not None:
        said.append(f"started {when(loop.started)}, no round yet")
    if loop.late_after_seconds is not None:
        said.append(f"every {loop.cadence_seconds:g} s, late after {loop.late_after_seconds:g} s")
    if loop.last_failure is not None:
        said.append(f"last failed {when(loop.last_failure)} ({loop.failure})")
    return "".join(f"; {part}" for part in said)


def cmd_verifier_digest(config: StoreConfig, options: argparse.Namespace) -> int:
    """The SHA-256 of chartledger-verify.pyz as this source builds it (verify/package.py): the
    digest a production's carried verifier must have (docs/BUNDLE_FORMAT.md §1.1)."""
    from verify import package

    print(package.digest())
    return EXIT_OK


def cmd_demo(config: StoreConfig, options: argparse.Namespace) -> int:
    from api import demo_logins
    from api.demo import DEMO_LOGINS, MAX_PATIENTS, load_demo

    if not 1 <= options.patients <= MAX_PATIENTS:
        raise UsageError(f"--patients must be from 1 to {MAX_PATIENTS}, not {options.patients}")
    wanted: list[tuple[str, str | None]] = [(u, p) for u, _, _, p in DEMO_LOGINS]
    if options.owner:
        wanted.insert(0, (options.owner, os.environ.get("CHARTLEDGER_OWNER_PASSWORD")))
    ledger = Ledger(config)
    try:
        loaded = load_demo(ledger, Settings.from_env(), patients=options.patients)
        if loaded:
            ledger.checkpointer.issue()
        known = demo_logins.remembered(config.home)
        lines, found = [], []
        for username, password in wanted:
            login = known.get(username)
            if login is None and password:  # not written down: does the password work now?
                login = demo_logins.first_look(ledger, username, password)
                found += [login] if login else []
            if login is None:
                lines.append(f"  {username:<10} (the demo's password does not work for it)")
                continue
            lines.append(demo_logins.line(demo_logins.standing(ledger, login)))
        if found:
            demo_logins.remember(config.home, found)
    finally:
        ledger.close()
    print("Demo practice loaded." if loaded else "The demo practice is already loaded.")
    print("Demo logins (username / password / role / TOTP secret for an authenticator app):")
    for shown in lines:
        print(shown)
    return EXIT_OK


# -- the remote commands: the thin client against a running server -------------------------


def token_file() -> Path:
    return Path(os.environ.get("CHARTLEDGER_TOKEN_FILE") or Path.home() / ".chartledger-token")


def _save_token(server: str, token: str) -> Path:
    path = token_file()
    with private_text(path, exclusive=False) as f:  # an old token file is set to 0600 too
        json.dump({"server": server, "token": token}, f)
    return path


def _client(options: argparse.Namespace) -> Client:
    path = token_file()
    token = None
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("server") == options.server:
            token = saved.get("token")
    if token is None:
        raise UsageError(f"not logged in to {options.server}: run `chartledger --server URL login`")
    # A job the command starts (a production, export, import, backup) shows its progress.
    return Client(options.server, token=token, on_progress=job_printer())


def cmd_login(options: argparse.Namespace) -> int:
    password = os.environ.get("CHARTLEDGER_PASSWORD") or getpass.getpass("Password: ")
    with Client(options.server) as client:
        client.login(options.username, password, options.totp)
        me = client.me()
        assert client.token is not None
        path = _save_token(options.server, client.token)
    print(f"Logged in as {options.username} ({', '.join(me.roles)}); token in {path} (mode 0600)")
    if "owner" in me.roles and me.recovery_codes_remaining == 0:
        print(
            "  You hold no unused recovery codes: issue some now with "
            f"`chartledger --server {options.server} recovery-codes`."
        )
    return EXIT_OK


def cmd_logout(options: argparse.Namespace) -> int:
    with _client(options) as client:
        client.logout()
    token_file().unlink(missing_ok=True)
    print("Logged out")
    return EXIT_OK


def cmd_patients_search(options: argparse.Namespace) -> int:
    with _client(options) as client:
        for p in client.search_patients(options.text):
            print(f"{p.patient_id}  {p.mrn:<10} {p.family_name}, {p.given_name}  {p.birth_date}")
    return EXIT_OK


def cmd_chart_show(options: argparse.Namespace) -> int:
    with _client(options) as client:
        chart = client.chart(options.patient_id)
    for entry in chart.entries:
        fields = {k: v for k, v in entry.state.items() if k not in ("source_message", "content")}
        print(f"{entry.kind} {entry.entry_id} v{entry.version} {entry.last_recorded}")
        print(f"  {json.dumps(fields, sort_keys=True)}")
    return EXIT_OK


REMOTE = {"login", "logout", "patients", "chart", "break-glass", "alerts", "exports", "bulk-export"}
REMOTE |= REMOTE_COMMANDS | JOB_COMMANDS
DEFAULT_SERVER = "http://127.0.0.1:8000"


def is_remote(words: tuple[str, ...], parser: argparse.ArgumentParser) -> bool:
    """Whether the command ``words`` runs against a server (``status`` does unless --local)."""
    return words[0] in REMOTE or bool(parser.get_default("remote"))


def names_server(args: Sequence[str]) -> bool:
    """Whether ``--server`` is given on the command line (before the command's own words):
    then ``matters`` and ``holds`` act over the server rather than on the local store."""
    for arg in args:
        if arg == "--server" or arg.startswith("--server="):
            return True
        if not arg.startswith("-"):
            return False
    return False


def cmd_serve(config: StoreConfig, options: argparse.Namespace) -> int:
    import uvicorn

    # Keep a connection per concurrent request open (see events.config.pool_size).
    os.environ.setdefault("CHARTLEDGER_POOL_SIZE", "16")
    settings = Settings.from_env()  # bad settings stop here, once, rather than in every worker
    workers = options.workers if options.workers is not None else default_workers()
    print(
        f"Chartledger API on http://{options.host}:{options.port}/docs "
        f"({workers} worker process{'es' if workers > 1 else ''})",
        flush=True,
    )
    uvicorn.run(
        "api.asgi:app_from_environment",
        factory=True,
        workers=workers,
        host=options.host,
        port=options.port,
        log_level="warning",
        access_log=False,
        # The client's address is the TCP peer's, unless CHARTLEDGER_TRUSTED_PROXIES names the
        # proxy (api/throttle.py): uvicorn must not take X-Forwarded-For from 127.0.0.1 itself.
        proxy_headers=False,
        # The head's bound where uvicorn offers one (its h11 parser; httptools has none, so
        # the app counts the header fields itself: api/limits.py). Room for the request line.
        h11_max_incomplete_event_size=settings.max_header_bytes + 8_192,
    )
    return EXIT_OK


def default_workers() -> int:
    """One server process per core, up to four: one process's interpreter runs one request at
    a time, and the API is CPU-bound (bench/api.py, 16 clients on 2 cores: chart read p95
    40 ms with two processes, 53 ms with one). Processes share the store, the views (one of
    them keeps them caught up) and the sessions' idle clocks (api/activity.py)."""
    return max(1, min(os.cpu_count() or 1, 4))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def build_parser(remote: bool = False) -> argparse.ArgumentParser:
    """The whole command tree; with ``remote`` (``--server`` given), ``matters`` and ``holds``
    are the commands acting over the server instead of the local ones."""
    parser = _Parser(prog="chartledger", description=__doc__)
    parser.add_argument(
        "--server",
        metavar="URL",
        default=None,
        help="the API the remote commands use (default CHARTLEDGER_SERVER, else "
        f"{DEFAULT_SERVER}); given here, matters and holds act over it too",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    init = commands.add_parser("init", help="create a practice, its keys and its store")
    init.add_argument("--name", default="My Practice", help="the practice's name")
    init.add_argument(
        "--owner",
        metavar="USERNAME",
        help="the first owner's username (password from CHARTLEDGER_OWNER_PASSWORD or asked)",
    )
    init.add_argument("--owner-name", metavar="NAME", help="the first owner's full name")
    init.add_argument(
        "--origin",
        help="the log's name in checkpoints, one the practice controls, e.g. "
        "records.example.org/log (default chartledger.local/<practice id>)",
    )
    for field, what in (
        ("adult-years", "years an adult's record is kept after the last encounter"),
        ("minor-years", "years a minor's record is kept past majority"),
        ("majority-age", "the age of majority"),
    ):
        name = field.replace("-", "_")
        init.add_argument(
            f"--floor-{field}",
            metavar="N",
            help=f"retention floor, {what} (default from CHARTLEDGER_RETENTION_FLOOR_"
            f"{name.upper()}, else {getattr(DEFAULT_FLOOR, name)})",
        )
    init.set_defaults(run=cmd_init)
    checkpoint = commands.add_parser("checkpoint", help="issue a signed checkpoint and print it")
    checkpoint.set_defaults(run=cmd_checkpoint)
    verify = commands.add_parser("verify", help="check the configured store, payloads included")
    verify.add_argument(
        "--trusted-key",
        help="key id the key history must start with (default: the practice's first key)",
    )
    add_checkpoint_options(verify)
    verify.set_defaults(run=cmd_verify)
    rotate = commands.add_parser("rotate-key", help="rotate the checkpoint signing key")
    rotate.set_defaults(run=cmd_rotate_key)
    projections = commands.add_parser("projections", help="the read models built from the log")
    views = projections.add_subparsers(dest="action", required=True, parser_class=_Parser)
    rebuild_views = views.add_parser("rebuild", help="drop a view (or all) and replay the log")
    rebuild_views.add_argument("name", nargs="?", help="the view to rebuild (default: all)")
    rebuild_views.set_defaults(run=cmd_projections_rebuild)
    status = views.add_parser("status", help="how far each view has applied the log")
    status.set_defaults(run=cmd_projections_status)
    digest = commands.add_parser(
        "verifier-digest", help="SHA-256 of the verifier file every production carries"
    )
    digest.set_defaults(run=cmd_verifier_digest)
    demo = commands.add_parser("demo", help="load a small demo practice (known logins)")
    demo.add_argument(
        "--patients", type=int, default=50, help="1 to 10000 (api/demo.py MAX_PATIENTS)"
    )
    demo.add_argument(
        "--owner",
        metavar="USERNAME",
        help="list this owner's login too, its password from CHARTLEDGER_OWNER_PASSWORD "
        "(shown only while that password and the authenticator are still the account's)",
    )
    demo.set_defaults(run=cmd_demo)
    login = commands.add_parser("login", help="(--server) log in and keep the token (0600)")
    login.add_argument("username")
    login.add_argument("--totp", help="the current TOTP code from your authenticator")
    login.set_defaults(run=cmd_login)
    logout = commands.add_parser("logout", help="(--server) end the session")
    logout.set_defaults(run=cmd_logout)
    patients = commands.add_parser("patients", help="(--server) patients")
    patient_actions = patients.add_subparsers(dest="action", required=True, parser_class=_Parser)
    search = patient_actions.add_parser("search", help="search by MRN or name (recorded)")
    search.add_argument("text")
    search.set_defaults(run=cmd_patients_search)
    chart = commands.add_parser("chart", help="(--server) charts")
    chart_actions = chart.add_subparsers(dest="action", required=True, parser_class=_Parser)
    show = chart_actions.add_parser("show", help="show a patient's chart (recorded)")
    show.add_argument("patient_id", type=UUID)
    show.set_defaults(run=cmd_chart_show)
    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="server processes (default: one per core, up to 4)",
    )
    serve.set_defaults(run=cmd_serve)
    add_remote_commands(commands, _client, _save_token)
    add_job_commands(commands, _client)
    add_review_commands(commands, _client)
    add_remote_export_commands(commands, _client)
    add_bulk_commands(commands, _client)
    if remote:
        add_matters_and_holds(commands, _client)
    add_legal_hold_commands(commands, skip=("matters", "holds") if remote else ())
    add_production_commands(commands)
    add_export_commands(commands)
    add_import_commands(commands)
    add_backup_commands(commands)
    add_witness_commands(commands, _Parser)
    document(parser, is_remote)
    return parser


def main(args: Sequence[str] | None = None) -> int:
    try:
        return _main(args)
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as other command-line tools do,
        # and keep the interpreter from complaining again when it flushes stdout on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INVALID


def _refuse(message: object, code: int) -> int:
    """Every remote command's failure: one line on stderr (a server's detail folded into it)."""
    print(f"chartledger: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def _remote(options: argparse.Namespace) -> int:
    if options.server is None:
        options.server = os.environ.get("CHARTLEDGER_SERVER") or DEFAULT_SERVER
    try:
        return int(options.run(options))
    except (UsageError, FileExistsError) as e:
        return _refuse(e, EXIT_MISUSE)
    except ValidationError as e:
        # A request model of the thin client (or of the command) refused the input before
        # anything was sent: which fields and why, never their values (passwords, PHI).
        return _refuse(f"not sent: {invalid_fields(e)}", EXIT_MISUSE)
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:  # --server is no http(s) URL
        return _refuse(f"--server {options.server!r}: {e}", EXIT_MISUSE)
    except ApiError as e:
        return _refuse(e, EXIT_MISUSE if 400 <= e.status < 500 else EXIT_INVALID)
    except (httpx.HTTPError, ValueError) as e:  # unreachable, or an answer not as documented
        return _refuse(e, EXIT_INVALID)


def _main(args: Sequence[str] | None) -> int:
    given = list(sys.argv[1:] if args is None else args)
    options = build_parser(names_server(given)).parse_args(given)
    local_status = options.command == "status" and options.local
    remote = options.command in REMOTE or getattr(options, "remote", False)
    if remote and not local_status:
        return _remote(options)
    try:
        config = StoreConfig.from_env()
        return (cmd_status_local if local_status else options.run)(config, options)
    except (
        ConfigError,
        NotInitialised,
        AlreadyInitialised,
        StoreMismatch,
        KeyError_,
        UsageError,
        UnknownProjection,
        WitnessingError,
    ) as e:
        print(f"chartledger: error: {e}", file=sys.stderr)
        return EXIT_MISUSE
    except (OperationalError, InterfaceError, psycopg.OperationalError, *DRIVER_ERRORS) as e:
        # The store's disk full, its lock held too long, or the store gone (issue 23); any
        # other error from a driver is a bug, and raised as one.
        known = OperationalError | InterfaceError | psycopg.OperationalError
        if not isinstance(e, known) and classify(e) is None:
            raise
        where = config.display_location()
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"chartledger: error: cannot use the database at {where}: {reason}", file=sys.stderr)
        return EXIT_MISUSE


if __name__ == "__main__":
    sys.exit(main())
