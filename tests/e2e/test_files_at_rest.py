"""Files at rest under a umask of 022 (issue 17), on both stores: everything Chartledger writes
(the store and its WAL and SHM, keys, practice.json, the login throttle and session clocks,
lock files, exports, productions, the notice outbox, backups, restored homes, a token file, and
the folders it makes for them, an output path's missing parents included) is 0600 in 0700
folders, in process and from real `chartledger` and `chartledger serve` processes. Folders
that existed before are the user's and keep their mode."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.auth import from_base32
from api.cli import main as chartledger
from api.client import Client
from api.hold_schemas import HoldIn, ScopeIn
from events.config import StoreConfig
from events.ledger import Ledger
from tests.e2e.conftest import CHARTLEDGER, ITERATIONS, OWNER_PASSWORD, Practice, code_now, served
from tests.e2e.test_clinical import ada, glucose, in_care, staffed
from tests.e2e.test_security_headers import assert_protected
from tests.support import QUIET, init_practice

LOOSE_UMASK = 0o022  # the usual default: without care, files 0644 in folders 0755


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The process's umask 022 for the test (and any process it starts), restored after."""
    old = os.umask(LOOSE_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def not_private(root: Path) -> list[str]:
    """Every folder under ``root`` that is not 0700 and every file not 0600 (with its mode);
    ``root`` itself is the test's and is not looked at."""
    wrong = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = path.lstat()
            want = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
            if stat.S_IMODE(info.st_mode) != want:
                wrong.append(f"{path.relative_to(root)}: {stat.S_IMODE(info.st_mode):o}")
    return wrong


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def expected_in_home(home: Path, sqlite: bool) -> list[str]:
    """What must be there, so the walk cannot pass by finding nothing."""
    names = ["practice.json", "keys/master.key"]
    if sqlite:  # the views in it hold PHI in clear; SQLite gives -wal and -shm the file's mode
        names += ["chartledger.sqlite3", "chartledger.sqlite3-wal", "chartledger.sqlite3-shm"]
        # On PostgreSQL the throttle's counts and the idle clocks are tables of the store
        # (docs/DEPLOYMENT.md), shared by every host; on SQLite, files of this one.
        names += ["login-throttle", "session-activity"]
    return [n for n in names if not (home / n).is_file()]


@pytest.mark.usefixtures("loose_umask")  # before the practice fixture runs `chartledger init`
def test_everything_written_in_process_is_0600_in_0700_folders(
    practice: Practice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert os.umask(LOOSE_UMASK) == LOOSE_UMASK  # still in force
    home = practice.settings.store.home
    sqlite = practice.settings.store.database_url is None
    owner, casey, risk = staffed(practice)
    patient = casey.register_patient(ada()).patient_id
    in_care(owner, patient, casey)
    casey.record_lab(glucose(patient))
    assert casey.chart(patient).entries
    exported = risk.export_ehi(patient)
    matter = risk.open_matter("Doe v. Practice", "CV-2026-17")
    custodian = casey.me().user_id
    scope = ScopeIn(patients=[patient], custodians=[custodian])
    risk.place_hold(matter.matter_id, HoldIn(name="records", scope=scope, notice="Keep all."))
    assert risk.remind()
    produced = risk.produce(matter.matter_id)

    # The command line, into output paths the user names: missing parents are made 0700.
    users = tmp_path / "user"
    by_risk, by_owner = str(risk.me().user_id), practice.owner_id
    export_out = users / "new" / "deeper" / "ehi"
    assert (
        chartledger(
            ["export", "--patient", str(patient), "--out", str(export_out), "--by", by_risk]
        )
        == 0
    )
    bundle = users / "new" / "bundle.zip"
    produce = ["produce", "--matter", str(matter.matter_id), "--out", str(bundle), "--by", by_risk]
    assert chartledger(produce) == 0
    backup = users / "backups" / "first"
    assert chartledger(["backup", "--out", str(backup), "--by", by_owner]) == 0
    restored = tmp_path / "restored" / "home"
    monkeypatch.setenv("CHARTLEDGER_HOME", str(restored))
    monkeypatch.delenv("CHARTLEDGER_DATABASE_URL", raising=False)
    master_key = str(home / "keys" / "master.key")
    assert chartledger(["restore", str(backup), "--master-key", master_key]) == 0

    assert not expected_in_home(home, sqlite)
    ours = exported["extension"]["https://chartledger.local/fhir/ehi-export"]["exportId"]
    assert {"manifest.json", "native/records.msgpack"} <= files_under(home / "exports" / ours)
    assert (home / "productions" / f"{produced['production_id']}.zip").is_file()
    assert len(list((home / "outbox").glob("*.eml"))) == 1
    assert {"manifest.json", "Patient.ndjson"} <= files_under(export_out)
    assert bundle.is_file() and "manifest.json" in files_under(backup)
    assert (restored / "chartledger.sqlite3").is_file() and (restored / "keys").is_dir()
    assert not_private(tmp_path) == []


def test_a_folder_the_user_made_keeps_its_mode_and_what_we_write_in_it_is_0600(
    loose_umask: None, practice: Practice, tmp_path: Path
) -> None:
    """A backup goes into a new or empty folder: one the user made (0755 here) is theirs."""
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chmod(theirs, 0o755)
    assert chartledger(["backup", "--out", str(theirs), "--by", practice.owner_id]) == 0
    assert stat.S_IMODE(theirs.stat().st_mode) == 0o755
    assert "manifest.json" in files_under(theirs)
    assert not_private(theirs) == []


def test_real_processes_under_umask_022_write_only_private_files(
    store_config: StoreConfig,
    tmp_path: Path,
    loose_umask: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`chartledger init`, `serve` (two workers) with reads and writes, an export, an
    outbox notice and a production over HTTP, then `backup` and `restore`: each a process of
    its own, inheriting the umask of 022 (about 15 s on an idle machine: five processes start),
    and a remote CLI login's token file."""
    home = store_config.home
    env = {
        **os.environ,
        "CHARTLEDGER_HOME": str(home),
        "CHARTLEDGER_PBKDF2_ITERATIONS": str(ITERATIONS),
        "CHARTLEDGER_OWNER_PASSWORD": OWNER_PASSWORD,
    }
    env.pop("CHARTLEDGER_DATABASE_URL", None)
    if store_config.database_url:
        env["CHARTLEDGER_DATABASE_URL"] = store_config.database_url

    def run(*args: str, environment: dict[str, str] = env) -> str:
        done = subprocess.run(
            [*CHARTLEDGER, *args],
            env=environment,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    made = run("init", "--name", "At Rest", "--owner", "olive", "--owner-name", "Olive")
    owner_id = re.search(r"First owner 'olive' \(user ([0-9a-f-]+)\)", made)
    secret = re.search(r"totp secret:  ([A-Z2-7]+)", made)
    assert owner_id and secret
    with served(env) as url:
        owner = Client(url)
        owner.login("olive", OWNER_PASSWORD, code_now(from_base32(secret.group(1))))
        risk, _ = enrolled(url, owner, "rita", "risk_manager")
        clinician, casey_secret = enrolled(url, owner, "casey", "clinician")
        monkeypatch.setenv("CHARTLEDGER_TOKEN_FILE", str(tmp_path / "cli" / "token"))
        monkeypatch.setenv("CHARTLEDGER_PASSWORD", "casey-password-1")
        login = ["--server", url, "login", "casey", "--totp", code_now(casey_secret)]
        assert chartledger(login) == 0
        capsys.readouterr()
        patient = clinician.register_patient(ada()).patient_id
        in_care(owner, patient, clinician)
        clinician.record_lab(glucose(patient))
        chart = clinician.request("GET", f"/patients/{patient}/chart", params={"purpose": "TREAT"})
        assert chart.json()["entries"]
        assert_protected(chart)  # the response headers from a real uvicorn worker too
        exported = owner.export_ehi(all_patients=True, purpose="HOPERAT")
        matter = risk.open_matter("Roe v. Practice", "CV-2026-18")
        scope = ScopeIn(patients=[patient], custodians=[clinician.me().user_id])
        risk.place_hold(matter.matter_id, HoldIn(name="records", scope=scope, notice="Keep."))
        assert risk.remind()
        produced = risk.produce(matter.matter_id)
        # While the server runs: SQLite's -wal and -shm exist (a clean stop removes them).
        assert not expected_in_home(home, store_config.database_url is None)
        assert not_private(tmp_path) == []
    backup = tmp_path / "backups" / "first"
    run("backup", "--out", str(backup), "--by", owner_id.group(1))
    restored = tmp_path / "restored"
    into_sqlite = {k: v for k, v in env.items() if k != "CHARTLEDGER_DATABASE_URL"}
    master_key = str(home / "keys" / "master.key")
    run(
        "restore",
        str(backup),
        "--master-key",
        master_key,
        environment={**into_sqlite, "CHARTLEDGER_HOME": str(restored)},
    )

    ours = exported["extension"]["https://chartledger.local/fhir/ehi-export"]["exportId"]
    assert "native/records.msgpack" in files_under(home / "exports" / ours)
    assert (home / "productions" / f"{produced['production_id']}.zip").is_file()
    assert list((home / "outbox").glob("*.eml"))
    assert (tmp_path / "cli" / "token").is_file() and "manifest.json" in files_under(backup)
    assert (restored / "chartledger.sqlite3").is_file()
    assert not_private(tmp_path) == []


def enrolled(url: str, owner: Client, username: str, role: str) -> tuple[Client, bytes]:
    """A new user made by the owner, enrolled and logged in; with their TOTP secret."""
    made = owner.create_user(username, username.title(), role)
    client = Client(url)
    password = f"{username}-password-1"
    done = client.enroll(username, made.enrollment_code, password)
    assert done.totp_secret is not None
    secret = from_base32(done.totp_secret)
    client.login(username, password, code_now(secret))
    return client, secret


def test_a_store_an_older_version_left_0644_is_0600_once_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loose_umask: None
) -> None:
    config = StoreConfig(home=tmp_path / "home")
    init_practice(config, monkeypatch)
    store = [config.sqlite_path.with_name(config.sqlite_path.name + s) for s in ("", "-wal")]
    ledger = Ledger(config, **QUIET)
    try:
        for path in store:  # as umask 022 left them before files were made 0600
            os.chmod(path, 0o644)
        Ledger(config, **QUIET).close()
        assert [stat.S_IMODE(p.stat().st_mode) for p in store] == [0o600, 0o600]
    finally:
        ledger.close()
