"""A local HTTP double of the few Stripe endpoints the app uses, for the real `stripe` SDK.

Runs `http.server` in a thread on a free loopback port. It records every request (form-encoded body
decoded into a flat dict, the `Idempotency-Key` header as sent), replays a response for a repeated
idempotency key as Stripe does, and lets tests move a PaymentIntent to any state. Webhook payloads are
signed with Stripe's documented scheme (`t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">`).
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


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]
    idempotency_key: str | None


def _new(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


@dataclass
class StripeDouble:
    requests: list[Recorded] = field(default_factory=list)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    # path prefix -> number of upcoming requests answered with HTTP 500
    failures: dict[str, int] = field(default_factory=dict)
    _idem: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> str:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                status, payload = double.handle(method, self.path.split("?")[0], dict(parse_qsl(body)),
                                                self.headers.get("Idempotency-Key"))
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Request-Id", _new("req"))
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
            self._idem.clear()

    # ---- what tests read -------------------------------------------------------------------------
    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

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

    def cancel(self, pi_id: str) -> dict[str, Any]:
        with self._lock:
            self.intents[pi_id].update(status="canceled", cancellation_reason="abandoned")
            return dict(self.intents[pi_id])

    # ---- the endpoints -----------------------------------------------------------------------------
    def handle(self, method: str, path: str, form: dict[str, str], key: str | None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(Recorded(method, path, form, key))
            for prefix, left in list(self.failures.items()):
                if left > 0 and path.startswith(prefix):
                    self.failures[prefix] = left - 1
                    return 500, _error("api_error", "Injected failure.")
            if method == "POST" and key:
                seen = self._idem.get(key)
                if seen:
                    if seen[0] != path + json.dumps(form, sort_keys=True):
                        return 400, _error("idempotency_error", "Keys for idempotent requests can only be used "
                                           "with the same parameters they were first used with.")
                    return seen[1], seen[2]
            status, payload = self._route(method, path, form)
            if method == "POST" and key and status < 500:
                self._idem[key] = (path + json.dumps(form, sort_keys=True), status, payload)
            return status, payload

    def _route(self, method: str, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")  # v1, resource, id?, action?
        if parts[:2] == ["v1", "payment_intents"]:
            if method == "POST" and len(parts) == 2:
                return self._create_intent(form)
            pi = self.intents.get(parts[2]) if len(parts) > 2 else None
            if pi is None:
                return 404, _error("invalid_request_error", "No such payment_intent.", code="resource_missing")
            if method == "GET" and len(parts) == 3:
                return 200, dict(pi)
            if method == "POST" and parts[3:] == ["cancel"]:
                if pi["status"] in ("succeeded", "canceled"):
                    message = f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}."
                    return 400, _error("invalid_request_error", message, code="payment_intent_unexpected_state")
                pi.update(status="canceled", cancellation_reason=form.get("cancellation_reason"))
                return 200, dict(pi)
        if parts[:2] == ["v1", "charges"] and method == "GET" and len(parts) == 3:
            charge = self.charges.get(parts[2])
            return (200, dict(charge)) if charge else (404, _error("invalid_request_error", "No such charge."))
        if parts[:2] == ["v1", "refunds"] and method == "POST" and len(parts) == 2:
            return self._create_refund(form)
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _create_intent(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        pid = _new("pi")
        pi = {
            "id": pid, "object": "payment_intent", "amount": int(form["amount"]), "currency": form["currency"],
            "status": "requires_payment_method", "client_secret": f"{pid}_secret_{uuid.uuid4().hex[:16]}",
            "amount_received": 0, "latest_charge": None, "last_payment_error": None, "cancellation_reason": None,
            "metadata": {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")},
            "description": form.get("description"), "receipt_email": form.get("receipt_email"),
            "created": int(time.time()), "livemode": False,
        }
        self.intents[pid] = pi
        return 200, dict(pi)

    def _create_refund(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        pi = self.intents.get(form.get("payment_intent", ""))
        if pi is None or pi["status"] != "succeeded":
            return 400, _error("invalid_request_error", "This PaymentIntent has no successful charge to refund.")
        charge = self.charges[pi["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        amount = int(form.get("amount", left))
        if amount <= 0 or amount > left:
            return 400, _error("invalid_request_error",
                               f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left}).",
                               code="amount_too_large")
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        refund = {"id": _new("re"), "object": "refund", "amount": amount, "charge": charge["id"],
                  "currency": charge["currency"], "payment_intent": pi["id"], "status": "succeeded",
                  "reason": form.get("reason"),
                  "metadata": {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")}}
        self.refunds[refund["id"]] = refund
        return 200, dict(refund)


def _error(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **({"code": code} if code else {})}}


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    return json.dumps({
        "id": event_id or _new("evt"), "object": "event", "type": kind, "api_version": "2025-01-27",
        "created": int(time.time()), "livemode": False, "data": {"object": obj},
    }).encode()
