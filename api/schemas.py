"""HTTP models. Domain objects are never serialised directly; quantities travel as strings
(``"5.2"``, ``"mg/dL"``), never as floats."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyOut(Model):
    seq: int
    key_id: str
    previous: str | None
    from_size: int


class LoginIn(Model):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str | None = Field(default=None, max_length=12)


class RecoverIn(Model):
    username: str = Field(min_length=1, max_length=64)
    recovery_code: str = Field(min_length=1, max_length=64)
    new_password: str = Field(min_length=1, max_length=1024)


class SessionOut(Model):
    token: str
    session_id: UUID
    user_id: UUID


class MeOut(Model):
    user_id: UUID
    roles: list[str]
    session_id: UUID


class UserIn(Model):
    username: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    role: str
    password: str = Field(min_length=1, max_length=1024)


class UserOut(Model):
    user_id: UUID
    username: str
    name: str
    roles: list[str]
    active: bool


class NewUserOut(UserOut):
    totp_secret: str | None = Field(description="base32; shown once, for the user's app")
    totp_uri: str | None


class RoleIn(Model):
    role: str


class ReasonIn(Model):
    reason: str = Field(min_length=1, max_length=500)


class PasswordIn(Model):
    password: str = Field(min_length=1, max_length=1024)
