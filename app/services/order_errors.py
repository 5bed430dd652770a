"""Named errors of the order domain: each problem ``code`` raised or recognised in more than one place.

They keep the status and title of their base class (409 "Conflict", 422 "Unprocessable request"), so the
problem documents are the ones the literal ``code=`` arguments produced; ``app.core.openapi`` lists each
subclass's ``code`` in the published ``ProblemCode`` enum.
"""

from __future__ import annotations

from app.core.errors import Conflict, Unprocessable


class OutOfStock(Conflict):
    """409: fewer units are left than the order or cart line needs (extras name the line and the figures)."""
    code = "out-of-stock"


class CartAlreadyOrdered(Conflict):
    """409: this version of the cart already became an order."""
    code = "cart-already-ordered"

    def __init__(self) -> None:
        super().__init__("This cart was already checked out; reload it to see the order.")


class CartEmpty(Unprocessable):
    """422: there is no cart, or nothing in it, to check out."""
    code = "cart-empty"


class CheckoutInProgress(Conflict):
    """409 with ``Retry-After: 2``: a checkout with the same Idempotency-Key is still running."""
    code = "checkout-in-progress"

    def __init__(self) -> None:
        super().__init__("A checkout with this Idempotency-Key is still being processed; retry shortly.",
                         headers={"Retry-After": "2"})


class IllegalTransition(Conflict):
    """409: the status machine has no step from the order's status to the one asked for
    (``current_status`` in the extras); jobs and webhooks treat it as "nothing to do"."""
    code = "illegal-transition"


class NotSettleable(Conflict):
    """409: staff cannot record a counter payment for this order (not pay-on-pickup, or already closed)."""
    code = "not-settleable"
