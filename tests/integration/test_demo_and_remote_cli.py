"""`chartledger demo` loads the demo practice once; the remote subcommands (`--server URL login`,
`patients search`, `chart show`, `logout`) drive a running server through the thin client and
keep the token in a 0600 file."""

from __future__ import annotations

import re
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from api import auth
from api.app import create_app
from api.cli import main as chartledger
from api.settings import Settings
from events.config import StoreConfig
from tests.support import set_env


def test_demo_then_the_remote_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = StoreConfig(home=tmp_path / "home")
    set_env(config, monkeypatch)
    monkeypatch.setenv("CHARTLEDGER_PBKDF2_ITERATIONS", "1000")
    assert chartledger(["init", "--name", "Demo"]) == 0
    assert chartledger(["demo", "--patients", "6"]) == 0
    out = capsys.readouterr().out
    assert "Demo practice loaded." in out
    ames = re.search(
        r"^  dr\.ames +demo-clinician-1 +clinician +totp secret:  ([A-Z2-7]+)$", out, re.M
    )
    assert ames, out
    assert chartledger(["demo", "--patients", "6"]) == 0
    again = capsys.readouterr().out
    assert "already loaded" in again and ames.group(1) in again  # printed each time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(store=config, pbkdf2_iterations=1000, background=False)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        token = tmp_path / "token.json"
        monkeypatch.setenv("CHARTLEDGER_TOKEN_FILE", str(token))
        monkeypatch.setenv("CHARTLEDGER_PASSWORD", "demo-clinician-1")
        totp = auth.totp(auth.from_base32(ames.group(1)), int(time.time()))
        assert chartledger(["--server", url, "login", "dr.ames", "--totp", totp]) == 0
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
        capsys.readouterr()
        assert chartledger(["--server", url, "patients", "search", "DEMO-0001"]) == 0
        found = capsys.readouterr().out
        assert "DEMO-0001" in found
        patient_id = found.split()[0]
        assert chartledger(["--server", url, "chart", "show", patient_id]) == 0
        assert "LabResult" in capsys.readouterr().out
        lab = ["--server", url, "labs", "record", patient_id, "--loinc", "2345-7"]
        lab += ["--test", "Glucose", "--value", "5.20", "--lab", "Acme"]
        assert chartledger([*lab, "--unit", "mg/dL"]) == 0
        assert "5.20 mg/dL" in capsys.readouterr().out
        assert chartledger([*lab, "--unit", "furlongs"]) == 2  # refused by the server: 4xx
        refused = capsys.readouterr().err.strip().splitlines()
        assert len(refused) == 1 and refused[0].startswith("chartledger: error:")
        assert chartledger(["--server", url, "notes", "draft", patient_id, "--text", "Seen."]) == 0
        note_id = capsys.readouterr().out.split()[1]
        assert chartledger(["--server", url, "notes", "sign", note_id]) == 0
        amend = ["--text", "Also: fasting.", "--reason", "omitted"]
        assert chartledger(["--server", url, "notes", "amend", note_id, *amend]) == 0
        assert "(signed, 1 addenda)" in capsys.readouterr().out
        # The access report is for auditors and risk managers: a wrong role is misuse (2).
        assert chartledger(["--server", url, "access-report", patient_id]) == 2
        assert "403" in capsys.readouterr().err
        assert chartledger(["--server", url, "logout"]) == 0
        assert not token.exists()
        assert chartledger(["--server", url, "chart", "show", patient_id]) == 2  # not logged in
    finally:
        server.should_exit = True
        thread.join(10)
