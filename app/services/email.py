"""Email: rendered into the outbox, delivered by a leased worker via SMTP.

Callers only enqueue (``enqueue`` for the plain-text templates below, ``enqueue_rendered``/``enqueue_many``
for Jinja-rendered ones, app/services/email_templates.py); the API answers even when SMTP is down, and the
email is retried with exponential backoff until it is accepted or EMAIL_MAX_ATTEMPTS is reached.

A permanent refusal of the recipient (an SMTP 5xx reply to ``RCPT TO``) is a hard bounce: the email is
``bounced`` (not retried), the address goes on the suppression list (``EmailSuppression``: no marketing
email is queued for it again) and its unsent marketing email is cancelled.

Any other error while delivering one email (a bug, a document that cannot be rendered) counts as a failed attempt
of that email alone: it is retried with the same backoff and ends ``failed``, never claimed again and again.

International addresses (RFC 6531): a non-ASCII domain travels IDNA-encoded (``xn--…``) in the envelope and the
To header, which every server takes; a non-ASCII local part needs the server's SMTPUTF8 extension (the
message is then sent with UTF-8 headers), and without it the email is ``failed`` at once (``Undeliverable``).
"""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from email import policy as email_policy
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import parseaddr
from string import Template
from typing import Any

import aiosmtplib
import idna
from pymongo.errors import BulkWriteError, DuplicateKeyError

from app.config import Settings
from app.core.clock import utcnow
from app.core.jobs import backoff, claim, release
from app.core.metrics import EMAILS
from app.models.marketing import EmailSuppression
from app.models.outbox import EmailStatus, OutboxEmail
from app.services.email_templates import RenderedEmail, render_paragraphs_html

log = logging.getLogger("app.email")

class WirePolicy(email_policy.EmailPolicy):
    """How messages are flattened for SMTP: CRLF, and headers folded at 78 characters (RFC 5322), so a long
    non-ASCII subject becomes several RFC 2047 encoded words of at most 75 characters each — except the
    ``List-Unsubscribe`` headers, kept on one line up to RFC 5322's 998 characters: a long URL must reach mail
    clients as written, never folded into an encoded word (which 78-character folding does to a token longer
    than a line)."""

    UNFOLDED = frozenset({"list-unsubscribe", "list-unsubscribe-post"})

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in self.UNFOLDED:
            return email_policy.EmailPolicy.fold_binary(self.clone(max_line_length=998), name, value)
        return super().fold_binary(name, value)


WIRE_POLICY = WirePolicy(linesep="\r\n")
# The same for a message sent with SMTPUTF8 (RFC 6531): headers (addresses, subject) may hold raw UTF-8.
WIRE_POLICY_UTF8 = WIRE_POLICY.clone(utf8=True)
NEEDS_SMTPUTF8 = "the address needs SMTPUTF8 (RFC 6531), which the SMTP server does not offer"
# How long a claimed email of an ordering key waits, at least, behind an earlier one of its key still pending.
ORDERED_WAIT = timedelta(seconds=1)

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
    """(subject, text, HTML) of a TEMPLATES email; the HTML part escapes every value (Jinja2 autoescape)."""
    subject_t, text_t = TEMPLATES[template]
    subject = Template(subject_t).safe_substitute(context)
    body = Template(text_t).safe_substitute(context)
    return subject, body + "\n— Amour Florals\n", render_paragraphs_html(subject, body)


def one_click_unsubscribe(*targets: str) -> dict[str, str]:
    """The headers of an email that can be stopped with one click (RFC 8058): ``List-Unsubscribe`` naming
    ``targets`` (the https URL that takes the POST first, then e.g. a ``mailto:``; RFC 2369 angle brackets are
    added) and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``."""
    return {"List-Unsubscribe": ", ".join(f"<{t}>" for t in targets),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


class Undeliverable(Exception):
    """An email that no retry can deliver as addressed (its ``str`` is the reason): it is ``failed`` at once."""


def smtp_address(address: str) -> tuple[str, bool]:
    """(the form of a bare ``local@domain`` address for SMTP, whether it needs SMTPUTF8).

    An ASCII address is returned as is. A non-ASCII domain is IDNA-encoded (IDNA 2008 with UTS #46 mapping, as
    the input validation checks it), which any server takes. A non-ASCII local part has no ASCII form: the
    address is returned as is and needs SMTPUTF8. Raises ``Undeliverable`` for a domain that IDNA refuses."""
    if address.isascii():
        return address, False
    local, at, domain = address.rpartition("@")
    if not at or not local.isascii():
        return address, True
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except UnicodeError as exc:  # idna.IDNAError is one
        raise Undeliverable(f"the domain {domain!r} is not a valid internationalized domain name: {exc}") from exc
    return f"{local}@{ascii_domain}", False


class EmailService:
    def __init__(self, settings: Settings, wake: Any = None) -> None:
        self.settings = settings
        self._wake = wake

    async def enqueue(self, *, to: str, template: str, context: dict[str, Any], dedupe_key: str,
                      ordering_key: str | None = None) -> bool:
        """Queue one email; returns False when an email with ``dedupe_key`` was already queued. Emails that share
        an ``ordering_key`` are delivered in the order they were queued (``OutboxEmail.ordering_key``)."""
        subject, text, html_body = render(template, context)
        try:
            await OutboxEmail(dedupe_key=dedupe_key, to=to, subject=subject, text=text, html=html_body,
                              template=template, ordering_key=ordering_key).insert()
        except DuplicateKeyError:
            return False
        if self._wake:
            self._wake()
        return True

    async def enqueue_rendered(self, *, to: str, rendered: RenderedEmail, template: str, dedupe_key: str,
                               headers: dict[str, str] | None = None, marketing: bool = False,
                               campaign_id: str | None = None) -> bool:
        """Queue one Jinja-rendered email; False when ``dedupe_key`` was already queued."""
        return await self.enqueue_many([self.item(to=to, rendered=rendered, template=template, dedupe_key=dedupe_key,
                                                  headers=headers, marketing=marketing,
                                                  campaign_id=campaign_id)]) == 1

    @staticmethod
    def item(*, to: str, rendered: RenderedEmail, template: str, dedupe_key: str,
             headers: dict[str, str] | None = None, marketing: bool = False,
             campaign_id: str | None = None) -> OutboxEmail:
        """An outbox document for ``enqueue_many`` (not stored yet)."""
        return OutboxEmail(dedupe_key=dedupe_key, to=to, subject=rendered.subject, text=rendered.text,
                           html=rendered.html, template=template, headers=headers or {}, marketing=marketing,
                           campaign_id=campaign_id)

    async def enqueue_many(self, items: list[OutboxEmail]) -> int:
        """Queue many emails in one unordered insert; those whose ``dedupe_key`` is already queued are skipped.
        Returns how many were queued now."""
        if not items:
            return 0
        try:
            result = await OutboxEmail.get_pymongo_collection().insert_many(
                [i.model_dump(by_alias=True) for i in items], ordered=False)
            queued = len(result.inserted_ids)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
            queued = int(exc.details.get("nInserted", 0))
        if queued and self._wake:
            self._wake()
        return queued

    async def send_due(self, limit: int = 50) -> int:
        """Deliver due emails (called by the background job). Returns how many were handled.

        One SMTP connection serves the whole round (a campaign's batch is not one handshake per email); it is
        dropped after any error other than a refused recipient, and the next email opens a new one."""
        coll = OutboxEmail.get_pymongo_collection()
        handled = 0
        smtp: aiosmtplib.SMTP | None = None
        try:
            for _ in range(limit):
                raw = await claim(coll, {"status": EmailStatus.pending, "next_attempt_at": {"$lte": utcnow()}},
                                  lease_seconds=self.settings.worker_lease_seconds)
                if raw is None:
                    break
                if raw.get("ordering_key") and await self._wait_for_earlier(raw):
                    continue
                smtp = await self._deliver(raw, smtp)
                handled += 1
        finally:
            await _close(smtp)
        return handled

    async def _wait_for_earlier(self, raw: dict[str, Any]) -> bool:
        """Keep a claimed email of an ordering key behind the earlier ones of its key: when one queued before it
        (and due no later) is still pending — waiting for a retry, or being sent by another worker — give the
        claim back until that one's next try (at least ``ORDERED_WAIT`` from now) and return True."""
        coll = OutboxEmail.get_pymongo_collection()
        earlier = await coll.find_one(
            {"ordering_key": raw["ordering_key"], "status": EmailStatus.pending.value, "_id": {"$lt": raw["_id"]},
             "next_attempt_at": {"$lte": raw["next_attempt_at"]}},
            {"lease": 1, "next_attempt_at": 1}, sort=[("_id", 1)])
        if earlier is None:
            return False
        now = utcnow()
        held = (earlier.get("lease") or {}).get("until")
        after = max(t for t in (now + ORDERED_WAIT, held, earlier.get("next_attempt_at")) if t is not None)
        await release(coll, raw, retry_at=after)
        return True

    async def _deliver(self, raw: dict[str, Any], smtp: aiosmtplib.SMTP | None) -> aiosmtplib.SMTP | None:
        """Send one claimed email over ``smtp`` (or a new connection) and record the outcome; returns the
        connection to go on with (None when it should not be reused). A kept connection the server closed
        meanwhile is replaced once. Whatever goes wrong, the email's lease is released with its outcome."""
        coll = OutboxEmail.get_pymongo_collection()
        attempts = _attempts(raw) + 1
        try:
            email = OutboxEmail.model_validate(raw)
            reused = smtp is not None and smtp.is_connected
            if smtp is None or not reused:
                smtp = await self._connect()
            try:
                await self._send(smtp, email)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                if not reused:
                    raise
                await _close(smtp)
                smtp = await self._connect()
                await self._send(smtp, email)
        except aiosmtplib.SMTPRecipientsRefused as exc:  # the envelope was reset: the connection goes on
            permanent = [r for r in exc.recipients if 500 <= r.code < 600]
            if not permanent:
                await self._retry_later(raw, attempts, exc)
                return smtp
            detail = f"{permanent[0].code} {permanent[0].message}"[:500]
            await release(coll, raw, changes={"attempts": attempts, "status": EmailStatus.bounced,
                                              "last_error": f"hard bounce: {detail}"})
            await suppress_address(raw["to"], "hard-bounce", detail)
            EMAILS.labels("bounced").inc()
            log.warning("email %s bounced permanently: %s", raw["_id"], detail)
            return smtp
        except Undeliverable as exc:  # found before the envelope was opened: the connection goes on
            await release(coll, raw, changes={"attempts": attempts, "status": EmailStatus.failed,
                                              "last_error": str(exc)[:500]})
            EMAILS.labels("failed").inc()
            log.warning("email %s cannot be delivered: %s", raw["_id"], exc)
            return smtp
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await _close(smtp)
            await self._retry_later(raw, attempts, exc)
            return None
        except Exception as exc:  # a bug or a document we cannot send: a failed attempt of this email only
            await _close(smtp)  # in an unknown state (maybe mid-envelope)
            await self._retry_later(raw, attempts, exc, unexpected=True)
            return None
        await release(coll, raw, changes={
            "attempts": attempts, "status": EmailStatus.sent, "sent_at": utcnow(), "last_error": None})
        EMAILS.labels("sent").inc()
        return smtp

    async def _send(self, smtp: aiosmtplib.SMTP, email: OutboxEmail) -> None:
        """Send ``email`` over a connected, greeted session. SMTPUTF8 is used only for an address that needs it;
        raises ``Undeliverable`` when the server does not offer it (nothing was sent)."""
        sender, sender_utf8 = smtp_address(parseaddr(self.settings.email_from)[1])
        recipient, recipient_utf8 = smtp_address(email.to)
        utf8 = sender_utf8 or recipient_utf8
        if utf8 and not smtp.supports_extension("smtputf8"):
            raise Undeliverable(NEEDS_SMTPUTF8)
        data = self._wire(email, recipient, utf8=utf8)
        await smtp.sendmail(sender, [recipient], data, mail_options=["SMTPUTF8"] if utf8 else None)

    async def _retry_later(self, raw: dict[str, Any], attempts: int, exc: Exception, *,
                           unexpected: bool = False) -> None:
        """A failed attempt: try again after the backoff, or give up (``failed``) after EMAIL_MAX_ATTEMPTS. An
        ``unexpected`` error (not an SMTP or network one) is logged with its traceback, once per attempt. An email
        cancelled while this attempt ran (its campaign was cancelled, its address unsubscribed) stays cancelled."""
        give_up = attempts >= self.settings.email_max_attempts
        coll = OutboxEmail.get_pymongo_collection()
        outcome = {"attempts": attempts, "last_error": f"{type(exc).__name__}: {exc}"[:500]}
        if not await release(coll, raw, retry_at=None if give_up else utcnow() + backoff(attempts),
                             where={"status": EmailStatus.pending.value},
                             changes={**outcome, "status": EmailStatus.failed if give_up else EmailStatus.pending}):
            await release(coll, raw, changes=outcome)  # no longer pending: keep its status, end the lease
        EMAILS.labels("failed" if give_up else "retry").inc()
        log.warning("email %s not sent (attempt %s%s): %s: %s", raw["_id"], attempts, ", given up" if give_up else "",
                    type(exc).__name__, exc, exc_info=exc if unexpected else None)

    def _wire(self, email: OutboxEmail, to: str, *, utf8: bool = False) -> bytes:
        """The message as sent, addressed to ``to`` (the envelope recipient); ``utf8``: with raw UTF-8 headers,
        for a session that uses SMTPUTF8."""
        msg = EmailMessage()
        msg["From"] = self.settings.email_from
        msg["To"] = to
        msg["Subject"] = email.subject
        # A stable Message-ID lets receivers drop a duplicate if a process died after SMTP accepted it.
        msg["Message-ID"] = f"<{email.id}@amourflorals.com>"  # the same on every attempt
        for name, value in email.headers.items():
            msg[name] = value
        msg.set_content(email.text)
        if email.html:
            msg.add_alternative(email.html, subtype="html")
        out = io.BytesIO()
        BytesGenerator(out, policy=WIRE_POLICY_UTF8 if utf8 else WIRE_POLICY).flatten(msg)
        return out.getvalue()

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls, use_tls=s.smtp_use_tls, timeout=s.smtp_timeout,
        )
        try:
            await smtp.connect()
            if smtp.is_ehlo_or_helo_needed:  # the extensions (SMTPUTF8) are known before an email is sent
                try:
                    await smtp.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await smtp.helo()
        except BaseException:
            smtp.close()
            raise
        return smtp


def _attempts(raw: dict[str, Any]) -> int:
    """The attempts recorded on a stored email (0 when the field is missing or not a number)."""
    n = raw.get("attempts")
    return n if isinstance(n, int) and not isinstance(n, bool) else 0


async def _close(smtp: aiosmtplib.SMTP | None) -> None:
    """End an SMTP session politely; a connection that is already broken is just closed."""
    if smtp is None or not smtp.is_connected:
        return
    try:
        await smtp.quit()
    except Exception:  # whatever the session's state, the connection ends here
        smtp.close()


async def cancel_marketing_to(address: str) -> int:
    """Cancel the unsent marketing email queued for ``address`` (it unsubscribed, bounced or closed its
    account). An email a worker is sending at this moment may still go. Returns how many were cancelled."""
    res = await OutboxEmail.get_pymongo_collection().update_many(
        {"to": address, "status": EmailStatus.pending, "marketing": True}, {"$set": {"status": EmailStatus.cancelled}})
    return res.modified_count


async def suppress_address(address: str, reason: str, detail: str | None = None) -> None:
    """Put ``address`` on the suppression list (once) and cancel its unsent marketing email."""
    try:
        await EmailSuppression(email=address.lower(), reason=reason, detail=detail).insert()
    except DuplicateKeyError:
        pass
    await cancel_marketing_to(address)
