"""App factory: settings, middleware, error handlers, routers, and the lifespan (DB, Redis, workers)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from app.composition import Runtime, open_services, response_store
from app.config import Settings, get_settings
from app.core import bus as event_bus
from app.core.cors import ProblemCORSMiddleware
from app.core.docs import install_docs
from app.core.embedded_mongo import EmbeddedMongo
from app.core.errors import install_error_handlers
from app.core.http import HttpMiddleware
from app.core.http_cache import ResponseCacheMiddleware
from app.core.logging import configure_logging
from app.core.openapi import install as install_openapi
from app.core.query import known_query_parameters
from app.core.ratelimit import build_limiter, default_limit
from app.core.redis import make_redis
from app.core.routing import guard_included_routers
from app.core.telemetry import setup_sentry, setup_tracing, stop_sentry, stop_tracing
from app.models.db import connect
from app.routers import API_PREFIX, ROUTERS, ops, payments
from app.schemas.events import document_streams
from app.services import analytics
from app.services.storage import make_storage, media_app

log = logging.getLogger("app")

TAGS = [
    {"name": "auth", "description": "Registration, login, token refresh, password reset, email verification."},
    {"name": "account", "description": "The signed-in customer's profile and addresses."},
    {"name": "favorites", "description": "The signed-in customer's favorite products (at most 200)."},
    {"name": "catalog", "description": "Categories, bouquets, filters and facets, search suggestions, sitemap."},
    {"name": "reviews", "description": "Product reviews: public lists and summaries; customers write their own."},
    {"name": "cart", "description": "The shopping cart of a customer or a guest (`X-Cart-Token`); all amounts "
                                    "computed by the server."},
    {"name": "delivery", "description": "Delivery and store-pickup options: dates, time slots, fees."},
    {"name": "checkout", "description": "Turn the cart into an order and start its payment (Idempotency-Key)."},
    {"name": "orders", "description": "A customer's orders, tracking and cancellation; guests use X-Order-Token."},
    {"name": "payments", "description": "The Stripe webhook."},
    {"name": "newsletter", "description": "Newsletter sign-up with double opt-in, confirmation and one-click "
                                          "unsubscribe (RFC 8058); no sign-in needed."},
    {"name": "events", "description": "Live stock, order status and the staff board as Server-Sent Events "
                                      "(`text/event-stream`); private streams open with a single-use ticket."},
    {"name": "admin: users", "description": "User management (admins)."},
    {"name": "admin: catalog", "description": "Categories and products (shop staff)."},
    {"name": "admin: product images", "description": "Upload, order, describe and delete product images (staff)."},
    {"name": "admin: inventory", "description": "Stock levels and low-stock report (shop staff)."},
    {"name": "admin: reviews", "description": "Review moderation: hide and unhide (staff)."},
    {"name": "admin: orders", "description": "Order management for staff: status, refunds, notes, settlement."},
    {"name": "admin: delivery", "description": "Delivery zones, time slots and capacity, blackout dates (admins)."},
    {"name": "admin: promo codes", "description": "Promo codes (admins)."},
    {"name": "admin: campaigns", "description": "Newsletter campaigns: drafts, preview, test send, schedule, "
                                                "cancel, statistics (admins)."},
    {"name": "admin: reports", "description": "Sales, top products, customers and overview reports; shopper "
                                              "behaviour: funnel, searches, product interest, cart abandonment "
                                              "(staff)."},
    {"name": "admin: audit", "description": "The audit log of every staff and admin change (admins; read-only)."},
    {"name": "health", "description": "Liveness and readiness."},
]

DESCRIPTION = """JSON REST API of the Amour Florals flower shop.

* **Errors** are RFC 9457 `application/problem+json` (`Problem`): handle them by `code`.
* **Money** is integer minor units (cents) beside an ISO 4217 `currency`; datetimes are UTC ISO 8601.
* **Rate limits**: every operation (except health probes and the Stripe webhook) is limited per client IP;
  over the limit the answer is 429 with `Retry-After`.
* **Guests** keep a cart with `X-Cart-Token` and read their orders with `X-Order-Token`.
* **Browsers** should sign in with `X-Session-Mode: cookie`: the refresh token then lives only in an
  httpOnly cookie.

The integrator's guide is `docs/integrating.md` in the repository."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    sentry = setup_sentry(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt: Runtime = app.state.runtime
        url = settings.mongodb_url
        if not url:
            rt.embedded = EmbeddedMongo(settings.embedded_db_dir / "mongo")
            url = rt.embedded.start()
            log.warning("MONGODB_URL is unset: using the embedded nx-27017 server (development/demo only)")
        mongo = rt.mongo = await connect(settings, url)
        rt.redis = make_redis(settings.redis_url)
        await app.state.limiter.start(rt.redis)
        bus = rt.bus = event_bus.EventBus(settings.redis_url, namespace=settings.mongodb_db,
                                          queue_size=settings.events_queue_size)
        await bus.start()
        event_bus.install(bus)
        jobs = open_services(rt)
        if settings.analytics_enabled:
            recorder = rt.analytics = analytics.AnalyticsRecorder(settings)
            recorder.start()
            analytics.install(recorder)
        if settings.workers_enabled:
            jobs.start()
        try:
            yield
        finally:
            await jobs.stop()
            if rt.analytics is not None:
                analytics.uninstall(rt.analytics)
                await rt.analytics.stop()
            if rt.built_catalog_cache is not None:
                await rt.built_catalog_cache.close()
            event_bus.uninstall(bus)
            await bus.stop()
            await app.state.limiter.stop()
            if rt.redis is not None:
                await rt.redis.aclose()
            await mongo.close()
            if rt.embedded:
                rt.embedded.stop()
            stop_tracing(tracing)
            if sentry:
                stop_sentry()

    app = FastAPI(
        title=settings.app_name,
        version="1.0.0",
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by app.core.docs with local assets under a content-security policy
        redoc_url=None,
        openapi_tags=TAGS,
        lifespan=lifespan,
        dependencies=[Depends(default_limit)],
        # Tracing is set up by app.core.telemetry (OTEL_EXPORTER_OTLP_ENDPOINT) and metrics are Prometheus: FastAPI's
        # own OpenTelemetry bridge stays off (it would trace twice, and it checks the global providers per request).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_openapi(app, servers=[{"url": "/", "description": "The server that serves this document"}],
                    contact={"name": "Amour Florals engineering", "email": "api@amourflorals.com",
                             "url": "https://amourflorals.com/developers"},
                    license_info={"name": "Proprietary", "url": "https://amourflorals.com/legal/api-terms"})
    app.state.runtime = Runtime(settings=settings, storage=make_storage(settings))
    app.state.settings = settings
    app.state.limiter = build_limiter(settings)
    for probe in (ops.health, ops.ready, ops.metrics, payments.stripe_webhook):
        app.state.limiter.exempt(probe)  # probes and Stripe's webhooks must never be throttled

    install_error_handlers(app)
    install_docs(app, app.openapi_url or "")

    for router in ROUTERS:  # every operation refuses query parameters it does not declare
        app.include_router(router, prefix=API_PREFIX, dependencies=[Depends(known_query_parameters)])
    app.include_router(ops.metrics_router)
    document_streams(app)
    if settings.cloudinary_url is None and settings.media_url_prefix.startswith("/"):
        app.mount(settings.media_url_prefix, media_app(settings), name="media")  # local images, cached a year
    guard_included_routers(app)  # a request is matched only against the routers its path can reach

    # The last added is the outermost: request id/headers/body cap wrap everything, then CORS. Innermost: ready
    # catalog responses answered without routing (after the default rate limit), inside the access log.
    app.add_middleware(ResponseCacheMiddleware, store_of=response_store, guard=default_limit)
    app.add_middleware(
        ProblemCORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID", "X-Cart-Token",
                       "X-Order-Token", "X-Session-Mode", "If-None-Match", "Last-Event-ID", "X-Visitor-Id"],
        expose_headers=["X-Request-ID", "Retry-After", "ETag", "X-Cart-Token", "Idempotent-Replayed", "Location"],
        max_age=600,
    )
    app.add_middleware(HttpMiddleware, max_body_bytes=settings.max_body_bytes,
                       max_upload_bytes=settings.max_upload_bytes, hsts=settings.behind_https)
    tracing = setup_tracing(settings, app)  # outermost: request spans cover every middleware
    return app


def app_factory() -> FastAPI:
    """Entry point for uvicorn (``app.main:app_factory --factory``)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)
