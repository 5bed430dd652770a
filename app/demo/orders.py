"""Demo orders and reviews for the demo customers, placed through the real services (idempotent).

Orders go through the cart, checkout and order services exactly as a shopper's would, so stock, pickup
slots, promo uses, units sold and stock movements stay consistent. They are store-pickup orders paid at
the counter, so seeding needs no Stripe. Each carries a stable idempotency key (``demo:...``): a second
run finds it and only finishes a status path a crashed run left half done. Seeded orders queue no
emails (``notify_customers=False``); reviews are posted after the orders, so a customer who picked up
a bouquet gets a verified-purchase review.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from app.composition import Runtime, order_service, review_service
from app.core.clock import utcnow
from app.core.errors import AppError, Conflict
from app.core.redis import make_redis
from app.models.catalog import Product
from app.models.order import Order, OrderStatus, PaymentStatus
from app.models.review import Review
from app.models.user import User
from app.schemas.cart import CartItemIn
from app.schemas.checkout import CheckoutIn
from app.schemas.reviews import ReviewIn
from app.services.cart import CartService
from app.services.checkout import CheckoutService
from app.services.delivery import DeliveryService
from app.services.email import EmailService
from app.services.orders import OrderService
from app.services.promo import PromoService
from app.services.storage import make_storage
from app.services.stripe_integration.gateway import StripeGateway

S = OrderStatus
STAFF_EMAIL = "staff@amourflorals.com"
PHONE = "+12125550142"


@dataclass(frozen=True)
class Item:
    product: str  # slug
    size: str = "standard"
    quantity: int = 1
    add_ons: tuple[str, ...] = ()
    gift_message: str | None = None


@dataclass(frozen=True)
class DemoOrder:
    key: str
    email: str
    items: tuple[Item, ...]
    path: tuple[OrderStatus, ...] = ()  # staff steps after placing (the counter payment comes before picked_up)
    days_ago: int = 0  # placed this many days ago: the pickup date is the first free one after that day
    promo: str | None = None
    card_message: str | None = None


@dataclass(frozen=True)
class DemoReview:
    email: str
    product: str
    rating: int
    title: str
    body: str = ""


PICKED_UP = (S.preparing, S.ready_for_pickup, S.picked_up)

DEMO_ORDERS = [
    DemoOrder("demo:olivia:anniversary", "olivia@example.com",
              (Item("classic-dozen-red-roses", add_ons=("chocolates", "glass-vase"),
                    gift_message="Happy anniversary, my love. Ten years and counting!"),),
              PICKED_UP, days_ago=9, promo="WELCOME10", card_message="Forever yours, O."),
    DemoOrder("demo:liam:birthday", "liam@example.com",
              (Item("coral-rose-sunset", size="deluxe", gift_message="Happy birthday, Mum!"),
               Item("tiger-lily-blaze")),
              PICKED_UP, days_ago=5),
    DemoOrder("demo:liam:thank-you", "liam@example.com", (Item("golden-lily-glow"),), (S.preparing,),
              card_message="Thank you for everything."),
    DemoOrder("demo:emma:new-baby", "emma@example.com",
              (Item("pink-tulip-kiss", quantity=2, gift_message="Welcome to the world, little one!"),)),
]

DEMO_REVIEWS = [
    DemoReview("olivia@example.com", "classic-dozen-red-roses", 5, "Made our anniversary",
               "Deep red, perfectly fresh and they lasted well over a week. The chocolates were a lovely touch."),
    DemoReview("liam@example.com", "coral-rose-sunset", 4, "Gorgeous colours",
               "Mum loved the coral tones. The deluxe size is generous; one stem drooped after five days."),
    DemoReview("liam@example.com", "tiger-lily-blaze", 5, "Bright and cheerful",
               "Exactly like the photos and the lilies opened beautifully over the next days."),
    DemoReview("emma@example.com", "classic-dozen-red-roses", 4, "Stunning in person",
               "Saw these at a friend's place and they were stunning. Ordering some for myself next."),
]


@asynccontextmanager
async def seed_runtime() -> AsyncIterator[Runtime]:
    """What the services need outside the API process: the settings, Redis when configured (so that the
    catalog version every API process reads is bumped), an email outbox and the (unused) Stripe gateway."""
    from app.config import get_settings

    settings = get_settings()
    rt = Runtime(settings=settings, storage=make_storage(settings), redis=make_redis(settings.redis_url),
                 email=EmailService(settings), stripe=StripeGateway(settings))
    try:
        yield rt
    finally:
        if rt.redis is not None:
            await rt.redis.aclose()


async def seed_demo_orders() -> list[str]:
    users = {u.email: u for u in await User.find({"email": {"$in": [o.email for o in DEMO_ORDERS] + [STAFF_EMAIL]}})
             .to_list()}
    staff = users.get(STAFF_EMAIL)
    if staff is None:
        return []
    added, notes = 0, []
    now = utcnow()
    async with seed_runtime() as rt:
        for spec in DEMO_ORDERS:
            user = users.get(spec.email)
            if user is None:
                continue
            placed_at = now - timedelta(days=spec.days_ago)
            orders = order_service(rt, _fixed_clock(placed_at), notify_customers=False)
            try:
                order = await _existing(user, spec.key)
                if order is None:
                    order = await _place(orders, user, spec)
                    added += 1
                await _advance(orders, order, spec.path, by=staff.id)
            except AppError as exc:  # e.g. the demo stock was sold meanwhile: leave this one out
                notes.append(f"  {spec.key} skipped: {exc.detail}")
    return [f"Demo orders: {len(DEMO_ORDERS)} ({added} added; store pickup, paid at the counter).", *notes]


def _fixed_clock(at: datetime) -> Callable[[], datetime]:
    """A clock that always answers ``at`` (UTC): the seeded order was placed then."""
    return lambda: at


async def _existing(user: User, key: str) -> Order | None:
    return await Order.find_one({"contact.user_id": user.id, "idempotency_key": key})


def _collaborators(orders: OrderService) -> tuple[CartService, DeliveryService, PromoService]:
    """The cart, delivery and promo services ``build_order_service`` gave ``orders`` (which types them as the
    narrow protocols it uses); the demo checkout needs the whole services."""
    cart, delivery, promo = orders.cart, orders.delivery, orders.promo
    if not (isinstance(cart, CartService) and isinstance(delivery, DeliveryService)
            and isinstance(promo, PromoService)):
        raise RuntimeError("the order service was built without its cart, delivery or promo service")
    return cart, delivery, promo


async def _place(orders: OrderService, user: User, spec: DemoOrder) -> Order:
    """Fill the customer's (empty) cart and check it out as a pickup paid at the counter."""
    cart, delivery, promo = _collaborators(orders)
    existing = await cart.load(user=user, cart_token=None)
    if existing is not None and existing.lines:
        raise Conflict("the customer's cart is not empty")
    try:
        for item in spec.items:
            product = await Product.find_one(Product.slug == item.product)
            if product is None:
                raise Conflict(f"no product {item.product!r}")
            await cart.add_item(user=user, cart_token=None, data=CartItemIn(
                product_id=product.id, size=item.size, quantity=item.quantity, add_ons=list(item.add_ons),
                gift_message=item.gift_message))
        if spec.promo:
            await cart.apply_promo(user=user, cart_token=None, code=spec.promo)
        day, slot = await _first_pickup(delivery)
        body = CheckoutIn.model_validate({
            "payment_method": "pay_on_pickup",
            "delivery": {"method": "pickup", "date": day.isoformat(), "slot": slot,
                         "recipient_name": user.full_name, "recipient_phone": PHONE,
                         "card_message": spec.card_message},
            "contact": {"email": user.email, "phone": PHONE}})
        checkout = CheckoutService(orders, cart, delivery, promo, delivery.clock)
        result = await checkout.checkout(user=user, cart_token=None, key=spec.key, body=body)
    except AppError:
        await cart.empty(user=user, cart_token=None)  # it was empty before
        raise
    return await orders.get(result.order.id)


async def _first_pickup(delivery: DeliveryService) -> tuple[date, str]:
    """The first pickup date after the (seeding) clock's day with a free slot."""
    options = await delivery.options(method="pickup", zip=None, date=None)
    today = delivery.clock().astimezone(delivery.tz).date()
    for option in options.dates:
        free = [s for s in option.slots if s.available]
        if option.date > today and free:
            return option.date, free[0].code.value
    raise Conflict("no pickup slot is free")


async def _advance(orders: OrderService, order: Order, path: tuple[OrderStatus, ...], *, by: str) -> None:
    """Take the staff steps the order has not taken yet; settle the counter payment before the handover."""
    reached = {change.to_status for change in order.status_history}
    for status in path:
        if status in reached:
            continue
        if status == S.picked_up and order.payment_status == PaymentStatus.unpaid:
            order = await orders.settle_at_counter(order.id, by=by, note="Paid by card at the counter.")
        order = await orders.staff_move(order, status, by=by, note=None)


async def seed_demo_reviews() -> list[str]:
    users = {u.email: u for u in await User.find({"email": {"$in": sorted({r.email for r in DEMO_REVIEWS})}})
             .to_list()}
    products = {p.slug: p for p in await Product.find({"slug": {"$in": sorted({r.product for r in DEMO_REVIEWS})}})
                .to_list()}
    added = 0
    async with seed_runtime() as rt:
        reviews = review_service(rt)
        for spec in DEMO_REVIEWS:
            user, product = users.get(spec.email), products.get(spec.product)
            if user is None or product is None:
                continue
            if await Review.find_one({"product_id": product.id, "user_id": user.id}) is not None:
                continue
            await reviews.create(user, product.id, ReviewIn(rating=spec.rating, title=spec.title, body=spec.body))
            added += 1
    return [f"Demo reviews: {len(DEMO_REVIEWS)} ({added} added; verified when the customer picked the bouquet up)."]

