"""Settings: environment variables, and refusing unsafe production configurations."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import DEV_JWT_SECRET, Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
STRONG_SECRET = "k3J9-x7Qp2mVb8Lr5Tz1Wc4Yh6Nd0Fs2Gu8Ae"


def prod(**values) -> Settings:
    return Settings(_env_file=None, **{"environment": "production", "mongodb_url": "mongodb://db:27017",
                                       "jwt_secret": STRONG_SECRET, "metrics_token": "scrape-token-0123456789",
                                       **values})


def test_production_with_a_strong_secret_and_a_database_starts():
    s = prod()
    assert s.environment == "production" and s.jwt_secret.get_secret_value() == STRONG_SECRET


@pytest.mark.parametrize("secret", [DEV_JWT_SECRET, "", "secret", "changeme", "short-but-random-9f8a7"])
def test_production_refuses_a_default_or_weak_jwt_secret(secret):
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        prod(jwt_secret=secret)


def test_production_refuses_to_run_without_mongodb_url():
    with pytest.raises(ValidationError, match="MONGODB_URL"):
        prod(mongodb_url=None)


def test_development_accepts_the_defaults():
    s = Settings(_env_file=None)
    assert s.environment == "development" and s.mongodb_url is None
    assert s.jwt_secret.get_secret_value() == DEV_JWT_SECRET


def test_production_is_checked_from_the_environment(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("MONGODB_URL", "mongodb://db:27017")
    monkeypatch.setenv("METRICS_TOKEN", "scrape-token-0123456789")
    monkeypatch.delenv("JWT_SECRET", raising=False)
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(_env_file=None)
    monkeypatch.setenv("JWT_SECRET", STRONG_SECRET)
    assert Settings(_env_file=None).environment == "production"


def test_values_come_from_environment_variables(monkeypatch):
    monkeypatch.setenv("ACCESS_TOKEN_MINUTES", "5")
    monkeypatch.setenv("RATE_LIMIT_LOGIN_EMAIL", "3/minute")
    monkeypatch.setenv("CORS_ORIGINS", '["https://shop.example"]')
    monkeypatch.setenv("BEHIND_HTTPS", "true")
    s = Settings(_env_file=None)
    assert (s.access_token_minutes, s.rate_limit_login_email, s.cors_origins, s.behind_https) == (
        5, "3/minute", ["https://shop.example"], True)


def test_env_file_is_read(tmp_path):
    env = tmp_path / ".env"
    env.write_text("SHOP_TIMEZONE=America/Chicago\nSMTP_PORT=2525\n")
    s = Settings(_env_file=env)
    assert s.shop_timezone == "America/Chicago" and s.smtp_port == 2525 and s.tz.key == "America/Chicago"


@pytest.mark.parametrize(("field", "value"), [
    ("shop_timezone", "Mars/Olympus"), ("access_token_minutes", 0), ("environment", "prod"),
    ("worker_poll_seconds", 0), ("analytics_forward_url", "collector.example/v1"), ("analytics_queue_size", 0),
    ("audit_retention_days", 0),
])
def test_invalid_values_are_refused(field, value):
    with pytest.raises(ValidationError):
        Settings(_env_file=None, **{field: value})


def test_env_example_lists_every_setting_with_its_default(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    text = ENV_EXAMPLE.read_text()
    listed = {line.split("=", 1)[0].lstrip("# ").strip() for line in text.splitlines() if "=" in line}
    missing = {name.upper() for name in Settings.model_fields} - listed
    assert not missing, f".env.example lacks {sorted(missing)}"
    # Copied unchanged to .env it configures exactly the defaults.
    assert Settings(_env_file=ENV_EXAMPLE).model_dump() == Settings(_env_file=None).model_dump()
