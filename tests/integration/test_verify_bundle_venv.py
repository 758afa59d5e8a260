"""`python -m verify bundle` in a virtualenv holding only msgpack and cryptography, with nothing of
the project importable but a copy of verify/ (or the verifier a bundle carries, as one file):
exit 0 on a good bundle, 1 on a tampered one."""

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

from api.cli import main as chartledger
from events.config import StoreConfig
from events.ledger import Ledger
from legal_hold.production import produce
from tests.integration.test_ledger_store import QUIET
from tests.integration.test_production import a_matter
from tests.support import init_practice
from verify import bundle_format as bf
from verify import package
from verify.canonical import decode

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


def test_the_verifier_carried_in_a_bundle_runs_alone_and_is_the_published_one(
    store_config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    minimal_python: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config, **QUIET)
    try:
        m = a_matter(ledger)
        good = tmp_path / "good.zip"
        produce(ledger, m.matter_id, good, by=m.risk)
    finally:
        ledger.close()
    # The attorney unzips the production and takes the verifier out of it: nothing else.
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(good) as archive:
        archive.extractall(unzipped)
    alone = tmp_path / "alone"
    alone.mkdir()
    carried = alone / package.NAME
    shutil.copy(unzipped / package.NAME, carried)
    probe = run(minimal_python, alone, "-c", "import verify")
    assert probe.returncode != 0 and "No module named 'verify'" in probe.stderr

    ok = run(minimal_python, alone, str(carried), "bundle", str(good))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[-1].startswith(f"OK: {good}:")

    # One flipped byte inside a rendering of the bundle, and the carried verifier says so.
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(tampered, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "images/CLCV20261-0000001.pdf":
                data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
            target.writestr(name, data)
    bad = run(minimal_python, alone, str(carried), "bundle", str(tampered))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL file images/CLCV20261-0000001.pdf: SHA-256 is" in bad.stdout

    # The published verifier: the same bytes as built from this source, listed in the signed
    # manifest, and its verify/ folder is the source's.
    assert carried.read_bytes() == package.build()
    manifest = decode(zipfile.ZipFile(good).read(bf.MANIFEST))
    listed = {f["path"]: f["sha256"].hex() for f in manifest["files"]}
    assert listed[package.NAME] == package.digest()
    with zipfile.ZipFile(carried) as pyz:
        inside = {n: pyz.read(n) for n in pyz.namelist() if n.startswith("verify/")}
    assert inside == {f"verify/{p.name}": p.read_bytes() for p in (REPO / "verify").glob("*.py")}
    digest = run(minimal_python, REPO, "-m", "verify.package", "--digest")
    assert digest.stdout.strip() == package.digest(), digest.stderr
    capsys.readouterr()  # what init printed
    assert chartledger(["verifier-digest"]) == 0
    assert capsys.readouterr().out.strip() == package.digest()
