"""User accounts (storage)."""

from __future__ import annotations

from enum import StrEnum

from beanie import Document
from pydantic import BaseModel, Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from app.models.base import UtcDateTime, id_field, now_field


class Role(StrEnum):
    customer = "customer"
    staff = "staff"
    admin = "admin"


class Address(BaseModel):
    id: str = id_field("adr")
    label: str | None = None
    first_name: str
    last_name: str
    line1: str
    line2: str | None = None
    city: str
    state: str
    zip: str
    phone: str | None = None
    is_default: bool = False
    created_at: UtcDateTime = now_field()


class Preferences(BaseModel):
    """Stored preferences. The newsletter preference is not here: it is the address's
    ``NewsletterSubscription`` (app/models/marketing.py), the one record of marketing consent."""

    email_notifications: bool = True
    favorite_occasions: list[str] = Field(default_factory=list)


class User(Document):
    id: str = id_field("usr")  # type: ignore[assignment]  # our ids are prefixed strings, not ObjectId
    email: str
    password_hash: str | None = None
    first_name: str
    last_name: str
    phone: str | None = None
    role: Role = Role.customer
    is_active: bool = True
    email_verified_at: UtcDateTime | None = None
    preferences: Preferences = Field(default_factory=Preferences)
    addresses: list[Address] = Field(default_factory=list)
    favorites: list[str] = Field(default_factory=list)
    # Bumped by every whole-array write (addresses): the optimistic-concurrency guard.
    version: int = 0
    # Access tokens issued before this instant are refused (logout-all, password change, deactivation).
    tokens_valid_after: UtcDateTime | None = None
    # Raised by every security event (password change or reset, deactivation, role change, deletion,
    # logout-all): one-time links carry the stamp they were issued under and die when it moves on.
    security_stamp: int = 0
    last_login_at: UtcDateTime | None = None
    deleted_at: UtcDateTime | None = None
    created_at: UtcDateTime = now_field()
    updated_at: UtcDateTime = now_field()

    class Settings:
        name = "users"
        indexes = [
            IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
            IndexModel([("role", ASCENDING), ("is_active", ASCENDING)], name="role_active"),
            IndexModel([("created_at", DESCENDING)], name="created_desc"),
        ]

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()
