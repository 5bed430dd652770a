"""Every Beanie document the app stores. `init_beanie` receives DOCUMENT_MODELS."""

from beanie import Document

from app.models.analytics import AnalyticsBucket, ProductViewDay
from app.models.audit import AuditEntry
from app.models.auth import OneTimeToken, RefreshSession
from app.models.cart import Cart
from app.models.catalog import Category, Product
from app.models.counter import Counter
from app.models.delivery import DeliveryConfig, DeliveryZone, SlotUsage
from app.models.events import StreamTicket
from app.models.inventory import StockMovement
from app.models.marketing import (
    Campaign,
    EmailSuppression,
    JobCursor,
    NewsletterSubscription,
    StockAlert,
    StockAlertOptOut,
)
from app.models.order import IdempotencyRecord, Order
from app.models.outbox import OutboxEmail
from app.models.promo import PromoCode, PromoCustomerUses, PromoRedemption
from app.models.review import Review
from app.models.sales import SalesDay
from app.models.stripe_event import Event
from app.models.user import User

DOCUMENT_MODELS: list[type[Document]] = [
    User, RefreshSession, OneTimeToken, OutboxEmail, Counter, Event,
    Category, Product, StockMovement, Review,
    DeliveryZone, DeliveryConfig, SlotUsage,
    PromoCode, PromoCustomerUses, PromoRedemption,
    Cart,
    Order, IdempotencyRecord, SalesDay,
    StreamTicket,
    NewsletterSubscription, EmailSuppression, Campaign, StockAlert, StockAlertOptOut, JobCursor,
    AuditEntry, AnalyticsBucket, ProductViewDay,
]
