"""User, profile and address API schemas."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator

from app.core.pagination import PageParams
from app.core.text import FreeText
from app.core.types import Bool, UtcDateTime
from app.models.user import Role, User
from app.schemas.common import StrictModel

US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND "
    "OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR VI GU AS MP".split()
)

Occasion = Literal[
    "birthday", "anniversary", "love_romance", "wedding", "sympathy", "get_well", "congratulations",
    "thank_you", "new_baby", "just_because", "mothers_day", "valentines_day",
]
Name = Annotated[str, FreeText(80, min_length=1)]


def normalize_us_phone(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10 or digits[0] in "01" or digits[3] in "01":
        raise ValueError("must be a US phone number with 10 digits, e.g. (212) 555-0142")
    return f"+1{digits}"


def check_state(value: str) -> str:
    if value not in US_STATES:
        raise ValueError("must be a US state or territory code such as NY or CA")
    return value


UsPhone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=25, pattern=r"^[0-9()+. -]+$"),
                    AfterValidator(normalize_us_phone)]
StateCode = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=2, max_length=2,
                                             pattern=r"^[A-Za-z]{2}$"), AfterValidator(check_state)]
Zip = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{5}(-\d{4})?$")]
Line = Annotated[str, FreeText(120, min_length=3)]
OptLine = Annotated[str, FreeText(120)]
City = Annotated[str, FreeText(80, min_length=2)]
Label = Annotated[str, FreeText(40)]


def _not_null(value: object) -> object:
    """PATCH fields that may be omitted but not cleared: an explicit null is a 422, not a stored None."""
    if value is None:
        raise ValueError("may be omitted, but not null")
    return value


NewsletterStatus = Literal["none", "pending", "confirmed", "unsubscribed"]


class Preferences(BaseModel):
    email_notifications: bool = True
    newsletter: bool = Field(False, description="Subscribed to the newsletter (and cart reminders): the address's "
                                                "subscription is confirmed. The same fact as `/newsletter/*`.")
    newsletter_status: NewsletterStatus = Field(
        "none", description="`pending`: waiting for the confirmation link sent to the address (an unverified "
                            "account that turned `newsletter` on); `none`: never subscribed.")
    favorite_occasions: list[Occasion] = Field(default_factory=list, max_length=12)


class PreferencesPatch(StrictModel):
    email_notifications: Bool | None = None
    newsletter: Bool | None = Field(None, description="`true` subscribes: at once when the account's address is "
                                                      "verified, else a confirmation link is emailed (status "
                                                      "`pending`). `false` unsubscribes.")
    favorite_occasions: list[Occasion] | None = Field(None, max_length=12)

    _required = field_validator("email_notifications", "newsletter", "favorite_occasions")(_not_null)


class UserOut(BaseModel):
    id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    role: Role
    is_active: bool
    email_verified: bool
    preferences: Preferences
    created_at: UtcDateTime


class ProfilePatch(StrictModel):
    first_name: Name | None = None
    last_name: Name | None = None
    phone: UsPhone | None = None  # null removes the phone number
    preferences: PreferencesPatch | None = None

    _required = field_validator("first_name", "last_name", "preferences")(_not_null)


class ChangePasswordIn(StrictModel):
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    new_password: Annotated[str, StringConstraints(min_length=10, max_length=128)]


class DeleteAccountIn(StrictModel):
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class AddressIn(StrictModel):
    label: Label | None = None
    first_name: Name
    last_name: Name
    line1: Line
    line2: OptLine | None = None
    city: City
    state: StateCode
    zip: Zip
    phone: UsPhone | None = None
    is_default: Bool = False


class AddressPatch(StrictModel):
    label: Label | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    line1: Line | None = None
    line2: OptLine | None = None
    city: City | None = None
    state: StateCode | None = None
    zip: Zip | None = None
    phone: UsPhone | None = None
    is_default: Bool | None = None

    _required = field_validator("first_name", "last_name", "line1", "city", "state", "zip", "is_default")(_not_null)


class AddressOut(BaseModel):
    id: str
    label: str | None
    first_name: str
    last_name: str
    line1: str
    line2: str | None
    city: str
    state: str
    zip: str
    phone: str | None
    is_default: bool
    created_at: UtcDateTime


class UserListParams(PageParams):
    q: str | None = Field(None, min_length=1, max_length=100, description="Part of the email or a name.")
    role: Role | None = None
    active: bool | None = None


class AdminUserPatch(StrictModel):
    role: Role | None = None
    is_active: Bool | None = None


def user_out(user: User, newsletter_status: str | None) -> UserOut:
    """The API view of ``user``; ``newsletter_status`` is the status of the address's newsletter subscription
    (None: there is none), read by the caller (app/services/accounts.profiles)."""
    prefs = {**user.preferences.model_dump(), "newsletter": newsletter_status == "confirmed",
             "newsletter_status": newsletter_status or "none"}
    return UserOut(
        id=user.id, email=user.email, first_name=user.first_name, last_name=user.last_name, phone=user.phone,
        role=user.role, is_active=user.is_active, email_verified=user.email_verified_at is not None,
        preferences=Preferences.model_validate(prefs), created_at=user.created_at,
    )
