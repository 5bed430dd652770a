"""One `Settings` object: every knob is an environment variable (documented in .env.example)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-insecure-secret-change-me-0123456789"
WEAK_SECRETS = {"", "secret", "changeme", "change-me", DEV_JWT_SECRET}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "test", "staging", "production"] = "development"
    app_name: str = "Amour Florals API"
    log_level: str = "INFO"
    log_json: bool = True

    # --- database -------------------------------------------------------------------------------
    mongodb_url: str | None = Field(None, description="Unset: the embedded nx-27017 server is started.")
    mongodb_db: str = "amour_florals"
    embedded_db_dir: Path = Path("var")

    # --- redis (rate-limit counters, catalog cache); optional ---------------------------------------
    redis_url: str | None = None

    # --- auth -----------------------------------------------------------------------------------
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "amour-florals"
    jwt_audience: str = "amour-florals-api"
    access_token_minutes: int = Field(15, ge=1, le=1440)
    refresh_token_days: int = Field(30, ge=1, le=365)
    refresh_cookie_secure: bool = True
    password_reset_minutes: int = Field(60, ge=5, le=1440)
    email_verify_hours: int = Field(48, ge=1, le=720)

    # --- http -----------------------------------------------------------------------------------
    cors_origins: list[str] = ["http://localhost:5173", "http://127.0.0.1:5173"]
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    behind_https: bool = False
    public_base_url: str = "http://127.0.0.1:8000"
    storefront_url: str = "http://localhost:5173"

    # --- media (product images) ---------------------------------------------------------------------
    media_dir: Path = Field(Path("var/media"), description="Local image storage (used when CLOUDINARY_URL is unset).")
    media_url_prefix: str = Field("/media", description="Path the API serves local images under, or an absolute "
                                  "CDN base URL that serves MEDIA_DIR.")
    cloudinary_url: SecretStr | None = Field(None, description="cloudinary://API_KEY:API_SECRET@CLOUD_NAME")
    cloudinary_upload_prefix: str | None = Field(None, description="Upload API base URL (tests, self-hosted).")

    # --- rate limits (limits' notation) ------------------------------------------------------------
    rate_limit_enabled: bool = True
    rate_limit_default: str = "300/minute"
    rate_limit_login_ip: str = "20/minute"
    rate_limit_login_email: str = "5/minute"
    rate_limit_register: str = "10/hour"
    rate_limit_forgot: str = "5/hour"
    rate_limit_resend: str = "5/hour"

    # --- email ----------------------------------------------------------------------------------
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_use_tls: bool = False
    smtp_timeout: float = 10.0
    email_from: str = "Amour Florals <hello@amourflorals.test>"
    email_max_attempts: int = Field(12, ge=1, le=100)

    # --- background workers -------------------------------------------------------------------------
    workers_enabled: bool = True
    worker_poll_seconds: float = Field(2.0, gt=0)
    worker_lease_seconds: float = Field(60.0, gt=0)

    # --- shop -----------------------------------------------------------------------------------
    shop_timezone: str = "America/New_York"
    currency: str = "USD"

    @field_validator("shop_timezone")
    @classmethod
    def _valid_zone(cls, v: str) -> str:
        ZoneInfo(v)
        return v

    @field_validator("media_url_prefix")
    @classmethod
    def _valid_media_prefix(cls, v: str) -> str:
        v = v.rstrip("/")
        if not (v.startswith("/") or v.startswith(("http://", "https://"))):
            raise ValueError("MEDIA_URL_PREFIX must be a path such as /media or an absolute http(s) URL")
        return v

    @field_validator("cloudinary_url")
    @classmethod
    def _valid_cloudinary_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and v.get_secret_value():
            from urllib.parse import urlsplit

            parts = urlsplit(v.get_secret_value())
            if parts.scheme != "cloudinary" or not (parts.username and parts.password and parts.hostname):
                raise ValueError("CLOUDINARY_URL must look like cloudinary://API_KEY:API_SECRET@CLOUD_NAME")
        return v if v is not None and v.get_secret_value() else None

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment == "production":
            secret = self.jwt_secret.get_secret_value()
            if secret in WEAK_SECRETS or len(secret) < 32:
                raise ValueError("JWT_SECRET must be set to a random value of at least 32 characters in production")
            if not self.mongodb_url:
                raise ValueError("MONGODB_URL is required in production (the embedded server is for development)")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.shop_timezone)


@lru_cache
def get_settings() -> Settings:
    return Settings()
