"""Transactional email: rendered from templates into the outbox, delivered by a leased worker via SMTP.

Callers only ``enqueue``; the API answers even when SMTP is down, and the email is retried with
exponential backoff until it is accepted or EMAIL_MAX_ATTEMPTS is reached.
"""

from __future__ import annotations

import html
import logging
from email.message import EmailMessage
from string import Template
from typing import Any

import aiosmtplib
from pymongo.errors import DuplicateKeyError

from app.config import Settings
from app.core.clock import utcnow
from app.core.jobs import backoff, claim, release
from app.core.metrics import EMAILS
from app.models.outbox import EmailStatus, OutboxEmail

log = logging.getLogger("app.email")

# name -> (subject, text body). Values are escaped for the HTML part; the text part is sent as is.
TEMPLATES: dict[str, tuple[str, str]] = {
    "welcome_verify": (
        "Welcome to Amour Florals — please confirm your email",
        "Hello $first_name,\n\nThank you for joining Amour Florals.\n"
        "Confirm your email address with this link (valid for $hours hours):\n$link\n\n"
        "Your verification code: $token\n",
    ),
    "verify_email": (
        "Confirm your email address",
        "Hello $first_name,\n\nConfirm your email address with this link (valid for $hours hours):\n"
        "$link\n\nYour verification code: $token\n",
    ),
    "password_reset": (
        "Reset your Amour Florals password",
        "Hello $first_name,\n\nSomeone asked to reset the password of your account. If it was you, follow"
        " this link within $minutes minutes:\n$link\n\nYour reset code: $token\n\n"
        "If it was not you, ignore this email; your password stays as it is.\n",
    ),
    "password_changed": (
        "Your Amour Florals password was changed",
        "Hello $first_name,\n\nThe password of your account was just changed and every other session was"
        " signed out. If this was not you, reset your password at once.\n",
    ),
    "low_stock": (
        "Low stock: $name ($size) — $available left",
        "Size $size of $name ($product_id) is down to $available (threshold $threshold).\n\n"
        "Restock it from the admin: $link\n",
    ),
    # --- orders (context built by app.services.order_notify) -------------------------------------------
    "order_confirmation": (
        "Your Amour Florals order $number is confirmed",
        "Hello $name,\n\nThank you for your order. Here is your summary.\n\n$summary\n\n"
        "Follow your order here:\n$link\n",
    ),
    "order_preparing": (
        "Order $number: our florists are preparing your bouquet",
        "Hello $name,\n\nOur florists have started preparing order $number.\n\n$when\n\n$link\n",
    ),
    "order_out_for_delivery": (
        "Order $number is out for delivery",
        "Hello $name,\n\nOrder $number is on its way to $recipient.\n\n$when\n\n$link\n",
    ),
    "order_delivered": (
        "Order $number was delivered",
        "Hello $name,\n\nOrder $number was delivered to $recipient. We hope it brings joy.\n\n$link\n",
    ),
    "order_ready_for_pickup": (
        "Order $number is ready for pickup",
        "Hello $name,\n\nOrder $number is ready at our shop.\n\n$when\n\n$payment_note$link\n",
    ),
    "order_picked_up": (
        "Order $number was picked up",
        "Hello $name,\n\nOrder $number was picked up. Thank you for choosing Amour Florals.\n",
    ),
    "order_cancelled": (
        "Order $number was cancelled",
        "Hello $name,\n\nOrder $number was cancelled.$reason\n\n$refund_note\n",
    ),
    "order_refunded": (
        "Refund for order $number",
        "Hello $name,\n\nWe refunded $amount for order $number to your card. Depending on your bank it"
        " can take 5 to 10 days to appear.\n\nReason: $reason\n",
    ),
}


def render(template: str, context: dict[str, Any]) -> tuple[str, str, str]:
    subject_t, text_t = TEMPLATES[template]
    subject = Template(subject_t).safe_substitute(context)
    text = Template(text_t).safe_substitute(context) + "\n— Amour Florals\n"
    body = Template(text_t).safe_substitute({k: html.escape(str(v)) for k, v in context.items()})
    html_body = (
        "<!doctype html><html><body style=\"font-family:Georgia,serif;color:#3b2f2f\">"
        + "".join(f"<p>{line}</p>" for line in body.split("\n\n"))
        + "<p>— Amour Florals</p></body></html>"
    ).replace("\n", "<br>")
    return subject, text, html_body


class EmailService:
    def __init__(self, settings: Settings, wake: Any = None) -> None:
        self.settings = settings
        self._wake = wake

    async def enqueue(self, *, to: str, template: str, context: dict[str, Any], dedupe_key: str) -> bool:
        """Queue one email; returns False when an email with ``dedupe_key`` was already queued."""
        subject, text, html_body = render(template, context)
        try:
            await OutboxEmail(dedupe_key=dedupe_key, to=to, subject=subject, text=text, html=html_body,
                              template=template).insert()
        except DuplicateKeyError:
            return False
        if self._wake:
            self._wake()
        return True

    async def send_due(self, limit: int = 50) -> int:
        """Deliver due emails (called by the background job). Returns how many were handled."""
        coll = OutboxEmail.get_pymongo_collection()
        handled = 0
        for _ in range(limit):
            raw = await claim(coll, {"status": EmailStatus.pending, "next_attempt_at": {"$lte": utcnow()}},
                              lease_seconds=self.settings.worker_lease_seconds)
            if raw is None:
                break
            await self._deliver(raw)
            handled += 1
        return handled

    async def _deliver(self, raw: dict[str, Any]) -> None:
        coll = OutboxEmail.get_pymongo_collection()
        email = OutboxEmail.model_validate(raw)
        attempts = email.attempts + 1
        try:
            await self._smtp_send(email)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            give_up = attempts >= self.settings.email_max_attempts
            await release(coll, raw, retry_at=None if give_up else utcnow() + backoff(attempts), changes={
                "attempts": attempts,
                "status": EmailStatus.failed if give_up else EmailStatus.pending,
                "last_error": f"{type(exc).__name__}: {exc}"[:500],
            })
            EMAILS.labels("failed" if give_up else "retry").inc()
            log.warning("email %s not sent (attempt %s): %s", email.id, attempts, exc)
            return
        await release(coll, raw, changes={
            "attempts": attempts, "status": EmailStatus.sent, "sent_at": utcnow(), "last_error": None})
        EMAILS.labels("sent").inc()

    async def _smtp_send(self, email: OutboxEmail) -> None:
        s = self.settings
        msg = EmailMessage()
        msg["From"] = s.email_from
        msg["To"] = email.to
        msg["Subject"] = email.subject
        # A stable Message-ID lets receivers drop a duplicate if a process died after SMTP accepted it.
        msg["Message-ID"] = f"<{email.id}@amourflorals.com>"  # the same on every attempt
        msg.set_content(email.text)
        if email.html:
            msg.add_alternative(email.html, subtype="html")
        await aiosmtplib.send(
            msg, hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls, use_tls=s.smtp_use_tls, timeout=s.smtp_timeout,
        )
