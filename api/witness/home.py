"""A witness's home folder: its key, the logs it follows, and its state (docs/WITNESS.md §3).

- ``witness.key``: the witness's Ed25519 private key (PEM, mode 0600);
- ``witness.json``: ``{"name": <key name>, "logs": {<origin>: [<log verifier key>, ...]}}``;
- ``witness.sqlite3``: the latest cosigned checkpoint of each log, and refused requests.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from events.keys import SigningKey
from events.private_files import write_private
from verify.cosignature import (
    COSIGNATURE_TYPE,
    NOTE_ED25519_TYPE,
    Vkey,
    check_name,
    format_vkey,
    parse_vkey,
)
from verify.errors import MalformedInput

HOME_ENV = "CHARTLEDGER_WITNESS_HOME"


class WitnessHomeError(ValueError):
    """The witness home is missing, already made, or its files do not fit."""


@dataclass(frozen=True)
class WitnessHome:
    path: Path

    @classmethod
    def from_option(cls, path: str | None) -> WitnessHome:
        chosen = path or os.environ.get(HOME_ENV)
        if not chosen:
            raise WitnessHomeError(f"give the witness's folder with --home or {HOME_ENV}")
        return cls(Path(chosen))

    @property
    def key_path(self) -> Path:
        return self.path / "witness.key"

    @property
    def config_path(self) -> Path:
        return self.path / "witness.json"

    @property
    def state_path(self) -> Path:
        return self.path / "witness.sqlite3"

    def create(self, name: str) -> str:
        """Make the key and an empty list of logs; return the witness's verifier key."""
        try:
            check_name(name)
        except MalformedInput as e:
            raise WitnessHomeError(str(e)) from None
        if self.key_path.exists() or self.config_path.exists():
            raise WitnessHomeError(f"a witness already exists at {self.path}")
        key = SigningKey.generate()
        key.save(self.key_path)
        self._write({"name": name, "logs": {}})
        return format_vkey(name, COSIGNATURE_TYPE, key.public_key)

    def config(self) -> dict[str, object]:
        if not self.config_path.exists():
            raise WitnessHomeError(f"no witness at {self.path}: run `chartledger witness init`")
        value = json.loads(self.config_path.read_text())
        if not isinstance(value, dict):
            raise WitnessHomeError(f"{self.config_path} is not a JSON object")
        return value

    @property
    def name(self) -> str:
        return str(self.config()["name"])

    def key(self) -> SigningKey:
        return SigningKey.load(self.key_path)

    def vkey(self) -> str:
        return format_vkey(self.name, COSIGNATURE_TYPE, self.key().public_key)

    def logs(self) -> dict[str, list[Vkey]]:
        """Each followed origin and the log keys the witness trusts for it."""
        logs = self.config().get("logs", {})
        assert isinstance(logs, dict)
        return {origin: [parse_vkey(text) for text in keys] for origin, keys in logs.items()}

    def follow(self, vkey_text: str) -> Vkey:
        """Trust a log key: the log's origin is the key's name."""
        try:
            vkey = parse_vkey(vkey_text)
        except MalformedInput as e:
            raise WitnessHomeError(str(e)) from None
        if vkey.key_type != NOTE_ED25519_TYPE:
            raise WitnessHomeError("a log's key has type 1 (Ed25519 note signatures)")
        config = self.config()
        logs = config.setdefault("logs", {})
        assert isinstance(logs, dict)
        keys = logs.setdefault(vkey.name, [])
        if vkey_text.strip() not in keys:
            keys.append(vkey_text.strip())
        self._write(config)
        return vkey

    def _write(self, config: dict[str, object]) -> None:
        temporary = self.config_path.with_suffix(".tmp")
        write_private(temporary, (json.dumps(config, indent=2) + "\n").encode())
        temporary.replace(self.config_path)
