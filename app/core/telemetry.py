"""Error tracking (Sentry) and tracing (OpenTelemetry), each off unless configured.

- ``SENTRY_DSN`` set: `sentry_sdk` reports unhandled errors (the API's 500s, logged by the HTTP middleware)
  with the request id (tag ``request_id``) and the signed-in user's id (``user.id``) and nothing personal:
  ``send_default_pii=False``, no request bodies, cookies, query strings or local variables, only an
  allowlist of request headers, and `scrub_event` redacts emails, bearer tokens, JWTs, Stripe keys and
  the configured secrets anywhere in the event (messages and breadcrumbs included).
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` set: spans of every request (FastAPI), MongoDB command (PyMongo
  command monitoring; no statements) and Redis command (arguments replaced by ``?``) go to
  ``<endpoint>/v1/traces`` over OTLP/HTTP in batches. Health probes and /metrics are not traced.

Both SDKs are process-wide: the first app configured in a process owns the tracer provider (an API
process serves one app; tests configure tracing once).
"""

from __future__ import annotations

import logging
import re
from typing import Any, cast

from fastapi import FastAPI

from app.config import Settings
from app.core.context import request_id_var, user_id_var

log = logging.getLogger("app.telemetry")

SAFE_HEADERS = {"accept", "content-type", "content-length", "host", "user-agent", "x-request-id"}
FILTERED = "[Filtered]"
_PATTERNS = [
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),  # email addresses
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),  # JWTs
    re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9]+"),  # Stripe keys
    re.compile(r"(?i)\b(?:cloudinary|mongodb(?:\+srv)?|redis|rediss)://[^\s@/]+:[^\s@/]+@"),  # URL credentials
]
_PROVIDER: Any = None  # opentelemetry.sdk.trace.TracerProvider, once per process


def _secrets(settings: Settings) -> list[str]:
    values = [*settings.jwt_verify_secrets]
    for secret in (settings.stripe_secret_key, settings.stripe_webhook_secret, settings.smtp_password,
                   settings.metrics_token, settings.cloudinary_url, settings.sentry_dsn):
        if secret is not None:
            values.append(secret.get_secret_value())
    return sorted((v for v in values if len(v) >= 8), key=len, reverse=True)


def redact(value: Any, secrets: list[str]) -> Any:
    """``value`` with every string (recursively) stripped of secrets, emails, tokens and keys."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, FILTERED)
        for pattern in _PATTERNS:
            value = pattern.sub(FILTERED, value)
        return value
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    return value


def scrub_event(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """What Sentry may receive of ``event``: request id and user id attached, personal data and secrets gone."""
    request = event.get("request")
    if isinstance(request, dict):
        for key in ("data", "cookies", "query_string", "env"):
            request.pop(key, None)
        headers = request.get("headers") or {}
        request["headers"] = {k: v for k, v in headers.items() if k.lower() in SAFE_HEADERS}
        if isinstance(request.get("url"), str):
            request["url"] = request["url"].split("?", 1)[0]
    user_id = user_id_var.get()
    event["user"] = {"id": user_id} if user_id else {}
    request_id = request_id_var.get()
    if request_id:
        event.setdefault("tags", {})["request_id"] = request_id
    scrubbed: dict[str, Any] = redact(event, _secrets(settings))
    return scrubbed


def setup_sentry(settings: Settings) -> bool:
    """Initialise sentry_sdk when SENTRY_DSN is set; returns whether it did."""
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.scrubber import EventScrubber
    from sentry_sdk.types import Event, Hint

    def before_send(event: Event, hint: Hint) -> Event:
        # Sentry's Event is a TypedDict over the same JSON object that scrub_event edits as a plain dict.
        return cast("Event", scrub_event(cast(dict[str, Any], event), settings))

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(), environment=settings.environment, release="amour-florals@1.0.0",
        send_default_pii=False, include_local_variables=False, max_request_body_size="never",
        event_scrubber=EventScrubber(recursive=True), before_send=before_send,
        before_send_transaction=before_send, traces_sample_rate=settings.sentry_traces_sample_rate,
    )
    return True


def stop_sentry() -> None:
    """Send what is queued (2 s at most) and disable the client."""
    import sentry_sdk

    sentry_sdk.flush(timeout=2)
    sentry_sdk.get_client().close(timeout=2)


def setup_tracing(settings: Settings, app: FastAPI) -> Any:
    """Trace ``app``'s requests and the process's MongoDB/Redis calls when an OTLP endpoint is set.

    Returns the tracer provider (or None). PyMongo is instrumented through command monitoring, which
    applies to clients created afterwards: call this before the app connects.
    """
    global _PROVIDER
    if settings.otel_exporter_otlp_endpoint is None:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if _PROVIDER is None:
        resource = Resource.create({"service.name": settings.otel_service_name,
                                    "deployment.environment": settings.environment})
        _PROVIDER = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER, default always on
        exporter = OTLPSpanExporter(endpoint=f"{settings.otel_exporter_otlp_endpoint}/v1/traces")
        _PROVIDER.add_span_processor(BatchSpanProcessor(exporter))
        log.info("tracing to %s/v1/traces", settings.otel_exporter_otlp_endpoint)
    PymongoInstrumentor().instrument(tracer_provider=_PROVIDER)
    RedisInstrumentor().instrument(tracer_provider=_PROVIDER)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=_PROVIDER, excluded_urls="/api/v1/health,/metrics")
    return _PROVIDER


def stop_tracing(provider: Any) -> None:
    """Export the spans still queued and stop tracing MongoDB and Redis calls (until the next setup)."""
    if provider is None:
        return
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    provider.force_flush()
    PymongoInstrumentor().uninstrument()
    RedisInstrumentor().uninstrument()
