"""Strict, canonical input and UTC output.

The sweeps walk every request and response model reachable from the app's routes, so a field added later
cannot skip the rules: every integer in a request body is a strict JSON integer (``app.core.types.Int``);
every string is either the one free-text type (``Annotated[str, app.core.text.FreeText(...)]``) or shaped by a
pattern; every datetime in a response is ``UtcDateTime`` (serialised with ``Z``).
The HTTP tests prove the rules bite."""

from __future__ import annotations

import types
import typing
import unicodedata
from datetime import date, datetime
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, EmailStr, Strict, StringConstraints
from pydantic.functional_validators import AfterValidator

from app.core import types as api_types
from app.core.clock import ensure_utc
from app.core.text import FreeText
from app.models.catalog import Product
from app.models.order import DeliveryMethod, Order, PaymentMethod
from app.models.review import Review
from app.models.user import Role, User
from tests.conftest import create_user, login_headers
from tests.factories import line_for, make_product
from tests.stripe_fixtures import place_order
from tests.support import API, assert_problem, register, unique_email

# Strings that are secrets or log-in names, compared as typed and never displayed: not free text.
RAW_STRINGS = {"password", "current_password", "new_password", "username"}


def api_routes(app) -> list[APIRoute]:
    def walk(routes):
        for r in routes:
            if isinstance(r, APIRoute):
                yield r
            elif hasattr(r, "original_router"):
                yield from walk(r.original_router.routes)

    routes = list(walk(app.routes))
    assert len(routes) > 90
    return routes


def leaves(annotation: Any, metadata: tuple = (), path: str = "",
           stack: frozenset = frozenset()) -> typing.Iterator[tuple[str, Any, tuple]]:
    """(path, leaf type, metadata collected on the way) for every scalar inside ``annotation``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        yield from leaves(base, (*metadata, *extra), path, stack)
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                yield from leaves(arg, metadata, path, stack)
    elif origin in (list, set, tuple):
        for arg in typing.get_args(annotation):
            yield from leaves(arg, (), path + "[]", stack)
    elif origin is dict:
        yield from leaves(typing.get_args(annotation)[1], (), path + "{}", stack)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in stack:  # a recursive model (category tree): its fields are being walked already
            return
        for name, field in annotation.model_fields.items():
            yield from leaves(field.annotation, tuple(field.metadata), f"{annotation.__name__}.{name}",
                              stack | {annotation})
    else:
        yield path, annotation, metadata


def body_leaves(app):
    for route in api_routes(app):
        if route.body_field is not None:
            yield from leaves(route.body_field.field_info.annotation)


def request_leaves(app):
    """Every scalar a request carries: body, query, path, header and cookie parameters (of dependencies too)."""
    def dependants(d):
        yield d
        for sub in d.dependencies:
            yield from dependants(sub)

    for route in api_routes(app):
        for d in dependants(route.dependant):
            for f in [*d.query_params, *d.path_params, *d.header_params, *d.cookie_params]:
                yield from leaves(f.field_info.annotation, tuple(f.field_info.metadata), f"{route.path} {f.name}")
        if route.body_field is not None:
            yield from leaves(route.body_field.field_info.annotation, (), route.path)


def response_leaves(app):
    for route in api_routes(app):
        if route.response_model is not None:
            yield from leaves(route.response_model)


def _pattern(metadata: tuple) -> str | None:
    for m in metadata:
        if isinstance(m, StringConstraints) and m.pattern:
            return m.pattern
        if getattr(m, "pattern", None):
            return m.pattern
    return None


def test_every_integer_in_a_request_body_is_strict(app):
    found = [(p, meta) for p, t, meta in body_leaves(app) if t is int]
    assert len(found) > 25
    loose = sorted({p for p, meta in found if not any(isinstance(m, Strict) and m.strict for m in meta)})
    assert loose == [], f"integers that accept '5', true or 1.0: {loose}"


def test_every_boolean_in_a_request_body_is_strict(app):
    """A JSON true/false and nothing else (``app.core.types.Bool``): "yes", "true", 1 or 0 must not set a consent
    flag or switch a zone off. Query-string booleans are text and stay lax."""
    found = [(p, meta) for p, t, meta in body_leaves(app) if t is bool]
    assert len(found) > 15
    loose = sorted({p for p, meta in found if not any(isinstance(m, Strict) and m.strict for m in meta)})
    assert loose == [], f"booleans that accept 'yes', 'true', 1 or 0: {loose}"


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, "off"])
async def test_the_newsletter_preference_must_be_a_json_boolean(client, customer, value):
    r = await client.patch(f"{API}/users/me", headers=customer[1], json={"preferences": {"newsletter": value}})
    assert_problem(r, 422)
    me = (await client.get(f"{API}/users/me", headers=customer[1])).json()["preferences"]
    assert me["newsletter"] is False


def test_every_string_in_a_request_body_is_free_text_or_has_a_shape(app):
    strings = [(p, meta) for p, t, meta in body_leaves(app) if t is str]
    assert len(strings) > 60
    free = [p for p, meta in strings if any(isinstance(m, FreeText) for m in meta)]
    assert len(free) > 30
    unruled = sorted({p for p, meta in strings if not any(isinstance(m, FreeText) for m in meta)
                      and _pattern(meta) is None and p.rsplit(".", 1)[-1] not in RAW_STRINGS})
    assert unruled == [], f"strings that are neither free text nor shaped by a pattern: {unruled}"
    emails = {p for p, t, _ in body_leaves(app) if t is EmailStr}
    assert emails  # email addresses are validated by EmailStr


def test_every_datetime_in_a_response_is_utc(app):
    found = [(p, meta) for p, t, meta in response_leaves(app) if t is datetime]
    assert len(found) > 30
    naive = sorted({p for p, meta in found
                    if not any(isinstance(m, AfterValidator) and m.func is ensure_utc for m in meta)})
    assert naive == [], f"response datetimes not normalised to UTC: {naive}"


def test_every_date_and_datetime_in_a_request_is_bounded(app):
    """A date or instant from a request is within years 2000-9998 (RequestDate, UtcInstant, RequestInstant), so
    no later arithmetic on it (an id's timestamp, a shop-day shift) can overflow into a 500."""
    bounded = {api_types._bounded_date, api_types._request_instant}
    found = [(p, meta) for p, t, meta in request_leaves(app)
             if isinstance(t, type) and issubclass(t, date)]  # date, datetime and AwareDatetime
    assert len(found) > 15
    loose = sorted({p for p, meta in found
                    if not any(isinstance(m, AfterValidator) and m.func in bounded for m in meta)})
    assert loose == [], f"request dates or datetimes without bounds: {loose}"


@pytest.mark.parametrize("path", [
    "/admin/audit?from=1969-12-31T23:59:59Z", "/admin/audit?from=0001-01-01T00:00:00Z",
    "/admin/audit?to=9999-12-31T23:59:59-01:00", "/admin/audit?to=1900-01-01T00:00:00",
    "/admin/orders?created_from=0001-01-01T00:00:00Z", "/admin/orders?delivery_date=0001-01-01",
    "/admin/delivery/usage?date=9999-12-31"])
async def test_dates_outside_the_calendar_the_shop_uses_are_422(client, admin, path):
    assert_problem(await client.get(API + path, headers=admin[1]), 422)


# --- the rules over HTTP ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["2", True, 2.0])
async def test_cart_quantity_must_be_a_json_integer(client, value):
    product = await make_product()
    r = await client.post(f"{API}/cart/items", json={"product_id": product.id, "size": "standard", "quantity": value})
    body = assert_problem(r, 422, "validation-error")
    assert body["errors"][0]["loc"] == ["body", "quantity"]


@pytest.mark.parametrize("value", ["5", True, 5.0])
async def test_stock_delta_must_be_a_json_integer(client, staff, value):
    product = await make_product()
    r = await client.post(f"{API}/admin/products/{product.id}/stock", headers=staff[1],
                          json={"size": "standard", "delta": value, "reason": "restock"})
    assert_problem(r, 422, "validation-error")
    assert (await Product.get(product.id)).stock["standard"] == 5


@pytest.mark.parametrize("value", ["100", True, 100.0])
async def test_refund_amount_must_be_a_json_integer(app, client, staff, value):
    product = await make_product()
    order = await place_order(app, [line_for(product)], method=DeliveryMethod.pickup,
                              payment=PaymentMethod.pay_on_pickup)
    r = await client.post(f"{API}/admin/orders/{order.id}/refund", headers=staff[1],
                          json={"amount": value, "reason": "damaged"})
    body = assert_problem(r, 422, "validation-error")
    assert body["errors"][0]["loc"] == ["body", "amount"]
    assert (await Order.get(order.id)).refunds == []


@pytest.mark.parametrize(("field", "value"), [("amount", "500"), ("usage_limit", True), ("min_subtotal", 100.0)])
async def test_promo_integers_must_be_json_integers(client, admin, field, value):
    body = {"code": "STRICT1", "kind": "fixed", "amount": 500, field: value}
    assert_problem(await client.post(f"{API}/admin/promo-codes", headers=admin[1], json=body), 422)


@pytest.mark.parametrize("bad", ["Rose\u202eesoR", "Rose\u2066", "Ro\u0000se", "Ro\u0085se", "Rose\nPetal", "Ro\tse"])
async def test_names_refuse_control_and_bidi_characters(client, bad):
    r = await client.post(f"{API}/auth/register", json={
        "email": unique_email(), "password": "Velvet-Tulips-2026", "first_name": bad, "last_name": "Petal"})
    body = assert_problem(r, 422, "validation-error")
    assert body["errors"][0]["loc"] == ["body", "first_name"]
    assert await User.count() == 0


async def test_free_text_is_stored_in_nfc(client):
    decomposed = "Rene\u0301e"
    body = await register(client, first_name=decomposed, last_name="Cafe\u0301")
    assert body["user"]["first_name"] == "Renée" == unicodedata.normalize("NFC", decomposed)
    stored = await User.get(body["user"]["id"])
    assert (stored.first_name, stored.last_name) == ("Renée", "Café")


@pytest.mark.parametrize(("line1", "ok"), [("1 Bleecker\nSt", False), ("1 Bleecker \u202dSt", False),
                                           ("1 Ble\u0301ecker St", True)])
async def test_address_lines_are_single_line_free_text(client, customer, line1, ok):
    r = await client.post(f"{API}/users/me/addresses", headers=customer[1], json={
        "first_name": "Mia", "last_name": "Rose", "line1": line1, "city": "New York", "state": "NY", "zip": "10012"})
    if ok:
        assert r.status_code == 201 and r.json()["line1"] == unicodedata.normalize("NFC", line1), r.text
    else:
        assert_problem(r, 422, "validation-error")


async def test_review_text_is_multi_line_free_text(client, user_factory):
    product = await make_product()
    _, headers = await user_factory(Role.customer)
    url = f"{API}/products/{product.id}/reviews"
    bad = {"rating": 5, "title": "Lovely", "body": "Fresh\u202e for days"}
    assert_problem(await client.post(url, headers=headers, json=bad), 422, "validation-error")
    assert_problem(await client.post(url, headers=headers, json={**bad, "body": "ok", "title": "Two\nlines"}), 422)
    r = await client.post(url, headers=headers, json={"rating": 5, "title": "Lovely", "body": "Fresh\r\nfor\tdays"})
    assert r.status_code == 201 and r.json()["body"] == "Fresh\nfor\tdays", r.text
    assert await Review.count() == 1


async def test_gift_message_refuses_bidi_and_accepts_new_lines(client):
    product = await make_product()
    url = f"{API}/cart/items"
    r = await client.post(url, json={"product_id": product.id, "size": "standard", "gift_message": "Love\u2067you"})
    assert_problem(r, 422, "validation-error")
    r = await client.post(url, json={"product_id": product.id, "size": "standard", "gift_message": "Love,\nMia"})
    assert r.status_code == 200 and r.json()["lines"][0]["gift_message"] == "Love,\nMia", r.text


async def test_staff_note_refuses_control_characters(app, client, staff):
    product = await make_product()
    order = await place_order(app, [line_for(product)], method=DeliveryMethod.pickup,
                              payment=PaymentMethod.pay_on_pickup)
    url = f"{API}/admin/orders/{order.id}/notes"
    assert_problem(await client.post(url, headers=staff[1], json={"text": "call\u0007 back"}), 422)
    r = await client.post(url, headers=staff[1], json={"text": "Call back\nafter 5"})
    assert r.status_code == 200 and r.json()["notes"][-1]["text"] == "Call back\nafter 5", r.text


# --- UTC with Z ---------------------------------------------------------------------------------------------
async def test_a_promo_created_with_an_offset_is_stored_and_shown_in_utc(client, admin):
    r = await client.post(f"{API}/admin/promo-codes", headers=admin[1], json={
        "code": "OFFSET1", "kind": "free_delivery", "valid_from": "2030-01-01T10:00:00+02:00",
        "valid_until": "2030-01-02T00:00:00-05:00"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["valid_from"], created["valid_until"]) == ("2030-01-01T08:00:00Z", "2030-01-02T05:00:00Z")
    assert created["created_at"].endswith("Z") and created["updated_at"].endswith("Z")
    read = (await client.get(f"{API}/admin/promo-codes/{created['id']}", headers=admin[1])).json()
    assert (read["valid_from"], read["valid_until"]) == (created["valid_from"], created["valid_until"])
    r = await client.patch(f"{API}/admin/promo-codes/{created['id']}", headers=admin[1],
                           json={"valid_until": "2030-01-03T09:30:00+09:30"})
    assert r.status_code == 200 and r.json()["valid_until"] == "2030-01-03T00:00:00Z", r.text


async def test_order_timestamps_are_utc_with_z(app, client):
    user = await create_user()
    product = await make_product()
    order = await place_order(app, [line_for(product)], user_id=user.id, method=DeliveryMethod.pickup,
                              payment=PaymentMethod.pay_on_pickup)
    body = (await client.get(f"{API}/orders/{order.id}", headers=await login_headers(client, user.email))).json()
    stamps = [body["created_at"], body["updated_at"], body["delivery"]["window_start"], body["delivery"]["window_end"]]
    assert all(s.endswith("Z") and "+" not in s for s in stamps), stamps
