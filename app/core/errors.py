"""RFC 9457 problem+json for every error, the framework's own included."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.context import request_id_var

log = logging.getLogger("app.errors")

PROBLEM_BASE = "https://amourflorals.com/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class AppError(Exception):
    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None, *, code: str | None = None, title: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code:
            self.code = code
        if title:
            self.title = title
        self.headers = headers or {}
        self.extra = extra


class BadRequest(AppError):
    status, code, title = 400, "bad-request", "Bad request"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(AppError):
    status, code, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class Unprocessable(AppError):
    status, code, title = 422, "unprocessable", "Unprocessable request"


class TooManyRequests(AppError):
    status, code, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(AppError):
    status, code, title = 503, "service-unavailable", "Service unavailable"


_TITLES = {
    400: "Bad request", 401: "Authentication required", 403: "Not allowed", 404: "Not found",
    405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 413: "Request body too large",
    415: "Unsupported media type", 422: "Validation failed", 429: "Too many requests",
    500: "Internal server error", 503: "Service unavailable",
}


def problem(status: int, *, detail: str, code: str | None = None, title: str | None = None,
            request: Request | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    slug = code or _TITLES.get(status, "error").lower().replace(" ", "-")
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path if request is not None else None,
        "request_id": request_id_var.get(),
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _loc(loc: tuple[Any, ...]) -> list[Any]:
    return list(loc)


async def _app_error(request: Request, exc: AppError) -> JSONResponse:
    return problem(exc.status, detail=exc.detail, code=exc.code, title=exc.title, request=request,
                   headers=exc.headers, **exc.extra)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = []
    for err in exc.errors():
        errors.append({"loc": _loc(err.get("loc", ())), "msg": err.get("msg", "invalid"), "type": err.get("type")})
    return problem(422, detail="The request did not pass validation.", code="validation-error",
                   request=request, errors=errors)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No resource at this address."
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed here."
    return problem(exc.status_code, detail=detail, request=request, headers=getattr(exc, "headers", None))


def internal_error(request: Request) -> JSONResponse:
    return problem(500, detail="Something went wrong on our side. Quote the request id if you contact us.",
                   code="internal-error", request=request)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    # Normally HttpMiddleware answers first (with the request id); this covers errors outside it.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return internal_error(request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unhandled)

