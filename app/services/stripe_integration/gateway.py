"""Stripe through its official SDK (async methods). The only module that calls Stripe (its error classes are
re-exported here, so no other module imports ``stripe``).

Every write carries an idempotency key derived from our own ids, so a retry (ours, the SDK's, or a
second process) never creates a second PaymentIntent or refund. Without STRIPE_SECRET_KEY card
payments are refused with a 503, never faked. Stripe unreachable or failing is a 503
(``PaymentsUnavailable``, worth retrying); Stripe refusing what we asked is a 502
(``PaymentProviderError``, carrying Stripe's error code) unless the caller judges the refusal itself.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import stripe
from stripe._base_address import BaseAddresses  # the SDK's TypedDict of base URLs (not re-exported)
from stripe.params import PaymentIntentCreateParams

from app.config import Settings
from app.core.errors import AppError, ServiceUnavailable

log = logging.getLogger("app.payments")

WEBHOOK_TOLERANCE = 300  # seconds; Stripe's default tolerance for a webhook signature's timestamp

# Stripe's objects and errors as the rest of the app names them (so that only this module imports ``stripe``).
PaymentIntent = stripe.PaymentIntent
Charge = stripe.Charge
Refund = stripe.Refund
StripeError = stripe.StripeError
InvalidRequestError = stripe.InvalidRequestError
SignatureVerificationError = stripe.SignatureVerificationError


class PaymentsUnavailable(ServiceUnavailable):
    code, title = "payments-unavailable", "Card payments unavailable"


class PaymentProviderError(AppError):
    """502: Stripe answered, but refused the request (``provider_code`` is Stripe's error code)."""
    status, code, title = 502, "payment-provider-error", "Payment provider error"


def provider_refusal(exc: stripe.StripeError, detail: str) -> PaymentProviderError:
    """The 502 for a refusal; Stripe's message goes to the log only (it may name internal ids)."""
    log.warning("stripe refused a request: %s: %s", type(exc).__name__, exc)
    return PaymentProviderError(detail, provider_code=getattr(exc, "code", None))


def is_missing(exc: stripe.StripeError) -> bool:
    """Stripe does not know the object (HTTP 404 / ``resource_missing``)."""
    return isinstance(exc, stripe.InvalidRequestError) and exc.code == "resource_missing"


@contextmanager
def provider_errors() -> Iterator[None]:
    """Stripe unreachable, failing or refusing our key: a 503 (and a retried webhook). Refusals of the
    request itself (``InvalidRequestError``, ``CardError``) pass through for the caller to judge."""
    try:
        yield
    except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError, stripe.AuthenticationError,
            stripe.PermissionError) as exc:
        log.warning("stripe call failed: %s: %s", type(exc).__name__, exc)
        raise PaymentsUnavailable("The payment provider could not be reached. Try again in a moment.") from exc


def id_of(ref: str | stripe.StripeObject | None) -> str | None:
    """The id a reference field holds (we never ask Stripe to expand one; an expanded object gives its id)."""
    if ref is None or isinstance(ref, str):
        return ref
    object_id = getattr(ref, "id", None)
    return object_id if isinstance(object_id, str) else None


def _bad_signature(message: str, signature: str | None, payload: bytes) -> stripe.SignatureVerificationError:
    # The SDK's exception class has an unannotated __init__.
    return stripe.SignatureVerificationError(message, signature, payload)  # type: ignore[no-untyped-call]


class StripeGateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: stripe.StripeClient | None = None
        if settings.stripe_secret_key:
            base: BaseAddresses | None = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
            self._client = stripe.StripeClient(settings.stripe_secret_key.get_secret_value(), base_addresses=base,
                                               max_network_retries=settings.stripe_max_network_retries)

    @property
    def enabled(self) -> bool:
        return self._client is not None

    @property
    def client(self) -> stripe.StripeClient:
        if self._client is None:
            raise PaymentsUnavailable("Card payments are not available right now (the shop has no payment "
                                      "provider configured). Choose pay on pickup or try again later.")
        return self._client

    async def create_intent(self, *, order_id: str, number: str, amount: int, currency: str,
                            email: str) -> stripe.PaymentIntent:
        """A PaymentIntent for the order (the same one again on a repeat: the key is the order's).
        Raises PaymentsUnavailable (503) or PaymentProviderError (502, e.g. ``amount_too_small``)."""
        params: PaymentIntentCreateParams = {
            "amount": amount, "currency": currency.lower(),
            "automatic_payment_methods": {"enabled": True},
            "description": f"Amour Florals order {number}",
            "receipt_email": email,
            "metadata": {"order_id": order_id, "order_number": number},
        }
        try:
            with provider_errors():
                return await self.client.v1.payment_intents.create_async(
                    params=params, options={"idempotency_key": f"{order_id}:payment-intent"})
        except stripe.StripeError as exc:
            raise provider_refusal(exc, "The payment provider refused the payment. Try again later or choose "
                                        "another way to pay.") from exc

    async def retrieve_intent(self, intent_id: str) -> stripe.PaymentIntent:
        with provider_errors():
            return await self.client.v1.payment_intents.retrieve_async(intent_id)

    async def cancel_intent(self, intent_id: str, *, order_id: str) -> stripe.PaymentIntent | None:
        """Cancel; returns the intent as it now is (one that succeeded, was canceled or is processing is
        returned unchanged), or None when Stripe does not know it (nothing can be paid through it).
        Raises PaymentsUnavailable (503) or PaymentProviderError (502) for any other refusal."""
        try:
            with provider_errors():
                return await self.client.v1.payment_intents.cancel_async(
                    intent_id, options={"idempotency_key": f"{order_id}:cancel-intent"})
        except stripe.StripeError as exc:
            if is_missing(exc):
                log.warning("payment intent %s of order %s is unknown to Stripe", intent_id, order_id)
                return None
            if getattr(exc, "code", None) != "payment_intent_unexpected_state":
                raise provider_refusal(exc, "The payment provider refused to cancel the payment; nothing was "
                                        "changed. Try again later.") from exc
        return await self.retrieve_intent(intent_id)

    async def refund(self, *, intent_id: str, amount: int, key: str, order_id: str, reason: str) -> stripe.Refund:
        with provider_errors():
            return await self.client.v1.refunds.create_async(
                params={"payment_intent": intent_id, "amount": amount,
                        "metadata": {"order_id": order_id, "reason": reason[:500]}},
                options={"idempotency_key": f"{order_id}:refund:{key}"},
            )

    async def retrieve_charge(self, charge_id: str) -> stripe.Charge:
        with provider_errors():
            return await self.client.v1.charges.retrieve_async(charge_id)

    def verify_event(self, payload: bytes, signature: str | None) -> Any:
        """Verify the ``Stripe-Signature`` header on the raw body and return the body as parsed JSON.

        The scheme is Stripe's (https://docs.stripe.com/webhooks#verify-manually): ``t=<unix time>,v1=<hex
        HMAC-SHA256 of "<t>.<body>" with the endpoint secret>``, and ``t`` must be within WEBHOOK_TOLERANCE
        seconds of now — in the past (a replay) or, unlike the SDK's check, in the future.
        Raises stripe.SignatureVerificationError (bad, missing or stale signature, body not UTF-8) or
        ValueError (a verified body that is not JSON)."""
        secret = self.settings.stripe_webhook_secret
        if secret is None:
            raise PaymentsUnavailable("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).")
        if not signature:
            raise _bad_signature("missing Stripe-Signature header", signature, payload)
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad_signature("the body is not UTF-8", signature, payload) from None
        stripe.WebhookSignature.verify_header(text, signature, secret.get_secret_value(), WEBHOOK_TOLERANCE)
        # verify_header parsed the same header: "t" is there and an integer (the SDK splits items like this).
        stamp = int(next(item.split("=", 2)[1] for item in signature.split(",") if item.split("=", 2)[0] == "t"))
        if stamp > time.time() + WEBHOOK_TOLERANCE:
            raise _bad_signature("Timestamp in the future", signature, payload)
        return json.loads(text)
