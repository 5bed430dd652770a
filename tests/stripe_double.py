"""A local HTTP double of the few Stripe endpoints the app uses, for the real `stripe` SDK.

Runs `http.server` in a thread on a free loopback port and behaves like Stripe wherever the app depends on
it (each rule below from Stripe's API reference):
- PaymentIntent create refuses an amount below the currency's minimum charge (``amount_too_small``,
  USD 50 cents; https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts) and an amount that
  is not a positive integer;
- an unknown object is a 404 ``resource_missing`` (an unknown one named in a parameter: a 400 with that code);
- a repeated ``Idempotency-Key`` replays the first result (header ``Idempotent-Replayed: true``); reused with
  other parameters it is a 400 ``idempotency_error``; requests refused while validating their parameters
  are not saved (https://docs.stripe.com/api/idempotent_requests);
- a refund is accepted up to what is left of the charge, whoever asks (the API or "the dashboard":
  ``dashboard_refund``), and moves the charge's ``amount_refunded``; more is a 400 ``amount_too_large``,
  a fully refunded charge a 400 ``charge_already_refunded``;
- a PaymentIntent can be canceled unless it succeeded, was canceled or is processing
  (``payment_intent_unexpected_state``).
It records every request (form-encoded body decoded into a flat dict, the `Idempotency-Key` header as
sent), lets tests move a PaymentIntent to any state and inject failures (an error answer, a dropped
connection, a malformed body). Webhook payloads are signed with Stripe's documented scheme
(`t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

# Stripe's minimum charge per currency, in the currency's minor unit (JPY has none: 50 yen).
MIN_CHARGE = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "jpy": 50}
DROP = object()  # an injected answer: close the connection without a response


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]
    idempotency_key: str | None
    replayed: bool = False


@dataclass
class Injected:
    """The next ``count`` requests whose method and path match get ``answer`` instead of being handled."""
    method: str
    prefix: str
    answer: Any  # (status, payload) or DROP
    count: int = 1


class Refused(Exception):
    """A request refused while its parameters were validated: answered, never saved for idempotency."""

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(payload["error"]["message"])
        self.status, self.payload = status, payload


def _new(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def _metadata(form: dict[str, str]) -> dict[str, str]:
    return {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")}


@dataclass
class StripeDouble:
    requests: list[Recorded] = field(default_factory=list)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    # path prefix -> number of upcoming requests answered with HTTP 500
    failures: dict[str, int] = field(default_factory=dict)
    injected: list[Injected] = field(default_factory=list)
    _idem: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    keep_alive: bool = False  # HTTP/1.1 persistent connections, as Stripe keeps them (bench/checkout.py)

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> str:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if double.keep_alive else "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                answer = double.handle(method, self.path.split("?")[0], dict(parse_qsl(body)),
                                       self.headers.get("Idempotency-Key"))
                if answer is DROP:
                    self.close_connection = True
                    return
                status, payload, replayed = answer
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Request-Id", _new("req"))
                if replayed:
                    self.send_header("Idempotent-Replayed", "true")
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.intents.clear()
            self.charges.clear()
            self.refunds.clear()
            self.failures.clear()
            self.injected.clear()
            self._idem.clear()

    # ---- what tests read -------------------------------------------------------------------------
    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def charge_of(self, pi_id: str) -> dict[str, Any]:
        """The PaymentIntent's charge as Stripe holds it now (a copy: the body of a ``charge.*`` event)."""
        with self._lock:
            return dict(self.charges[self.intents[pi_id]["latest_charge"]])

    # ---- what tests change -----------------------------------------------------------------------
    def succeed(self, pi_id: str, amount: int | None = None) -> dict[str, Any]:
        with self._lock:
            pi = self.intents[pi_id]
            received = pi["amount"] if amount is None else amount
            charge = {"id": _new("ch"), "object": "charge", "amount": received, "amount_refunded": 0,
                      "currency": pi["currency"], "payment_intent": pi_id, "refunded": False, "status": "succeeded"}
            self.charges[charge["id"]] = charge
            pi.update(status="succeeded", amount_received=received, latest_charge=charge["id"],
                      last_payment_error=None)
            return dict(pi)

    def fail(self, pi_id: str, message: str = "Your card was declined.") -> dict[str, Any]:
        with self._lock:
            pi = self.intents[pi_id]
            pi.update(status="requires_payment_method",
                      last_payment_error={"code": "card_declined", "message": message, "type": "card_error"})
            return dict(pi)

    def processing(self, pi_id: str) -> dict[str, Any]:
        """The customer confirmed a payment that settles later (e.g. a bank debit): it cannot be canceled."""
        with self._lock:
            self.intents[pi_id].update(status="processing")
            return dict(self.intents[pi_id])

    def cancel(self, pi_id: str) -> dict[str, Any]:
        with self._lock:
            self.intents[pi_id].update(status="canceled", cancellation_reason="abandoned")
            return dict(self.intents[pi_id])

    def forget(self, pi_id: str) -> dict[str, Any]:
        """Stripe no longer knows the PaymentIntent (another account or mode, or deleted test data)."""
        with self._lock:
            return self.intents.pop(pi_id)

    def dashboard_refund(self, pi_id: str, amount: int | None = None) -> dict[str, Any]:
        """A refund made in Stripe's dashboard (no API call of ours). Returns the charge as it now is."""
        with self._lock:
            status, payload = self._create_refund({"payment_intent": pi_id, **({"amount": str(amount)}
                                                                                if amount is not None else {})})
            assert status == 200, payload
            return dict(self.charges[payload["charge"]])

    def fail_next(self, prefix: str, *, status: int = 500, kind: str = "api_error", code: str | None = None,
                  message: str = "Injected failure.", method: str = "POST", count: int = 1) -> None:
        """Answer the next ``count`` matching requests with a Stripe error (nothing is done or saved)."""
        self.injected.append(Injected(method, prefix, (status, _error(kind, message, code)), count))

    def drop_next(self, prefix: str, *, method: str = "POST", count: int = 1) -> None:
        """Close the connection of the next matching requests without answering (a network failure)."""
        self.injected.append(Injected(method, prefix, DROP, count))

    def respond_next(self, prefix: str, status: int, payload: Any, *, method: str = "POST") -> None:
        """Answer the next matching request with this (possibly malformed) body."""
        self.injected.append(Injected(method, prefix, (status, payload)))

    # ---- the endpoints -----------------------------------------------------------------------------
    def handle(self, method: str, path: str, form: dict[str, str], key: str | None) -> Any:
        """(status, payload, replayed) for one request, or DROP."""
        with self._lock:
            record = Recorded(method, path, form, key)
            self.requests.append(record)
            for prefix, left in list(self.failures.items()):
                if left > 0 and path.startswith(prefix):
                    self.failures[prefix] = left - 1
                    return 500, _error("api_error", "Injected failure."), False
            for inj in self.injected:
                if inj.count > 0 and inj.method == method and path.startswith(inj.prefix):
                    inj.count -= 1
                    return inj.answer if inj.answer is DROP else (*inj.answer, False)
            fingerprint = path + json.dumps(form, sort_keys=True)
            if method == "POST" and key and key in self._idem:
                seen = self._idem[key]
                if seen[0] != fingerprint:
                    return 400, _error("idempotency_error", "Keys for idempotent requests can only be used with "
                                       "the same parameters they were first used with."), False
                record.replayed = True
                return seen[1], seen[2], True
            try:
                status, payload = self._route(method, path, form)
            except Refused as exc:
                return exc.status, exc.payload, False
            if method == "POST" and key and status < 300:
                self._idem[key] = (fingerprint, status, payload)
            return status, payload, False

    def _route(self, method: str, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")  # v1, resource, id?, action?
        if parts[:2] == ["v1", "payment_intents"]:
            if method == "POST" and len(parts) == 2:
                return self._create_intent(form)
            pi = self.intents.get(parts[2]) if len(parts) > 2 else None
            if pi is None:
                raise Refused(404, _missing("payment_intent", parts[2] if len(parts) > 2 else "", "intent"))
            if method == "GET" and len(parts) == 3:
                return 200, dict(pi)
            if method == "POST" and parts[3:] == ["cancel"]:
                if pi["status"] in ("succeeded", "canceled", "processing"):
                    message = f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}."
                    raise Refused(400, _error("invalid_request_error", message,
                                              code="payment_intent_unexpected_state"))
                pi.update(status="canceled", cancellation_reason=form.get("cancellation_reason"))
                return 200, dict(pi)
        if parts[:2] == ["v1", "charges"] and method == "GET" and len(parts) == 3:
            charge = self.charges.get(parts[2])
            if charge is None:
                raise Refused(404, _missing("charge", parts[2], "id"))
            return 200, dict(charge)
        if parts[:2] == ["v1", "refunds"] and method == "POST" and len(parts) == 2:
            return self._create_refund(form)
        raise Refused(404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path})."))

    def _create_intent(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        currency = form.get("currency", "")
        amount = _positive_int(form.get("amount"))
        if currency not in MIN_CHARGE:
            raise Refused(400, _error("invalid_request_error", f"Invalid currency: {currency}.", param="currency"))
        minimum = MIN_CHARGE[currency]
        if amount < minimum:
            shown = f"{minimum}" if currency == "jpy" else f"{minimum / 100:.2f}"
            raise Refused(400, _error("invalid_request_error", f"Amount must be at least {shown} {currency}",
                                      code="amount_too_small", param="amount"))
        pid = _new("pi")
        pi = {
            "id": pid, "object": "payment_intent", "amount": amount, "currency": currency,
            "status": "requires_payment_method", "client_secret": f"{pid}_secret_{uuid.uuid4().hex[:16]}",
            "amount_received": 0, "latest_charge": None, "last_payment_error": None, "cancellation_reason": None,
            "metadata": _metadata(form), "description": form.get("description"),
            "receipt_email": form.get("receipt_email"), "created": int(time.time()), "livemode": False,
        }
        self.intents[pid] = pi
        return 200, dict(pi)

    def _create_refund(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if "charge" in form:
            charge = self.charges.get(form["charge"])
            if charge is None:
                raise Refused(400, _missing("charge", form["charge"], "charge"))
            pi = self.intents.get(charge["payment_intent"])
        else:
            pi = self.intents.get(form.get("payment_intent", ""))
            if pi is None:
                raise Refused(400, _missing("payment_intent", form.get("payment_intent", ""), "payment_intent"))
            if pi["status"] != "succeeded":
                raise Refused(400, _error("invalid_request_error",
                                          "This PaymentIntent does not have a successful charge to refund."))
            charge = self.charges[pi["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        if left <= 0:
            raise Refused(400, _error("invalid_request_error", f"Charge {charge['id']} has already been refunded.",
                                      code="charge_already_refunded"))
        amount = _positive_int(form["amount"]) if "amount" in form else left
        if amount > left:
            raise Refused(400, _error("invalid_request_error", f"Refund amount ({amount}) is greater than "
                                      f"unrefunded amount on charge ({left})", code="amount_too_large",
                                      param="amount"))
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        refund = {"id": _new("re"), "object": "refund", "amount": amount, "charge": charge["id"],
                  "currency": charge["currency"], "payment_intent": charge["payment_intent"], "status": "succeeded",
                  "reason": form.get("reason"), "metadata": _metadata(form), "created": int(time.time())}
        self.refunds[refund["id"]] = refund
        return 200, dict(refund)


def _positive_int(raw: str | None) -> int:
    if raw is None or not raw.isdigit() or int(raw) < 1:
        raise Refused(400, _error("invalid_request_error", "Invalid positive integer",
                                  code="parameter_invalid_integer", param="amount"))
    return int(raw)


def _error(kind: str, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    extra = {**({"code": code} if code else {}), **({"param": param} if param else {})}
    return {"error": {"type": kind, "message": message, **extra}}


def _missing(kind: str, object_id: str, param: str) -> dict[str, Any]:
    return _error("invalid_request_error", f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def event(kind: str, obj: Any, event_id: str | None = None) -> bytes:
    return json.dumps({
        "id": event_id or _new("evt"), "object": "event", "type": kind, "api_version": "2025-01-27",
        "created": int(time.time()), "livemode": False, "data": {"object": obj},
    }).encode()
