"""The OpenAPI document says what the server does: problem+json errors, statuses from the dependencies,
headers, security, names, enums and patterns (built by app.core.openapi from the code)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from app.core.errors import AppError
from app.core.problems import Problem
from app.main import create_app

API = "/api/v1"


@pytest.fixture(scope="module")
def doc():
    return create_app().openapi()


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


def op_by_id(doc, op_id):
    return next(op for _, _, op in operations(doc) if op["operationId"] == op_id)


def test_every_error_is_the_problem_schema_as_problem_json(doc):
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, method, op in operations(doc):
        for status, resp in op["responses"].items():
            if int(status) >= 400:
                assert list(resp["content"]) == ["application/problem+json"], (path, method, status)
                assert resp["content"]["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"}
                assert "X-Request-ID" in resp["headers"]


def test_problem_schema_has_the_members_the_server_sends(doc):
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "request_id", "code"} <= set(problem["required"])
    assert {"errors", "available", "line", "item_id", "current_status"} <= set(problem["properties"])
    codes = doc["components"]["schemas"]["ProblemCode"]["enum"]
    assert {"validation-error", "malformed-json", "not-found", "out-of-stock", "slot-full", "zip-not-served",
            "payments-unavailable", "invalid-token", "rate-limited", "promo-expired"} <= set(codes)
    # Codes chosen at run time (a delivery date's reason, answered by checkout) are listed too ...
    assert {"date-in-past", "past-cutoff", "too-far-ahead", "date-closed", "promo-no-delivery-fee"} <= set(codes)
    # ... and no value that is not an error: sizes and add-ons (code="standard"), order flags, or a second
    # slug for one condition (413 is request-body-too-large, 422 validation-error, 429 rate-limited).
    assert not {"standard", "balloon", "paid-after-close", "payload-too-large", "validation-failed",
                "too-many-requests", "internal-server-error"} & set(codes)


def test_every_extension_member_raised_in_the_code_is_documented():
    # Keyword arguments of AppError constructors become problem members (AppError(**extra)).
    names = {"AppError", *(c.__name__ for c in _subclasses(AppError))}
    documented = set(Problem.model_fields)
    missing = []
    for path in Path("app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                fn = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                if fn in names:
                    missing += [f"{path}:{node.lineno} {k.arg}" for k in node.keywords
                                if k.arg not in {"detail", "code", "title", "headers", None} | documented]
    assert not missing, f"add these members to app.core.problems.Problem: {missing}"


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_statuses_come_from_the_dependencies(doc):
    for path, method, op in operations(doc):
        statuses = set(op["responses"])
        if op["security"]:
            assert "401" in statuses, (path, method)
        if path.startswith(f"{API}/admin/"):
            assert "403" in statuses and op["security"] == [{"bearer": []}, {"oauth2": []}], (path, method)
        if "requestBody" in op and "application/json" in op["requestBody"]["content"]:
            assert {"400", "413", "415", "422"} <= statuses, (path, method)
        if not path.startswith(f"{API}/health") and path != f"{API}/payments/webhook":
            assert "429" in statuses, (path, method)
            assert op["responses"]["429"]["headers"]["Retry-After"] == {"$ref": "#/components/headers/Retry-After"}
    webhook = op_by_id(doc, "payments_webhook")
    assert "429" not in webhook["responses"] and webhook["security"] == []


def test_security_is_none_optional_or_required(doc):
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer" and "password" in schemes["oauth2"]["flows"]
    assert op_by_id(doc, "products_list")["security"] == []
    assert op_by_id(doc, "cart_get")["security"] == [{"bearer": []}, {"oauth2": []}, {}]
    assert op_by_id(doc, "checkout_create")["security"][-1] == {}
    assert "401" in op_by_id(doc, "cart_get")["responses"]  # a guest may call it; a bad token is 401
    assert op_by_id(doc, "orders_list")["security"] == [{"bearer": []}, {"oauth2": []}]
    # The description says who may call it, in agreement with the security requirement.
    for path, item in doc["paths"].items():
        for method, op in item.items():
            guests = {} in op.get("security", [])
            assert guests or "Guests may call it" not in op.get("description", ""), (method, path)
    assert op_by_id(doc, "admin_audit_list")["description"].endswith("For administrators.")


def test_headers_are_declared(doc):
    def params(op_id):
        return {p.get("name") for p in op_by_id(doc, op_id)["parameters"] if "name" in p}

    for op_id in ("cart_get", "cart_items_add", "cart_promo_apply", "checkout_create", "auth_login"):
        assert "X-Cart-Token" in params(op_id), op_id
    assert {"X-Cart-Token", "Idempotency-Key"} <= params("checkout_create")
    assert "X-Order-Token" in params("orders_get")
    assert "If-None-Match" in params("products_list")
    products = op_by_id(doc, "products_list")["responses"]
    assert {"ETag", "Cache-Control"} <= set(products["200"]["headers"]) and "304" in products
    checkout = op_by_id(doc, "checkout_create")["responses"]["201"]["headers"]
    assert {"Location", "Idempotent-Replayed", "X-Request-ID"} <= set(checkout)
    assert "X-Cart-Token" in op_by_id(doc, "cart_items_add")["responses"]["200"]["headers"]
    for op_id in ("auth_login", "auth_refresh", "auth_logout"):
        assert "Set-Cookie" in next(iter(op_by_id(doc, op_id)["responses"].values()))["headers"], op_id
    assert "X-Session-Mode" in params("auth_login") and "af_refresh" in params("auth_refresh")
    for path, method, op in operations(doc):
        if "201" in op["responses"]:
            assert "Location" in op["responses"]["201"]["headers"], (path, method)


def test_names_ids_tags_and_info(doc):
    schemas = doc["components"]["schemas"]
    assert not [n for n in schemas if "__" in n or n.startswith("Body_")]
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[a-z][a-z0-9_]{2,60}", i) for i in ids)
    assert {"products_list", "products_get", "checkout_create", "orders_cancel", "auth_register"} <= set(ids)
    declared = {t["name"]: t["description"] for t in doc["tags"]}
    assert all(declared.get(t) for _, _, op in operations(doc) for t in op["tags"])
    assert doc["servers"] and doc["info"]["contact"]["email"] and doc["info"]["license"]["name"]
    assert all(op["description"] for _, _, op in operations(doc))


def test_patterns_are_ecmascript_and_money_says_minor_units(doc):
    patterns = re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', __import__("json").dumps(doc))
    assert patterns
    for p in patterns:
        assert not re.search(r"\(\?[aiLmsux]|\(\?P<|\\[AZz]", p), p  # Python-only syntax
    price = doc["components"]["schemas"]["PricedCart"]["properties"]["total"]
    assert "minor units" in price["description"]


def test_response_only_schemas_require_every_field(doc):
    cart = doc["components"]["schemas"]["PricedCart"]
    assert set(cart["required"]) == set(cart["properties"])  # e.g. promo_error: always sent, maybe null
    token = doc["components"]["schemas"]["TokenPair"]
    assert "refresh_token" in token["required"]


SHOPPER_REPORTS = ("FunnelFigures", "FunnelDay", "FunnelReport", "SearchTerm", "SearchesReport", "ProductInterest",
                   "ProductInterestReport", "CartAbandonmentReport")
COUNT_WORDS = re.compile(r"^(of them, )?(shoppers|orders|items|units|searches|matches|distinct|product page views|"
                         r"number of|how many)\b", re.I)


def test_counts_are_not_described_as_money(doc):
    """Money is described by field name (app.core.openapi.MONEY); a count must never get the money note: the
    shopper reports (no currency) have only counts and rates, each integer saying what it counts."""
    schemas = doc["components"]["schemas"]
    for name in SHOPPER_REPORTS:
        for field, prop in schemas[name]["properties"].items():
            description = prop.get("description", "")
            assert not re.search(r"minor units|\bcents\b", description, re.I), (name, field)
            if prop.get("type") == "integer":
                assert description, (name, field)
    assert COUNT_WORDS.match(schemas["FunnelDay"]["properties"]["paid"]["description"])
    assert COUNT_WORDS.match(schemas["CartAbandonmentReport"]["properties"]["paid"]["description"])
    # Anywhere: a property whose own words say it counts shoppers, orders, … is not money.
    for name, schema in schemas.items():
        for field, prop in (schema.get("properties") or {}).items():
            description = prop.get("description", "")
            if "minor units" in description:
                assert not COUNT_WORDS.match(description), (name, field, description)
