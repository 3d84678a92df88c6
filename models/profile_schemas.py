"""Profile shapes of the HTTP API, with field validation (bad values -> 422 naming the field)."""

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

PROFILE_ID_PATTERN = r"^[^\s\x00]{1,200}$"  # no whitespace, no NUL (Postgres text refuses it)
PROFILE_ID = Field(pattern=PROFILE_ID_PATTERN)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")  # E.164


class ProfileFields(BaseModel):
    """Omitted (or null) fields leave the stored value unchanged; attributes merge key by key."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = None
    timezone: str | None = None
    locale: str | None = Field(default=None, max_length=35)
    attributes: dict[str, Any] = {}

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.match(value):
            raise ValueError("not a valid email address")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not PHONE.match(value):
            raise ValueError("phone must be in E.164 form, e.g. +33612345678")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Paris)") from None
        return value


class ProfileUpsert(ProfileFields):
    id: str = PROFILE_ID


class BulkProfiles(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profiles: list[ProfileUpsert] = Field(min_length=1, max_length=10_000)


class ProfileOut(BaseModel):
    id: str
    email: str | None
    phone: str | None
    timezone: str | None
    locale: str | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime
