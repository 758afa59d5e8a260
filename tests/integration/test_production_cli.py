"""`chartledger produce` as a local administrator uses it, then `python -m verify bundle` on the
file it wrote, on both stores."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from api.cli import main
from domain.users import User
from events.config import StoreConfig
from events.ledger import Ledger
from tests.integration.test_production import a_matter
from tests.support import init_practice
from verify.__main__ import main as verify_main


def test_produce_writes_a_bundle_that_verifies_and_refuses_misuse_in_one_line(
    store_config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config)
    try:
        risk = User.register(name="Rita Risk", role="risk_manager")
        owner = User.register(name="Olga Owner", role="owner")
        ledger.save(risk, owner)
        m = a_matter(ledger)
    finally:
        ledger.close()
    capsys.readouterr()
    out = tmp_path / "bundle.zip"
    base = ["produce", "--matter", str(m.matter_id), "--out", str(out)]

    # Refused, one line each, nothing written: an owner; a bad claim; an unknown matter.
    assert main([*base, "--by", str(owner.id)]) == 2
    assert "not an active risk manager" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([*base, "--by", str(risk.id), "--withhold", "first=privileged"])
    assert exit_.value.code == 2
    assert "'first=privileged' is not POSITION=CLAIM" in capsys.readouterr().err
    unknown = ["produce", "--matter", str(uuid4()), "--out", str(out), "--by", str(risk.id)]
    assert main(unknown) == 2
    err = capsys.readouterr().err
    assert err.startswith("chartledger: refused:") and len(err.splitlines()) == 1
    assert not out.exists()

    claim = f"{m.privileged_position}=attorney-client"
    assert main([*base, "--by", str(risk.id), "--withhold", claim]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"Produced {out}: ") and "SHA-256 " in printed
    assert verify_main(["bundle", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"OK event {m.privileged_position}: privileged (attorney-client)" in "\n".join(lines)
    assert lines[-1].startswith(f"OK: {out}:")
    # The same file again is refused rather than overwritten.
    assert main([*base, "--by", str(risk.id)]) == 2
    assert "exists already" in capsys.readouterr().err
