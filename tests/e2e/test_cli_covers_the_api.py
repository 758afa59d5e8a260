"""The command line covers the API (issue 18), typed as a person would, on both stores.

`chartledger serve` runs in its own processes; every command is its own `chartledger --server
URL ...` process, each user with their own token file. People are named by username, the
patient by MRN, the matter by its number. Bad input is one line and exit 2; a role the server
refuses shows the server's refusal; nothing the CLI prints names the patient.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from unittest import mock
from uuid import uuid4

import httpx

from api import auth
from api.cli import main
from tests.e2e.conftest import (
    CHARTLEDGER,
    OWNER,
    OWNER_PASSWORD,
    Practice,
    add_member,
    code_now,
    served,
)
from tests.e2e.test_clinical import ada

MATTER = "CV-2026-17"
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PHI = ("Ada", "Quill")  # the patient's name, which no command prints


@dataclass
class Person:
    """Someone at a terminal: their username, password, authenticator and token file."""

    url: str
    username: str
    password: str
    totp_secret: bytes
    token_file: Path

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """The command in a process of its own, as typed at a terminal."""
        done = subprocess.run(
            [*CHARTLEDGER, "--server", self.url, *args],
            env={**os.environ, **self.env(env)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert not any(word in done.stdout + done.stderr for word in PHI), args
        return done

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        return {
            "CHARTLEDGER_TOKEN_FILE": str(self.token_file),
            "CHARTLEDGER_PASSWORD": self.password,
            **extra,
        }

    def here(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """The same command run in this process: the same parser and code, minus the seconds a
        new interpreter takes to start on a busy machine (most commands of the story)."""
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.dict(os.environ, self.env(env)), redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(["--server", self.url, *args])
            except SystemExit as exit:  # argparse's refusal
                code = int(str(exit.code))
        done = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
        assert not any(word in done.stdout + done.stderr for word in PHI), args
        return done

    def ok(self, *args: str, typed: bool = False, **env: str) -> str:
        done = (self.run if typed else self.here)(*args, **env)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def refused(self, *args: str, typed: bool = False, **env: str) -> str:
        """The one line on stderr of a command that exits 2."""
        done = (self.run if typed else self.here)(*args, **env)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("chartledger: error:"), lines
        return lines[0]

    def login(self, typed: bool = False) -> None:
        self.ok("login", self.username, "--totp", code_now(self.totp_secret), typed=typed)


def up(url: str, seconds: float = 180) -> None:
    """Wait for the served app: on a loaded machine its two workers may take longer to start
    than ``served`` waits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not start within {seconds} s")


def one(pattern: str, text: str) -> str:
    found = re.search(pattern, text, re.MULTILINE)
    assert found, (pattern, text)
    return found.group(1)


def test_users_holds_break_glass_alerts_and_exports_from_the_command_line(
    practice: Practice, tmp_path: Path
) -> None:
    owner_client = practice.owner()
    patient = owner_client.register_patient(ada())
    mrn = patient.mrn
    casey_member = add_member(practice, owner_client, "casey", "Casey Carer", "clinician")
    add_member(practice, owner_client, "temp", "Temp Locum", "clinician")

    with served(dict(os.environ)) as url:
        up(url)
        olive = Person(url, OWNER, OWNER_PASSWORD, practice.totp_secret, tmp_path / "olive")
        olive.login(typed=True)

        # -- users: create prints the enrollment code; the new user enrolls and logs in.
        out = olive.ok(
            "users", "create", "rita", "--name", "Rita Risk", "--role", "risk_manager", typed=True
        )
        code = one(r"^    (\S+)$", out)
        enrolled = olive.ok(
            "enroll",
            "rita",
            typed=True,
            CHARTLEDGER_ENROLLMENT_CODE=code,
            CHARTLEDGER_NEW_PASSWORD="rita-password-1",
        )
        secret = auth.from_base32(one(r"totp secret:\s+([A-Z2-7]+)", enrolled))
        rita = Person(url, "rita", "rita-password-1", secret, tmp_path / "rita")
        rita.login()
        casey = Person(url, "casey", casey_member.password, casey_member.totp_secret,
                       tmp_path / "casey")  # fmt: skip
        casey.login()

        listed = olive.ok("users", "list")
        assert {"olive", "rita", "casey", "temp"} <= set(re.findall(r"^\S+\s+(\S+)", listed, re.M))
        assert "owner,risk_manager" in olive.ok("users", "grant", "olive", "risk_manager")
        assert "clinician,auditor" in olive.ok("users", "grant", "casey", "auditor")
        assert "now holds clinician" in olive.ok("users", "revoke-role", "casey", "auditor")
        assert "deactivated" in olive.ok("users", "deactivate", "temp", "--reason", "locum left")
        assert "no user with the username 'nobody'" in olive.refused(
            "users", "deactivate", "nobody", "--reason", "x"
        )
        # A risk manager reads the directory but administers nobody: the server refuses, its
        # problem shown.
        assert "403" in rita.refused("users", "reset", "casey", typed=True)

        # -- matters and holds: the owner (also a risk manager) names the custodian and the MRN.
        assert "Opened matter" in olive.ok(
            "matters", "create", "--name", "Doe v. Riverside", "--number", MATTER
        )
        assert MATTER in olive.ok("matters", "list")
        placed = olive.ok(
            "holds", "place", MATTER, "--name", "Doe records", "--patient", mrn,
            "--custodian", "casey", "--notice", "Keep every record of the patient named.",
            typed=True,
        )  # fmt: skip
        hold = one(rf"^Placed hold ({UUID_RE})", placed)
        assert "1 patient(s), 1 custodian(s)" in placed
        assert hold in olive.ok("holds", "list", "--matter", MATTER)
        # A risk manager names people and patients as the owner did (the directory and the
        # patient search are theirs too); a clinician is refused by the server, its problem shown.
        placed_by_rita = rita.ok(
            "holds", "place", MATTER, "--name", "Rita's hold", "--patient", mrn,
            "--custodian", "casey", "--silent",
        )  # fmt: skip
        assert "1 patient(s), 1 custodian(s)" in placed_by_rita
        ritas = one(rf"^Placed hold ({UUID_RE})", placed_by_rita)
        rita.ok("holds", "release", ritas, "--reason", "placed to show the names")
        assert "needs the role risk_manager" in casey.refused(
            "holds", "place", MATTER, "--name", "x", "--custodian", "rita"
        )
        assert "403" in casey.refused("matters", "list", typed=True)
        assert "risk_manager" in casey.refused("holds", "report", hold)
        assert "no matter numbered 'CV-0'" in olive.refused("holds", "place", "CV-0", "--name", "x")
        assert "not a hold's id" in olive.refused("holds", "notice", "not-an-id", "--text", "x")

        # The custodian reads their notice and acknowledges it.
        mine = casey.ok("holds", "mine", typed=True)
        assert hold in mine and "Keep every record" in mine and "acknowledged not yet" in mine
        assert "Acknowledged notice version 1" in casey.ok("holds", "ack", hold, "--version", "1")
        report = rita.ok("holds", "report", hold)
        assert "acknowledged 20" in report and "outstanding: 0" in report
        assert "version 2" in olive.ok("holds", "notice", hold, "--text", "Keep it all, still.")
        scoped = olive.ok(
            "holds", "scope", hold, "--patient", mrn, "--custodian", "casey", "--custodian",
            "rita", "--reason", "Rita's files too",
        )  # fmt: skip
        assert "1 patient(s), 2 custodian(s)" in scoped
        assert "Partly released" in olive.ok(
            "holds", "release", hold, "--reason", "not hers", "--custodian", "rita"
        )
        assert re.search(r"^\d+ sent$", olive.ok("holds", "remind"), re.M)

        # -- break-glass: a clinician outside the care team opens the chart in an emergency.
        opened = casey.ok(
            "break-glass", "open", mrn, "--reason", "unresponsive in the lobby", typed=True
        )
        access = one(rf"^Emergency access ({UUID_RE})", opened)
        assert "not sent: reason (" in casey.refused(
            "break-glass", "open", mrn, "--reason", "short"
        )
        alerts = olive.ok("alerts", "list", "--open")
        alert = one(rf"^({UUID_RE}) .*break_glass", alerts)
        assert "acknowledged" in olive.ok("alerts", "acknowledge", alert)
        assert alert not in olive.ok("alerts", "list", "--open")
        assert "403" in casey.refused("alerts", "list")
        assert access in rita.ok("break-glass", "list", "--unreviewed")
        reviewed = rita.ok("break-glass", "review", access, "--outcome", "appropriate")
        assert "reviewed: appropriate" in reviewed
        assert access not in rita.ok("break-glass", "list", "--unreviewed")
        assert "invalid choice" in rita.refused(
            "break-glass", "review", access, "--outcome", "fine"
        )

        # -- exports: started, written by the server, downloaded into a new folder.
        started = olive.ok(
            "exports", "start", "--patient", mrn, "--out", str(tmp_path / "ehi"), typed=True
        )
        export = one(rf"^Export ({UUID_RE})", started)
        assert (tmp_path / "ehi" / "Patient.ndjson").read_bytes()
        assert (tmp_path / "ehi" / "manifest.json").exists()
        assert (tmp_path / "ehi" / "native").is_dir()
        olive.ok("exports", "download", export, "--out", str(tmp_path / "again"))
        assert (tmp_path / "again" / "Patient.ndjson").read_bytes() == (
            tmp_path / "ehi" / "Patient.ndjson"
        ).read_bytes()
        assert "exists" in olive.refused("exports", "download", export, "--out", str(tmp_path))
        assert (tmp_path / "again" / "EHI_EXPORT.md").read_bytes()
        gone = tmp_path / "gone"
        assert "404" in olive.refused("exports", "download", str(uuid4()), "--out", str(gone))
        assert not gone.exists() and not list(tmp_path.glob(".gone.partial-*"))
        assert "403" in casey.refused("exports", "start", "--all")
        # -- the same export over FHIR Bulk Data: kicked off, polled, every file downloaded.
        bulk = tmp_path / "bulk"
        kinds = "Patient,Observation"
        done = olive.ok("bulk-export", "--patient", mrn, "--type", kinds, "--out", str(bulk))
        assert "Exported" in done and (bulk / "Patient.ndjson").read_bytes()
        assert (bulk / "README.md").exists() and (bulk / "native" / "records.msgpack").exists()
        assert not (bulk / "AuditEvent.ndjson").exists()
        nope = str(tmp_path / "nope")
        assert "400" in olive.refused("bulk-export", "--type", "Spaceship", "--out", nope)
        assert "403" in casey.refused("bulk-export", "--out", nope)

        # -- the matter closes; a reset ends the custodian's sessions.
        assert "409" in olive.refused("matters", "close", MATTER, "--reason", "settled")
        assert "Released hold" in olive.ok("holds", "release", hold, "--reason", "settled")
        assert "Closed matter" in olive.ok("matters", "close", MATTER, "--reason", "settled")
        reset = olive.ok("users", "reset", "casey")
        assert "every session of theirs ended" in reset and one(r"^    (\S+)$", reset)
        assert "401" in casey.run("holds", "mine").stderr
