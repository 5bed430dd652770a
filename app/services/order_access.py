"""Who may read an order: its owner (signed in) or a guest holding the order's access token.

The guest's token is never stored: it is derived from the order id with the server secret (only its hash
is kept on the order), so checkout can show it again on an idempotent replay and emails can carry it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from app.config import Settings
from app.core.errors import NotFound, Unauthorized
from app.core.ids import looks_like_id
from app.core.security import hash_token, tokens_equal
from app.models.order import Order
from app.models.user import User


async def load_order(order_id: str) -> Order:
    """The order with this id; NotFound (404) for an unknown or malformed id."""
    order = await Order.get(order_id) if looks_like_id(order_id, "ord") else None
    if order is None:
        raise NotFound("No order with this id.")
    return order


async def load_for_customer(order_id: str, user: User | None, token: str | None) -> Order:
    """The order for its owner (signed in) or the holder of its access token. Unauthorized (401) with
    neither; NotFound (404) for anyone else, so an order's existence is never confirmed."""
    if user is None and not token:
        raise Unauthorized("Sign in, or send the order's access token in X-Order-Token.")
    order = await load_order(order_id)
    if user is not None and order.contact.user_id == user.id:
        return order
    if token and order.access_token_hash and tokens_equal(hash_token(token), order.access_token_hash):
        return order
    raise NotFound("No order with this id.")


def order_access_token(settings: Settings, order_id: str, stored_hash: str | None = None) -> str:
    """The guest's order access token: derived from the order id with the server secret, so it can be
    shown again on an idempotent replay and put in emails without ever being stored (only its hash is).

    New orders use JWT_SECRET. For an existing order pass its ``access_token_hash``: the token is then
    derived with whichever of JWT_SECRET and JWT_PREVIOUS_SECRETS made it, so links sent during a secret
    rotation keep opening orders placed before it.
    """
    tokens = [_derive_order_token(secret, order_id) for secret in settings.jwt_verify_secrets]
    if stored_hash is not None:
        for token in tokens:
            if tokens_equal(hash_token(token), stored_hash):
                return token
    return tokens[0]


def _derive_order_token(secret: str, order_id: str) -> str:
    mac = hmac.new(secret.encode(), f"order-access:{order_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")
