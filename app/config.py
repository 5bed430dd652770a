"""One `Settings` object: every knob is an environment variable (documented in .env.example)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    # Secrets being rotated out: tokens signed with them are still accepted (until they expire); new ones
    # are signed with JWT_SECRET only. See docs/operations.md ("Rotate JWT_SECRET").
    jwt_previous_secrets: list[SecretStr] = []
    jwt_issuer: str = "amour-florals"
    jwt_audience: str = "amour-florals-api"
    access_token_minutes: int = Field(15, ge=1, le=1440)
    refresh_token_days: int = Field(30, ge=1, le=365)
    refresh_cookie_secure: bool = True
    password_reset_minutes: int = Field(60, ge=5, le=1440)
    email_verify_hours: int = Field(48, ge=1, le=720)

    # --- http -----------------------------------------------------------------------------------
    # Vite dev server, and examples/storefront-live served by `python -m http.server 8080`.
    cors_origins: list[str] = ["http://localhost:5173", "http://127.0.0.1:5173", "http://localhost:8080",
                               "http://127.0.0.1:8080"]
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    behind_https: bool = False
    # When set, GET /metrics requires "Authorization: Bearer <METRICS_TOKEN>"; required in production.
    metrics_token: SecretStr | None = None
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
    rate_limit_default_scope: Literal["process", "shared"] = Field(
        "process", description="Where RATE_LIMIT_DEFAULT is counted: `process` (in each API process's memory, so "
        "N processes allow up to N times the limit per IP; no Redis round trip per request) or `shared` (in "
        "Redis when REDIS_URL is set). The limits on abusable flows (login, register, promo codes, ...) are "
        "always shared through Redis when it is set.")
    rate_limit_login_ip: str = "20/minute"
    rate_limit_login_email: str = "5/minute"
    rate_limit_register: str = "10/hour"
    rate_limit_forgot: str = "5/hour"
    rate_limit_resend: str = "5/hour"
    # Failed promo-code attempts (a code that is refused); successful ones are not counted.
    rate_limit_promo_ip: str = "30/hour"
    rate_limit_promo_cart: str = "10/hour"
    # Newsletter sign-up (per client IP and per address) and back-in-stock requests (per IP and per address).
    rate_limit_newsletter_ip: str = "10/hour"
    rate_limit_newsletter_email: str = "3/hour"
    rate_limit_stock_alert_ip: str = "20/hour"
    rate_limit_stock_alert_email: str = "10/hour"
    # Campaign test sends, per admin.
    rate_limit_campaign_test: str = "20/hour"

    # --- email ----------------------------------------------------------------------------------
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_use_tls: bool = False
    smtp_timeout: float = 10.0
    email_from: str = "Amour Florals <hello@amourflorals.com>"
    email_max_attempts: int = Field(12, ge=1, le=100)
    email_unsubscribe_mailto: str | None = Field(
        "unsubscribe@amourflorals.com", pattern=r"^[^@\s<>,]+@[^@\s<>,]+$",
        description="Mailbox named in the List-Unsubscribe header of marketing email beside the one-click URL "
                    "(read by staff; the URL unsubscribes at once). Empty: the URL only.")

    # --- marketing email (newsletter, campaigns, back in stock, abandoned carts) ---------------------------
    newsletter_confirm_hours: int = Field(72, ge=1, le=720, description="Lifetime of a newsletter confirmation "
                                          "(double opt-in) link")
    marketing_batch_size: int = Field(200, ge=1, le=5000, description="Recipients a campaign materialises per "
                                      "batch (and carts one abandoned-cart pass reads per batch); progress is "
                                      "recorded after each batch")
    marketing_poll_seconds: float = Field(30.0, gt=0, le=3600, description="How often the campaign, back-in-stock "
                                          "and abandoned-cart jobs look for work when nothing woke them")
    abandoned_cart_after_minutes: int = Field(120, ge=1, le=30 * 24 * 60, description="A signed-in customer's cart "
                                              "left unchanged this long gets one reminder (newsletter subscribers)")
    abandoned_cart_lookback_hours: int = Field(72, ge=1, le=24 * 90, description="Carts left longer ago than "
                                               "ABANDONED_CART_AFTER_MINUTES plus this get no reminder (e.g. "
                                               "old carts when the feature is first switched on)")

    # --- background workers -------------------------------------------------------------------------
    workers_enabled: bool = True
    worker_poll_seconds: float = Field(2.0, gt=0)
    worker_lease_seconds: float = Field(60.0, gt=0)

    # --- catalog --------------------------------------------------------------------------------
    catalog_cache_ttl_seconds: int = Field(300, ge=1, le=86400,
                                           description="Upper bound on how long a cached catalog read lives")
    catalog_stock_ttl_seconds: int = Field(5, ge=1, le=300, description="Longest life of cached stock levels "
                                           "(every change through inventory.py invalidates them at once)")
    catalog_cache_max_entries: int = Field(2000, ge=10, le=1_000_000, description="In-process LRU size")
    catalog_http_max_age: int = Field(0, ge=0, le=3600,
                                      description="Cache-Control max-age of public catalog GETs; 0 = revalidate")
    catalog_search_max_results: int = Field(500, ge=10, le=10_000, description="Cap on full-text matches ranked")
    catalog_total_cap: int = Field(1000, ge=10, le=1_000_000, description="`/products` counts matches up to this "
                                   "many; beyond it `total` is the cap and `total_capped` is true (\"1,000+\")")
    low_stock_alert_email: str | None = Field(None, description="Where low-stock alerts go; unset = no email")

    # --- live events (Server-Sent Events under /api/v1/events) ------------------------------------------
    events_ping_seconds: float = Field(15, gt=0, le=15, description="Keep-alive comment interval of every stream")
    events_queue_size: int = Field(64, ge=4, le=10_000, description="Events one stream may have waiting; a "
                                   "client further behind is disconnected (it reconnects to the current state)")
    events_send_timeout_seconds: float = Field(10, gt=0, le=300, description="A stream whose client accepts no "
                                               "bytes for this long is closed")
    events_max_stream_seconds: float = Field(1800, gt=0, le=86400, description="Longest life of one stream "
                                             "(clients reconnect)")
    events_recheck_seconds: float = Field(30, gt=0, le=3600, description="How often a signed-in stream re-checks "
                                          "its session and account (revoked: the stream ends)")
    events_ticket_seconds: int = Field(30, ge=1, le=60, description="Lifetime of a single-use stream ticket")
    events_max_streams_per_ip: int = Field(20, ge=1, le=10_000)
    events_max_streams_per_user: int = Field(5, ge=1, le=1000)
    catalog_version_ttl_seconds: float = Field(2.0, gt=0, le=60, description="With Redis: longest time a process "
                                               "trusts its in-memory catalog version without re-reading it (bus "
                                               "messages invalidate it at once)")
    catalog_stale_seconds: float = Field(30, ge=0, le=3600, description="How long past its TTL a cached catalog "
                                         "entry or response may still be served while one background refresh "
                                         "replaces it (stale-while-revalidate); 0 = load on the request")
    catalog_responses_max_bytes: int = Field(64 * 1024 * 1024, ge=1024 * 1024, le=4 * 1024 ** 3,
                                             description="Bytes of ready catalog responses kept per process "
                                             "(beside CATALOG_CACHE_MAX_ENTRIES of them at most)")
    catalog_fill_wait_seconds: float = Field(3.0, gt=0, le=60, description="With Redis: how long a process waits "
                                             "for another process that is loading the same catalog entry (the "
                                             "life of the short lock) before it loads the entry itself")

    # --- shop -----------------------------------------------------------------------------------
    shop_timezone: str = "America/New_York"
    currency: str = "USD"
    tax_rate_bps: int = Field(0, ge=0, le=5000, description="Sales tax in basis points (825 = 8.25%).")

    # --- cart -----------------------------------------------------------------------------------
    guest_cart_days: int = Field(14, ge=1, le=90)

    # --- delivery (defaults; admins edit the live values in the DeliveryConfig document) ----------------
    same_day_cutoff: str = Field("13:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    delivery_max_days_ahead: int = Field(60, ge=0, le=365)
    delivery_options_days: int = Field(14, ge=1, le=60, description="Dates listed when no date is asked for.")
    delivery_slot_capacity: int = Field(20, ge=0, le=10_000)
    pickup_slot_capacity: int = Field(30, ge=0, le=10_000)

    # --- orders and payments -----------------------------------------------------------------------
    stripe_secret_key: SecretStr | None = Field(None, description="Unset: card payments are refused with 503.")
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = Field(None, description="Tests only: base address of a local Stripe double.")
    stripe_max_network_retries: int = Field(2, ge=0, le=5)
    stripe_min_amounts: dict[str, int] = Field(
        default_factory=lambda: {"usd": 50},
        description="Smallest card charge per currency in minor units (Stripe's minimum charge amounts); a card "
                    "checkout whose total is above 0 and below it is refused before anything is held.")
    order_payment_minutes: int = Field(30, ge=1, le=24 * 60)
    reconcile_after_minutes: int = Field(5, ge=1, le=24 * 60)
    order_job_batch: int = Field(50, ge=1, le=1000)

    # --- error tracking and tracing (both off unless configured) -------------------------------------
    sentry_dsn: SecretStr | None = Field(None, description="Send unhandled errors to Sentry (no personal data).")
    sentry_traces_sample_rate: float = Field(0.0, ge=0, le=1, description="Share of requests traced by Sentry.")
    otel_exporter_otlp_endpoint: str | None = Field(None, description="OTLP/HTTP collector base URL: traces of "
                                                    "requests, MongoDB and Redis go to <endpoint>/v1/traces.")
    otel_service_name: str = "amour-florals-api"

    # --- reports ----------------------------------------------------------------------------------
    reports_max_rows: int = Field(50_000, ge=1, le=1_000_000, description="Most orders (or accounts) the "
                                  "customers report reads; a larger one is refused with a 422 asking for a shorter "
                                  "range. Sales, top-product and overview figures come from daily rollups and are "
                                  "never refused.")
    rollup_retry_seconds: int = Field(60, ge=1, le=24 * 3600, description="A change of the daily sales rollups "
                                      "still pending this long after its order changed (the process stopped in "
                                      "between) is applied by the background job.")
    rollup_token_hours: int = Field(48, ge=1, le=24 * 365, description="How long a day's rollup document keeps "
                                    "the tokens of the changes applied to it (what makes a retried change a no-op); "
                                    "must exceed the longest a change can stay pending.")

    # --- audit log --------------------------------------------------------------------------------
    audit_retention_days: int = Field(400, ge=1, le=3650, description="Audit entries are deleted (TTL index) "
                                      "this many days after the change; applies to entries written from then on.")
    audit_recovery_grace_seconds: float = Field(300, ge=1, le=86400, description="An audit intent still pending "
                                                "this long belongs to a process that died mid-change: the "
                                                "recovery job commits what changed or drops the intent.")

    # --- shopper-behaviour analytics --------------------------------------------------------------------
    analytics_enabled: bool = Field(True, description="Record funnel events (product views, searches, cart "
                                    "adds, checkouts, paid orders).")
    analytics_retention_days: int = Field(180, ge=1, le=3650, description="Events are deleted (TTL index) this "
                                          "many days after they happened.")
    analytics_queue_size: int = Field(10_000, ge=1, le=1_000_000, description="Events waiting to be written per "
                                      "process; when full, new events are dropped and counted in /metrics.")
    analytics_batch_size: int = Field(500, ge=1, le=10_000, description="Events per stored bucket document; a "
                                      "batch this big is written at once.")
    analytics_flush_seconds: float = Field(2.0, gt=0, le=300, description="Longest time an event waits in the "
                                           "queue (a full batch is written at once).")
    analytics_forward_url: str | None = Field(None, description="Also POST every batch as JSON to this external "
                                              "collector; unset = off.")
    analytics_forward_token: SecretStr | None = Field(None, description="Sent as a bearer token to the collector.")
    analytics_forward_max_attempts: int = Field(5, ge=1, le=20, description="Attempts per batch before it is "
                                                "dropped (counted in /metrics).")
    analytics_forward_backoff_seconds: float = Field(1.0, gt=0, le=300, description="First retry delay; doubles "
                                                     "with each attempt.")
    analytics_forward_timeout_seconds: float = Field(5.0, gt=0, le=60, description="Timeout of one POST.")
    analytics_forward_queue_batches: int = Field(100, ge=1, le=10_000, description="Batches waiting for the "
                                                 "collector; when full, the oldest is dropped.")

    @field_validator("shop_timezone")
    @classmethod
    def _valid_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):  # not-found is a KeyError: make it a validation error
            raise ValueError(f"unknown IANA time zone {v!r}") from None
        return v

    @field_validator("stripe_min_amounts")
    @classmethod
    def _valid_min_amounts(cls, v: dict[str, int]) -> dict[str, int]:
        out = {}
        for currency, amount in v.items():
            if not re.fullmatch(r"[A-Za-z]{3}", currency) or amount < 1:
                raise ValueError("STRIPE_MIN_AMOUNTS maps ISO currency codes to positive amounts in minor units, "
                                 'e.g. {"usd": 50}')
            out[currency.lower()] = amount
        return out

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
            for old in self.jwt_previous_secrets:  # still verifies tokens: as strong as the current one
                if old.get_secret_value() in WEAK_SECRETS or len(old.get_secret_value()) < 32:
                    raise ValueError("JWT_PREVIOUS_SECRETS may hold only random values of at least 32 characters")
            metrics = self.metrics_token.get_secret_value() if self.metrics_token else ""
            if len(metrics) < 16:
                raise ValueError("METRICS_TOKEN (at least 16 characters) is required in production: /metrics "
                                 "is never public there")
            if not self.mongodb_url:
                raise ValueError("MONGODB_URL is required in production (the embedded server is for development)")
            if self.stripe_api_base:
                raise ValueError("STRIPE_API_BASE is for tests only and must be unset in production")
            if self.stripe_secret_key and not self.stripe_webhook_secret:
                raise ValueError("STRIPE_WEBHOOK_SECRET is required when STRIPE_SECRET_KEY is set")
        return self

    @field_validator("metrics_token", "sentry_dsn", "analytics_forward_token")
    @classmethod
    def _empty_is_unset(cls, v: SecretStr | None) -> SecretStr | None:
        return v if v is not None and v.get_secret_value() else None

    @field_validator("email_unsubscribe_mailto", mode="before")
    @classmethod
    def _empty_mailto_is_unset(cls, v: object) -> object:
        return None if v == "" else v

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _valid_otlp_endpoint(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not v.startswith(("http://", "https://")):
            raise ValueError("OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL such as http://collector:4318")
        return v.rstrip("/")

    @field_validator("analytics_forward_url")
    @classmethod
    def _valid_forward_url(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not v.startswith(("http://", "https://")):
            raise ValueError("ANALYTICS_FORWARD_URL must be an http(s) URL such as https://collector.example/v1/events")
        return v

    @property
    def jwt_verify_secrets(self) -> list[str]:
        """Every secret a token may be signed with: JWT_SECRET first, then JWT_PREVIOUS_SECRETS in order."""
        return [self.jwt_secret.get_secret_value(), *(s.get_secret_value() for s in self.jwt_previous_secrets)]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.shop_timezone)

    def min_charge(self, currency: str) -> int:
        """The smallest card charge in ``currency`` (minor units): STRIPE_MIN_AMOUNTS, else 1."""
        return self.stripe_min_amounts.get(currency.lower(), 1)


@lru_cache
def get_settings() -> Settings:
    return Settings()
