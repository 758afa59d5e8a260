"""`python -m verify bundle` in a virtualenv holding only msgpack and cryptography, with nothing of
the project importable but a copy of verify/: exit 0 on a good bundle, 1 on a tampered one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from events.config import StoreConfig
from events.ledger import Ledger
from legal_hold.production import produce
from tests.integration.test_ledger_store import QUIET
from tests.integration.test_production import a_matter
from tests.support import init_practice
from verify import bundle_format as bf

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def minimal_python() -> Path:
    """A venv with msgpack and cryptography at the project's versions, and nothing else.

    Kept between runs in the temporary folder, keyed by those versions (pip takes ~20 s); built
    beside it and renamed into place, so concurrent runs never see half a venv."""
    wanted = [f"{name}=={metadata.version(name)}" for name in ("msgpack", "cryptography")]
    cached = Path(tempfile.gettempdir()) / ("chartledger-verifier-venv-" + "-".join(wanted))
    python = cached / "bin" / "python"
    if python.exists():
        return python
    building = Path(tempfile.mkdtemp(prefix=cached.name + ".building-"))
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
    installed = subprocess.run(
        [str(building / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", *wanted],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if installed.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        pytest.fail(f"pip could not install {wanted}: {installed.stderr.strip()[-500:]}")
    try:
        building.rename(cached)
    except OSError:  # another run got there first
        shutil.rmtree(building, ignore_errors=True)
    return python


@pytest.fixture
def verifier_only(tmp_path: Path) -> Path:
    """A folder holding a copy of verify/ and nothing else of the project."""
    where = tmp_path / "verifier"
    shutil.copytree(REPO / "verify", where / "verify", ignore=shutil.ignore_patterns("__pycache__"))
    return where


def run(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd)}  # no PYTHONPATH, no venv
    return subprocess.run(
        [str(python), "-s", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_verifier_runs_with_only_msgpack_and_cryptography_installed(
    store_config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    minimal_python: Path,
    verifier_only: Path,
) -> None:
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config, **QUIET)
    try:
        m = a_matter(ledger)
        good = tmp_path / "good.zip"
        produce(ledger, m.matter_id, good, by=m.risk, withhold={m.privileged_position: "work"})
    finally:
        ledger.close()
    # Nothing of the project but verify/ can be imported there (nor its other dependencies).
    probe = run(minimal_python, verifier_only, "-c", "import events")
    assert probe.returncode != 0 and "No module named 'events'" in probe.stderr
    probe = run(minimal_python, verifier_only, "-c", "import eventsourcing")
    assert probe.returncode != 0

    ok = run(minimal_python, verifier_only, "-m", "verify", "bundle", str(good))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[-1].startswith(f"OK: {good}:")

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(tampered, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == bf.EVENTS:
                data = data[:-1] + bytes([data[-1] ^ 1])  # the last record's last byte
            target.writestr(name, data)
    bad = run(minimal_python, verifier_only, "-m", "verify", "bundle", str(tampered))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"FAIL file {bf.EVENTS}: SHA-256 is" in bad.stdout
    assert "Traceback" not in bad.stderr
    misuse = run(minimal_python, verifier_only, "-m", "verify", "bundle", str(tmp_path / "none"))
    assert misuse.returncode == 2 and "no such file" in misuse.stderr
