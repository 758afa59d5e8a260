"""HTTP models. Domain objects are never serialised directly; quantities travel as strings
(``"5.2"``, ``"mg/dL"``), never as floats."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyOut(Model):
    seq: int
    key_id: str
    previous: str | None
    from_size: int
