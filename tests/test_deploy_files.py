"""docker-compose.yml: the API waits for the migrations, and every app container gets the production settings.
(`.ci/run` also validates the file with `docker-compose config`.)"""

from __future__ import annotations

from pathlib import Path

import yaml

from app.config import Settings

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


def test_the_api_starts_after_the_migrations_completed_and_both_can_start_in_production(monkeypatch):
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert services["api"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["command"][:2] == ["amour-florals", "migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "migrate"):
        env = services[name]["environment"]
        assert {"JWT_SECRET", "METRICS_TOKEN", "MONGODB_URL"} <= set(env), name
        with monkeypatch.context() as m:
            for key in Settings.model_fields:
                m.delenv(key.upper(), raising=False)
            for key, value in env.items():  # as compose passes them, ${VAR:-default} taking its default
                value = str(value)
                if value.startswith("${"):
                    value = value.split(":-", 1)[1].rstrip("}") if ":-" in value else "required-" + "x" * 40
                m.setenv(key, value)
            settings = Settings(_env_file=None)
            assert settings.environment == "production" and settings.metrics_token is not None
