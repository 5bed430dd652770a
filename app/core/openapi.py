"""The published OpenAPI document: FastAPI's schema of the routes, completed from what the code declares.

FastAPI documents what a route's signature says. What the dependencies and the error handlers do is
added here, per operation, from the code itself:

- statuses: each dependency's :class:`~app.core.contract.Contract` (``current_user`` → 401,
  ``staff_user``/``admin_user`` → 403, ``default_limit`` → 429 unless the endpoint is exempt), a JSON body
  → 400 (malformed JSON), 413 (body cap) and 415 (not JSON), any parameter or body → 422, plus the route's
  own ``responses=problem_responses(...)``;
- every error status gets the real :class:`~app.core.problems.Problem` schema under
  ``application/problem+json`` (nothing else is ever sent for an error), with ``Retry-After`` on 429 and
  ``WWW-Authenticate`` on 401; every response gets ``X-Request-ID``;
- security from the dependencies: none on public operations, optional (``{}`` beside the schemes) where a
  guest may call, required otherwise; both an HTTP bearer scheme and the OAuth2 password flow;
- cached reads (``if_none_match`` dependency): ``ETag``/``Cache-Control`` on 200 and a 304;
- the problem ``code`` enum, collected from every ``AppError`` subclass, every literal ``code="…"`` passed to
  one in ``app/`` and the codes registered with :func:`register_problem_codes`;
- response-only schemas list every property as required (responses always carry every field); integer
  money fields say they are minor units; schema names without module paths; stable short operation ids
  (:func:`operation_id`).
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, get_origin

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from app.core.contract import Contract, contract_of
from app.core.errors import FRAMEWORK_CODES, PROBLEM_MEDIA_TYPE, AppError, status_code_slug

PROBLEM_REF = "#/components/schemas/Problem"
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "`Authorization: Bearer <access_token>` with the access token from `/auth/login`, "
                              "`/auth/register`, `/auth/token` or `/auth/refresh`."},
}
REQUIRED: list[dict[str, list[str]]] = [{"bearer": []}, {"oauth2": []}]
OPTIONAL = [*REQUIRED, {}]

_STATUS_TEXT = {
    400: "Malformed request (`malformed-json`: the body is not valid JSON) or a rejected token.",
    401: "No valid access token (or credentials) where one is needed.",
    403: "Signed in, but not allowed.",
    404: "No such resource, or not yours.",
    409: "Conflicts with the current state (see `code`).",
    413: "The request body is larger than allowed.",
    415: "The body is not sent as the declared media type.",
    422: "The request failed validation (`validation-error` with `errors[]`) or a business rule (see `code`).",
    429: "Rate limited: retry after `Retry-After` seconds.",
    500: "Unexpected server error.",
    503: "A service this operation needs is unavailable or not configured.",
}

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {"description": "The request id (the one sent, if well-formed, else generated); it is in "
                                    "every log line and problem body of this request.",
                     "schema": {"type": "string", "maxLength": 128}},
    "Retry-After": {"description": "Seconds to wait before retrying.", "required": True,
                    "schema": {"type": "integer", "minimum": 1}},
    "WWW-Authenticate": {"description": "`Bearer`.", "schema": {"type": "string"}},
    "ETag": {"description": "Strong validator of this representation; send it back in `If-None-Match`.",
             "required": True, "schema": {"type": "string"}},
    "Cache-Control": {"description": "How long shared and private caches may keep it.", "required": True,
                      "schema": {"type": "string"}},
    "Location": {"description": "URL of the created resource (or of the list that holds it).", "required": True,
                 "schema": {"type": "string"}},
    "X-Cart-Token": {"description": "Only when this request created a guest cart: its token, to send back in "
                                    "the `X-Cart-Token` request header (also `cart_token` in the body).",
                     "schema": {"type": "string"}},
    "Idempotent-Replayed": {"description": "`true` when this is the stored result of an earlier request with "
                                           "the same `Idempotency-Key` (nothing was done again).",
                            "schema": {"type": "string", "enum": ["true"]}},
    "Set-Cookie": {"description": "The httpOnly refresh cookie (`af_refresh`; see the `/auth/refresh` operation).",
                   "schema": {"type": "string"}},
}


def response_headers(status: int, *names: str, description: str | None = None) -> dict[int | str, Any]:
    """Route-level ``responses`` entry declaring response headers (from :data:`HEADERS`) on ``status``."""
    entry: dict[str, Any] = {"headers": {n: {"$ref": f"#/components/headers/{n}"} for n in names if n in HEADERS}}
    if description:
        entry["description"] = description
    return {status: entry}


# --- problem codes ----------------------------------------------------------------------------------
_registered_codes: set[str] = set()
_T = TypeVar("_T")


def register_problem_codes(*codes: str) -> None:
    """Add codes that are raised from a variable (not a literal) to the published enum."""
    _registered_codes.update(codes)


def _subclasses(cls: type[_T]) -> Iterator[type[_T]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


# Besides AppError subclasses, the calls whose ``code=`` is a problem code: ``core.errors.problem`` and the
# cart's ``PromoError`` (a promo refusal the checkout answers with that code).
CODE_CARRIERS = frozenset({"AppError", "problem", "PromoError"})


@cache
def _literal_codes(root: Path, carriers: frozenset[str]) -> frozenset[str]:
    """Literal ``code="…"`` keywords of calls to ``carriers`` (class or function names) in the package's source
    (``raise Conflict(..., code="x")``); other calls' ``code=`` (a size, an add-on, a promo code) are data."""
    found: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name not in carriers:
                continue
            for kw in node.keywords:
                if kw.arg == "code" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    found.add(kw.value.value)
    return frozenset(found)


def problem_codes() -> list[str]:
    """Every problem ``code`` the API can answer (see the module docstring for where they come from)."""
    codes = set(FRAMEWORK_CODES) | _registered_codes | {AppError.code}
    subclasses = list(_subclasses(AppError))
    codes |= {sub.code for sub in subclasses}
    carriers = CODE_CARRIERS | {sub.__name__ for sub in subclasses}
    codes |= _literal_codes(Path(__file__).resolve().parents[1], frozenset(carriers))
    return sorted(codes)


# --- operation ids ---------------------------------------------------------------------------------
_VERBS = {"PATCH": "update", "PUT": "put", "DELETE": "delete"}


def _is_list(model: Any) -> bool:
    if get_origin(model) is list:
        return True
    return isinstance(model, type) and issubclass(model, BaseModel) and "items" in model.model_fields


def operation_id(route: Any, method: str) -> str:
    """``<static path words>_<verb>``: ``GET /products`` → ``products_list``, ``GET /products/{ref}`` →
    ``products_get``, ``POST /checkout`` (201) → ``checkout_create``, ``POST /orders/{id}/cancel`` →
    ``orders_cancel``, ``PATCH /users/me`` → ``users_me_update``. The API prefix is left out."""
    path = re.sub(r"^/api/v\d+", "", route.path_format)
    parts = [p for p in path.split("/") if p]
    words = [re.sub(r"[^a-z0-9]+", "_", p.lower().removesuffix(".xml")).strip("_")
             for p in parts if not p.startswith("{")]
    base = "_".join(w for w in words if w) or "root"
    item = bool(parts) and parts[-1].startswith("{")
    method = method.upper()
    if method == "GET":
        verb: str | None = "list" if not item and _is_list(route.response_model) else "get"
    elif method == "POST":
        verb = "create" if route.status_code == 201 else None
    else:
        verb = _VERBS.get(method, method.lower())
    return f"{base}_{verb}" if verb else base


# --- the document ----------------------------------------------------------------------------------
def _dependants(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


def _contracts(route: Any) -> list[Contract]:
    return [c for d in _dependants(route.dependant) if (c := contract_of(d.call)) is not None]


def _exempt(app: FastAPI, route: Any) -> bool:
    limiter = getattr(app.state, "limiter", None)
    return limiter is not None and limiter.is_exempt(route.endpoint)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield ref.rsplit("/", 1)[1]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _closure(names: set[str], schemas: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo.extend(_refs(schemas[name]))
    return seen


def _rename_schemas(doc: dict[str, Any], renames: dict[str, str]) -> None:
    schemas = doc["components"]["schemas"]
    for old, new in renames.items():
        schemas[new] = schemas.pop(old)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name in renames:
                    node["$ref"] = "#/components/schemas/" + renames[name]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)


def _camel(name: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[_\W]+", name) if w)


# Integer properties with these names are described as money (cents) wherever they appear, so the list holds
# only names that cannot mean a count: not `paid` (shoppers who paid, in the shopper reports) nor `refunds`;
# money paid or refunded is `amount_paid`, `amount_refunded`, `refunded`. `total` is money only beside a
# `currency` (else a list's count). A count named otherwise says what it counts in its own description.
MONEY = re.compile(r"^(price|amount|amount_paid|amount_refunded|subtotal|discount|total|tax|delivery_fee|fee|"
                   r"line_total|unit_price|unit_price_at_add|min_subtotal|max_discount|refundable|revenue|"
                   r"gross|net|refunded|spent|total_spent|average_order_value|aov|"
                   r"discount_total|tax_total|delivery_total|same_day_fee|amount_cents)$")
MONEY_NOTE = ("Integer minor units (cents): of the `currency` given beside it, or else of the shop's one "
              "currency (`CURRENCY`, the `currency` of every product and order).")


def _describe_money(schemas: dict[str, Any]) -> None:
    """Append ``MONEY_NOTE`` to the description of every integer property named as money (``MONEY``)."""
    for schema in schemas.values():
        props = schema.get("properties") or {}
        for name, prop in props.items():
            types = {prop.get("type")} | {a.get("type") for a in prop.get("anyOf", [])}
            if name == "total" and "currency" not in props:
                continue  # a list's or facet's `total` is a count; money totals sit beside their currency
            if MONEY.match(name) and "integer" in types and "minor units" not in prop.get("description", ""):
                prop["description"] = (prop.get("description", "").rstrip(". ") + ". " + MONEY_NOTE).lstrip(". ")


def complete(doc: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    """Complete FastAPI's document ``doc`` of ``app`` as described in the module docstring (in place)."""
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    components["headers"] = {name: spec for name, spec in HEADERS.items()}
    components.setdefault("parameters", {})["X-Request-ID"] = {
        "name": "X-Request-ID", "in": "header", "required": False,
        "description": "Your id for this request: echoed back and logged when it is 1–128 letters, digits or "
                       "`._:-`; otherwise (or when absent) the server generates one.",
        "schema": {"type": "string"},
    }

    routes = {}
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute) and ctx.include_in_schema:
            for method in ctx.methods or ():
                routes[(ctx.path_format, method.lower())] = ctx

    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            route = routes.get((path, method))
            if route is not None:
                op["operationId"] = route.operation_id or operation_id(route, method)
                _complete_operation(app, op, route)
    ids = [op["operationId"] for item in doc.get("paths", {}).values() for op in item.values()]
    if len(ids) != len(set(ids)):
        raise RuntimeError(f"duplicate operation ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    # Form bodies: Body_<FastAPI's id> → <OperationId>Form.
    renames = {}
    for item in doc.get("paths", {}).values():
        for op in item.values():
            for name in _refs(op.get("requestBody")):
                if name.startswith("Body_"):
                    renames[name] = _camel(op["operationId"]) + "Form"
    _rename_schemas(doc, renames)

    _finish_schemas(doc)
    used = {t for item in doc.get("paths", {}).values() for op in item.values() for t in op.get("tags", [])}
    declared = {t["name"] for t in doc.get("tags", [])}
    if used - declared:
        raise RuntimeError(f"OpenAPI tags used but not declared in app.main.TAGS: {sorted(used - declared)}")
    return doc


def _complete_operation(app: FastAPI, op: dict[str, Any], route: Any) -> None:
    contracts = _contracts(route)
    responses: dict[str, Any] = op.setdefault("responses", {})
    statuses = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
    for c in contracts:
        statuses |= set(c.statuses)
    if any(c.statuses == (429,) for c in contracts) and _exempt(app, route):
        statuses.discard(429)
    body = op.get("requestBody", {}).get("content", {})
    if body:
        statuses |= {400, 413, 422}
        if "application/json" in body:
            statuses.add(415)
    if op.get("parameters") or body:
        statuses.add(422)

    # Security from the dependencies (FastAPI's own entry names only the OAuth2 scheme).
    levels = {c.security for c in contracts}
    op["security"] = REQUIRED if "required" in levels else OPTIONAL if "optional" in levels else []

    # Who may call it, in the description.
    # The innermost guard is the most specific (admin after staff). A dependency that only reads an optional
    # token (e.g. the audit log's actor) says nothing about who may call an operation that requires one.
    # A role guard (403) says more than the sign-in requirement it builds on.
    required = "required" in levels
    notes = [c for c in contracts if c.note and not (required and c.security == "optional")]
    roles = [c for c in notes if 403 in c.statuses]
    who = (roles or notes)[-1].note if notes else None
    text = op.get("description") or op.get("summary") or ""
    if who and who not in text:
        text = f"{text.rstrip('.')}.\n\n{who}" if text else who
    op["description"] = text

    params = op.setdefault("parameters", [])
    params.append({"$ref": "#/components/parameters/X-Request-ID"})

    for code, resp in list(responses.items()):
        if code.isdigit() and int(code) < 400:
            resp.setdefault("headers", {})["X-Request-ID"] = {"$ref": "#/components/headers/X-Request-ID"}
            if resp.get("description") == "Successful Response":
                resp["description"] = op.get("summary") or "Success."
    if any(c.conditional for c in contracts):
        ok = responses.get("200")
        if ok is not None:
            ok["headers"].update({"ETag": {"$ref": "#/components/headers/ETag"},
                                  "Cache-Control": {"$ref": "#/components/headers/Cache-Control"}})
        responses["304"] = {"description": "Not Modified: the `If-None-Match` validator still matches (no body).",
                            "headers": {"ETag": {"$ref": "#/components/headers/ETag"},
                                        "Cache-Control": {"$ref": "#/components/headers/Cache-Control"},
                                        "X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}}

    for status in sorted(statuses):
        old = responses.get(str(status), {})
        headers: dict[str, Any] = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
        if status == 429:
            headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
        if status == 401:
            headers["WWW-Authenticate"] = {"$ref": "#/components/headers/WWW-Authenticate"}
        headers.update(old.get("headers") or {})
        description = old.get("description")
        if not description or description == status_code_slug(status).replace("-", " ").capitalize() \
                or description in {"Validation Error", "Not Found", "Conflict", "Unauthorized", "Forbidden",
                                   "Bad Request", "Too Many Requests", "Service Unavailable",
                                   "Internal Server Error", "Request Entity Too Large", "Content Too Large",
                                   "Unprocessable Entity", "Unprocessable Content", "Unsupported Media Type",
                                   "Additional Response"}:
            description = _STATUS_TEXT.get(status, "Error.")
        responses[str(status)] = {
            "description": description,
            "headers": headers,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
        }
    op["responses"] = dict(sorted(responses.items()))


def _finish_schemas(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)

    problem = schemas.get("Problem")
    if problem is not None:
        schemas["ProblemCode"] = {"type": "string", "enum": problem_codes(), "title": "ProblemCode",
                                  "description": "Every `code` a problem can carry."}
        problem["properties"]["code"] = {"$ref": "#/components/schemas/ProblemCode",
                                         "description": problem["properties"]["code"].get("description", "")}

    # Response-only schemas: every property is always serialized, so it is required.
    inputs: set[str] = set()
    outputs: set[str] = set()
    for item in doc.get("paths", {}).values():
        for op in item.values():
            inputs |= set(_refs(op.get("requestBody"))) | set(_refs(op.get("parameters")))
            outputs |= set(_refs(op.get("responses")))
    inputs = _closure(inputs, schemas)
    for name in _closure(outputs, schemas) - inputs - {"Problem", "ProblemError"}:
        props = schemas[name].get("properties")
        if props:
            schemas[name]["required"] = list(props)
    _describe_money(schemas)


def install(app: FastAPI, **info: Any) -> None:
    """Serve the completed document as ``app.openapi()`` (built once per app, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description,
                              routes=app.routes, tags=app.openapi_tags, **info)
            app.openapi_schema = complete(copy.deepcopy(doc), app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema

