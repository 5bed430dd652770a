"""Composition: the app's runtime and one builder per service (the top layer, beside the CLI).

``Runtime`` is what the lifespan opens and closes (database, Redis, event bus, job runner, email outbox,
Stripe gateway) plus the per-app helpers built lazily on first use (catalog cache and reader, event
streams). Request dependencies (``app.deps``), background jobs and the demo seeders all build services
through the functions below, so each service is wired in exactly one place. Services never import this
module: they receive their collaborators (or a typed ``Protocol`` view of the runtime) as arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from fastapi import FastAPI
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from app.config import Settings
from app.core.bus import EventBus
from app.core.clock import utcnow
from app.core.embedded_mongo import EmbeddedMongo
from app.core.jobs import JobRunner
from app.services import audit
from app.services.accounts import AccountService, UserAdminService
from app.services.analytics import AnalyticsRecorder
from app.services.auth import AuthService
from app.services.campaign_jobs import register_campaign_job
from app.services.campaigns import CampaignService
from app.services.cart import CartService
from app.services.cart_reminders import register_cart_reminder_job
from app.services.catalog_cache import CatalogCache
from app.services.catalog_read import CatalogReader
from app.services.categories import CategoryAdminService
from app.services.checkout import CheckoutService
from app.services.delivery import DeliveryService
from app.services.email import EmailService
from app.services.event_streams import StreamService, StreamSlots
from app.services.favorites import FavoriteService
from app.services.images import ImageService
from app.services.newsletter import NewsletterService
from app.services.order_jobs import OrderJobs, register_order_jobs
from app.services.orders import OrderService
from app.services.product_admin import ProductAdminService
from app.services.promo import PromoService
from app.services.reports import ReportService
from app.services.reviews import ReviewService
from app.services.shopper_reports import ShopperReportService
from app.services.stock_alerts import StockAlertService, register_stock_alert_job
from app.services.storage import Storage
from app.services.stripe_integration.gateway import StripeGateway
from app.services.stripe_integration.webhooks import StripeWebhooks

Clock = Callable[[], datetime]
T = TypeVar("T")


def _started(value: T | None, name: str) -> T:
    """``value``, which the lifespan (or the seeder's runtime) opens; RuntimeError when it is not open."""
    if value is None:
        raise RuntimeError(f"the runtime's {name} is not open (the app's lifespan opens it)")
    return value


@dataclass
class Runtime:
    """What the lifespan opens and closes; request dependencies reach it as ``request.app.state.runtime``.

    ``mongo`` … ``analytics`` are None until the lifespan has opened them (``redis`` stays None without
    REDIS_URL, ``analytics`` without ANALYTICS_ENABLED). ``catalog_cache``, ``catalog_reader`` and
    ``streams`` are built once, on first use (after the lifespan opened Redis and the event bus)."""

    settings: Settings
    storage: Storage  # product images: local disk or Cloudinary
    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    redis: Redis | None = None
    embedded: EmbeddedMongo | None = None
    jobs: JobRunner | None = None
    email: EmailService | None = None
    stripe: StripeGateway | None = None
    bus: EventBus | None = None  # live events: in memory, or fanned out through Redis
    analytics: AnalyticsRecorder | None = None
    _catalog_cache: CatalogCache | None = field(default=None, repr=False)
    _catalog_reader: CatalogReader | None = field(default=None, repr=False)
    _streams: StreamService | None = field(default=None, repr=False)

    @property
    def catalog_cache(self) -> CatalogCache:
        """The app's one catalog cache (versions in Redis when configured, bumps published on the bus)."""
        if self._catalog_cache is None:
            self._catalog_cache = CatalogCache(self.settings, self.redis, self.bus)
        return self._catalog_cache

    @property
    def built_catalog_cache(self) -> CatalogCache | None:
        """The catalog cache if something has used it yet (None: nothing to serve from or to close)."""
        return self._catalog_cache

    @property
    def catalog_reader(self) -> CatalogReader:
        """The app's one catalog reader (public catalog reads through the catalog cache)."""
        if self._catalog_reader is None:
            self._catalog_reader = CatalogReader(self.settings, self.catalog_cache)
        return self._catalog_reader

    @property
    def streams(self) -> StreamService:
        """The app's one live-event stream service (its slots remember this process's open streams)."""
        if self._streams is None:
            s = self.settings
            slots = StreamSlots(self.redis, s.mongodb_db, lease_seconds=max(3 * s.events_recheck_seconds, 5.0))
            self._streams = StreamService(s, _started(self.bus, "event bus"), slots)
        return self._streams


def open_services(rt: Runtime) -> JobRunner:
    """Build the job runner, the email outbox and the Stripe gateway, and register every background job;
    returns the runner (the lifespan starts it when WORKERS_ENABLED)."""
    settings = rt.settings
    jobs = rt.jobs = JobRunner(settings.worker_poll_seconds)
    email = rt.email = EmailService(settings, wake=lambda: jobs.wake("email"))
    jobs.register("email", email.send_due)
    stripe = rt.stripe = StripeGateway(settings)
    register_order_jobs(jobs, lambda: order_jobs(rt), stripe)
    jobs.register("audit-recovery", audit.recovery_job(settings))
    register_campaign_job(jobs, settings, email)
    register_stock_alert_job(jobs, settings, email)
    register_cart_reminder_job(jobs, settings, email)
    return jobs


def response_store(app: FastAPI) -> CatalogCache | None:
    """The store of ``ResponseCacheMiddleware``: the app's catalog cache, once it holds ready responses."""
    rt: Runtime = app.state.runtime
    cache = rt.built_catalog_cache
    return cache if cache is not None and cache._responses else None


# --- builders: one per service ------------------------------------------------------------------------


def delivery_service(settings: Settings, clock: Clock = utcnow) -> DeliveryService:
    """Delivery options, quotes and slot holds, on the shop clock ``clock``."""
    return DeliveryService(settings, clock)


def promo_service(settings: Settings, clock: Clock = utcnow) -> PromoService:
    """Promo codes: evaluation and uses, on the shop clock ``clock``."""
    return PromoService(settings, clock)


def cart_service(settings: Settings, clock: Clock = utcnow) -> CartService:
    """The cart with the promo and delivery services it prices with (the order service reuses the same)."""
    return CartService(settings, promo_service(settings, clock), delivery_service(settings, clock), clock)


def order_service(rt: Runtime, clock: Clock = utcnow, *, notify_customers: bool = True) -> OrderService:
    """The order service with the runtime's Stripe gateway and the services whose holds it releases;
    ``notify_customers=False`` queues no order emails (the demo seeder's orders)."""
    return _order_service(rt, cart_service(rt.settings, clock), notify_customers=notify_customers)


def _order_service(rt: Runtime, cart: CartService, *, notify_customers: bool = True) -> OrderService:
    return OrderService(rt.settings, _started(rt.email, "email outbox"), _started(rt.stripe, "Stripe gateway"),
                        stock=rt, delivery=cart.delivery, promo=cart.promos, cart=cart,
                        notify_customers=notify_customers)


def order_jobs(rt: Runtime, clock: Clock = utcnow) -> OrderJobs:
    """The order jobs: expiry, reconciliation with Stripe, pending rollups."""
    return OrderJobs(order_service(rt, clock))


def stripe_webhooks(rt: Runtime, clock: Clock = utcnow) -> StripeWebhooks:
    """Stripe's webhook events about orders."""
    return StripeWebhooks(order_service(rt, clock))


def checkout_service(rt: Runtime, clock: Clock = utcnow) -> CheckoutService:
    """Checkout with the cart, delivery and promo services its order service releases holds through."""
    cart = cart_service(rt.settings, clock)
    return CheckoutService(_order_service(rt, cart), cart, cart.delivery, cart.promos, clock)


def auth_service(rt: Runtime) -> AuthService:
    """Accounts, tokens and the auth emails (through the runtime's outbox)."""
    return AuthService(rt.settings, _started(rt.email, "email outbox"))


def account_service(rt: Runtime) -> AccountService:
    """The signed-in customer's own account."""
    return AccountService(auth_service(rt))


def user_admin_service(rt: Runtime) -> UserAdminService:
    """User management for admins."""
    return UserAdminService(auth_service(rt))


def review_service(rt: Runtime) -> ReviewService:
    """Product reviews; rating changes bump the catalog cache."""
    return ReviewService(rt.catalog_cache)


def favorite_service() -> FavoriteService:
    """A customer's favorite products."""
    return FavoriteService()


def image_service(rt: Runtime) -> ImageService:
    """Product images in the runtime's storage; changes bump the catalog cache."""
    return ImageService(rt.storage, rt.settings, rt.catalog_cache)


def category_admin_service(rt: Runtime) -> CategoryAdminService:
    """Category administration; writes bump the catalog cache."""
    return CategoryAdminService(rt.catalog_cache)


def product_admin_service(rt: Runtime) -> ProductAdminService:
    """Product administration and stock adjustments (through the runtime's stock view)."""
    return ProductAdminService(rt.catalog_cache, rt)


def report_service(settings: Settings, clock: Clock = utcnow) -> ReportService:
    """Sales reports over the shop's days (``clock`` decides today)."""
    return ReportService(settings, clock)


def shopper_report_service(settings: Settings, clock: Clock = utcnow) -> ShopperReportService:
    """Shopper-behaviour reports (funnel, searches, interest, abandonment)."""
    return ShopperReportService(settings, clock)


def newsletter_service(rt: Runtime) -> NewsletterService:
    """Newsletter sign-up, confirmation and unsubscribe (through the outbox)."""
    return NewsletterService(rt.settings, _started(rt.email, "email outbox"))


def stock_alert_service(rt: Runtime) -> StockAlertService:
    """Back-in-stock requests; the job runner is woken when a size returns."""
    return StockAlertService(rt.settings, _started(rt.email, "email outbox"), rt.jobs)


def campaign_service(rt: Runtime) -> CampaignService:
    """Newsletter campaigns; the job runner is woken when one is scheduled."""
    return CampaignService(rt.settings, _started(rt.email, "email outbox"), rt.jobs)
