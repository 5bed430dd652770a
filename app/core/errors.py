"""RFC 9457 problem+json for every error, the framework's own included."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

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


def status_code_slug(status: int) -> str:
    """The problem ``code`` of an error raised without one (the framework's 404/405/413, ...)."""
    return _TITLES.get(status, "error").lower().replace(" ", "-")


# Codes answered by this module itself (beside each AppError subclass's own): part of the published enum. The
# status slugs are those of errors raised without a code: by Starlette/FastAPI (no route 404, wrong method 405,
# an unreadable form 400), by the body limit (413) and for a non-JSON body (415).
FRAMEWORK_CODES = ("malformed-json", "validation-error", "internal-error",
                   *(status_code_slug(s) for s in (400, 404, 405, 413, 415)))


def problem(status: int, *, detail: str, code: str | None = None, title: str | None = None,
            request: Request | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    slug = code or status_code_slug(status)
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path if request is not None else None,
        "request_id": request_id_var.get(),
        "code": slug,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _loc(loc: tuple[Any, ...]) -> list[Any]:
    return list(loc)


async def _app_error(request: Request, exc: AppError) -> JSONResponse:
    return problem(exc.status, detail=exc.detail, code=exc.code, title=exc.title, request=request,
                   headers=exc.headers, **exc.extra)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    raw = exc.errors()
    if any(err.get("type") == "json_invalid" for err in raw):
        return problem(400, detail="The request body is not valid JSON.", code="malformed-json",
                       title="Malformed JSON", request=request)
    if isinstance(exc.body, bytes | bytearray) and exc.body:
        # FastAPI parses a body as JSON only under a JSON media type; any other bytes reach here unparsed.
        return problem(415, detail="Send the request body as application/json.", request=request)
    errors = []
    for err in raw:
        errors.append({"loc": _loc(err.get("loc", ())), "msg": err.get("msg", "invalid"), "type": err.get("type")})
    return problem(422, detail="The request did not pass validation.", code="validation-error",
                   request=request, errors=errors)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError | UnicodeDecodeError):
        # FastAPI reads a JSON body with json.loads and turns any error other than JSONDecodeError into a bare
        # 400: nesting too deep for the parser, or bytes that are not UTF-8. Both are bodies that are not JSON.
        return problem(400, detail="The request body is not valid JSON (not UTF-8, or nested too deeply).",
                       code="malformed-json", title="Malformed JSON", request=request)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No resource at this address."
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        detail = f"{request.method} is not allowed here."
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return problem(exc.status_code, detail=detail, request=request, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """The methods of the path the router resolves this URL to. Starlette's own 405 names only the first
    matching route's methods; here every route of the most specific matching path counts (GET and DELETE
    /cart are two routes; ``/images/order`` is its own path, not an ``{image_id}``)."""
    by_path: dict[str, set[str]] = {}
    for ctx in iter_route_contexts(request.app.routes):
        route_methods = getattr(ctx, "methods", None)
        if route_methods and ctx.path_format is not None and ctx.matches(request.scope)[0] != Match.NONE:
            by_path.setdefault(ctx.path_format, set()).update(route_methods)
    if not by_path:
        return []
    best = min(by_path, key=lambda path: path.count("{"))  # fewest parameters: literal segments win
    return sorted(by_path[best])


def internal_error(request: Request) -> JSONResponse:
    return problem(500, detail="Something went wrong on our side. Quote the request id if you contact us.",
                   code="internal-error", request=request)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    # Normally HttpMiddleware answers first (with the request id); this covers errors outside it.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return internal_error(request)


def install_error_handlers(app: FastAPI) -> None:
    # Starlette types every handler as taking Exception; each of these takes the class it is registered for.
    app.add_exception_handler(AppError, _app_error)  # type: ignore[arg-type]  # see above
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]  # see above
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]  # see above
    app.add_exception_handler(Exception, _unhandled)

