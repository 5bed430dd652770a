"""One pure-ASGI middleware for what every request needs: request id, security headers, body cap,
access log and metrics. (Pure ASGI rather than BaseHTTPMiddleware: it costs little per request.)"""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.context import request_id_var, user_id_var
from app.core.errors import internal_error, problem
from app.core.metrics import observe_request

log = logging.getLogger("app.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class BodyTooLarge(HTTPException):
    """Raised while the body streams in. An HTTPException, so FastAPI re-raises it while parsing the body
    (any other exception there becomes a 400) and the error handlers answer 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class HttpMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int, hsts: bool) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_upload = max_upload_bytes
        headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if hsts:
            headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
        self.security_headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        content_type = b""
        content_length = None
        for k, v in scope["headers"]:
            if k == b"x-request-id":
                incoming = v.decode("latin-1")
            elif k == b"content-type":
                content_type = v
            elif k == b"content-length":
                content_length = v
        rid = incoming if incoming and _SAFE_ID.match(incoming) else os.urandom(16).hex()
        token = request_id_var.set(rid)
        user_token = user_id_var.set(None)
        limit = self.max_upload if content_type.startswith(b"multipart/") else self.max_body
        start = time.perf_counter()
        status_holder = [500]
        started = [False]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
                status_holder[0] = message["status"]
                hdrs = list(message.get("headers", []))
                hdrs.append((b"x-request-id", rid.encode()))
                hdrs.extend(self.security_headers)
                message["headers"] = hdrs
            await send(message)

        try:
            if content_length is not None and content_length.isdigit() and int(content_length) > limit:
                await self._too_large(scope, receive, send_wrapper, limit)
                return
            received = [0]

            async def receive_wrapper() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    received[0] += len(message.get("body", b""))
                    if received[0] > limit:
                        raise BodyTooLarge(limit)
                return message

            try:
                await self.app(scope, receive_wrapper, send_wrapper)
            except BodyTooLarge:
                if not started[0]:
                    await self._too_large(scope, receive, send_wrapper, limit)
            except Exception:
                # Answered here, inside the request-id context, so the 500 problem and the log line carry
                # the id and the response gets the usual headers (Starlette's outer handler would not).
                log.exception("unhandled error on %s %s", scope["method"], scope["path"])
                if started[0]:
                    raise
                await internal_error(Request(scope))(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            path_tpl = getattr(route, "path", None) or "unmatched"
            observe_request(scope["method"], path_tpl, status_holder[0], elapsed)
            log.info("request", extra={"method": scope["method"], "path": scope["path"],
                                       "status": status_holder[0], "duration_ms": round(elapsed * 1000, 2)})
            request_id_var.reset(token)
            user_id_var.reset(user_token)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(413, detail=BodyTooLarge(limit).detail, request=Request(scope))
        await response(scope, receive, send)
