"""The order jobs: the expiry sweeper, the payment reconciliation and the sales rollups (changes left pending
by a process that stopped between an order's write and its rollup update). Stripe's webhook events are
handled in ``app.services.stripe_integration.webhooks``.

Each job claims one order at a time with a lease of its own (``_drain``: a conditional update of the
order's ``leased_at``/``lease_owner``, the scheme of ``app.core.jobs.claim`` kept on order fields), so several
API processes never work on the same order at once; the status change itself is version-guarded, so
whatever an order held is released exactly once whoever gets there first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from app.core.clock import utcnow
from app.core.jobs import JobRunner
from app.models.order import Order, OrderStatus, PaymentMethod, RefundStatus
from app.services import order_repository
from app.services.orders import OrderService
from app.services.stripe_integration.gateway import StripeGateway

log = logging.getLogger("app.orders.jobs")

REFUND_RETRY_AFTER = timedelta(minutes=1)
PRUNE_EVERY_SECONDS = 3600.0
_last_prune: list[float] = [float("-inf")]  # monotonic time of this process's last token pruning


class OrderJobs:
    """The order jobs of one shop, on behalf of ``OrderService`` (its gateway, settings and rollups)."""

    def __init__(self, orders: OrderService) -> None:
        self.orders = orders
        self.gateway = orders.gateway
        self.settings = orders.settings

    # --- jobs -----------------------------------------------------------------------------------------
    async def _drain(self, due: dict[str, Any], sort_key: str, work: Callable[[Order], Awaitable[Any]]) -> int:
        """Claim due orders one at a time with a lease and work on each. Work that succeeds leaves the order
        no longer due; work that fails keeps the lease, so the order is tried again once the lease is over."""
        lease = timedelta(seconds=self.settings.worker_lease_seconds)
        done = 0
        for _ in range(self.settings.order_job_batch):
            order = await order_repository.lease_next_due(due, sort_key, utcnow() - lease)
            if order is None:
                break
            try:
                await work(order)
            except Exception:
                log.exception("order job failed on %s; tried again after the lease", order.id)
                continue
            done += 1
        return done

    async def expire_due(self) -> int:
        """Unpaid orders past ``expires_at`` become ``expired``; stock, slot and promo use go back once.
        Closed orders whose release was interrupted (a crash after the status change) are released too."""
        now = utcnow()
        n = await self._drain({"status": OrderStatus.pending_payment, "expires_at": {"$lte": now}}, "expires_at",
                              self._expire)
        stale = {"status": {"$in": [OrderStatus.cancelled, OrderStatus.expired, OrderStatus.payment_failed]},
                 "reservation.released": False, "updated_at": {"$lte": now - REFUND_RETRY_AFTER}}
        return n + await self._drain(stale, "updated_at", self.orders.release)

    async def _expire(self, order: Order) -> None:
        if order.payment_intent_id:
            # Close the door first: an intent that succeeded meanwhile makes the order paid instead.
            intent = await self.gateway.cancel_intent(order.payment_intent_id, order_id=order.id)
            if intent is not None and intent.status == "succeeded":
                await self.orders.apply_intent(order, intent)
                return
        await self.orders.try_move(order.id, OrderStatus.expired, by="system",
                                   note=f"Not paid within {self.settings.order_payment_minutes} minutes.")

    async def reconcile_due(self) -> int:
        """Orders still ``pending_payment`` with a PaymentIntent older than RECONCILE_AFTER_MINUTES are
        settled from Stripe (a lost webhook never leaves a paid customer without an order); refunds left
        pending by a failed Stripe call are sent again with the same idempotency key."""
        now = utcnow()
        cutoff = now - timedelta(minutes=self.settings.reconcile_after_minutes)
        due = {"status": OrderStatus.pending_payment, "payment_method": PaymentMethod.card,
               "created_at": {"$lte": cutoff}, "reconciled_at": {"$lte": cutoff}}
        n = await self._drain(due, "created_at", self._reconcile)
        refunds = {"refunds_pending": {"$gt": 0}, "updated_at": {"$lte": now - REFUND_RETRY_AFTER}}
        return n + await self._drain(refunds, "updated_at", self._retry_refunds)

    async def _reconcile(self, order: Order) -> None:
        if order.payment_intent_id:
            intent = await self.gateway.retrieve_intent(order.payment_intent_id)
            await self.orders.apply_intent(order, intent)
        await order_repository.mark_reconciled(order.id)

    async def settle_rollups_due(self) -> int:
        """Apply rollup changes still pending ROLLUP_RETRY_SECONDS after their order's write (each once: a
        change already applied is recognised by its token), and hourly drop old tokens from the day documents."""
        cutoff = utcnow() - timedelta(seconds=self.settings.rollup_retry_seconds)
        rollups = self.orders.rollups
        n = await self._drain({"rollup.pending_any": True, "rollup.since": {"$lte": cutoff}}, "rollup.since",
                              rollups.settle)
        if time.monotonic() - _last_prune[0] >= PRUNE_EVERY_SECONDS:
            _last_prune[0] = time.monotonic()
            await rollups.prune()
        return n

    async def _retry_refunds(self, order: Order) -> None:
        for record in order.refunds:
            if record.status == RefundStatus.pending:
                order = await self.orders.refunds.push(order, record.id)
        await order_repository.touch(order.id)


def register_order_jobs(jobs: JobRunner, payments: Callable[[], OrderJobs], gateway: StripeGateway) -> None:
    """Register the expiry sweeper, the payment reconciliation (only when ``gateway`` has a Stripe key) and the
    rollup settlement with ``jobs``; each run works with a fresh service from ``payments``."""
    async def expire() -> int:
        return await payments().expire_due()

    async def reconcile() -> int:
        if not gateway.enabled:
            return 0
        return await payments().reconcile_due()

    async def rollups() -> int:
        return await payments().settle_rollups_due()

    jobs.register("orders-expire", expire)
    jobs.register("orders-reconcile", reconcile)
    jobs.register("orders-rollups", rollups)
