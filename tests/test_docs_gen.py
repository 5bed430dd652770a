"""`amour-florals docs`: the generated sections of docs/system-design.md follow the code, and --check
fails when the committed document does not (a new route, setting, index, reference or state)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from beanie import Document
from fastapi import APIRouter, Depends, FastAPI, Header
from pydantic import Field
from pymongo import ASCENDING, IndexModel
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.deps import AdminUser, CartToken, OptionalUser, staff_user
from app.docgen import DocGenError, apply_sections, generate, render_sections
from app.docgen.erd import REFERENCES, erd_section
from app.docgen.indexes import INDEX_QUERIES, index_section
from app.docgen.routes import route_section
from app.docgen.settings_doc import env_comments, settings_section
from app.docgen.states import order_state_mermaid
from app.models import DOCUMENT_MODELS, order_states
from app.models.order import OrderStatus

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "system-design.md"
ENV_EXAMPLE = (ROOT / ".env.example").read_text()


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_check_passes_on_the_committed_document():
    import difflib

    current, generated = generate(DOC)
    assert current == generated, "\n".join(difflib.unified_diff(current.splitlines(), generated.splitlines(),
                                                                 "committed", "generated", lineterm="", n=1))
    result = run("docs", "--check", str(DOC))
    assert result.exit_code == 0, result.output


def test_check_fails_on_a_stale_document_and_docs_rewrites_it(tmp_path):
    doc = tmp_path / "design.md"
    committed = DOC.read_text()
    row = next(line for line in committed.splitlines() if "`/api/v1/checkout`" in line)
    doc.write_text(committed.replace(row + "\n", ""))  # a route the document forgot

    stale = run("docs", "--check", str(doc))
    assert stale.exit_code == 1 and "stale" in stale.output

    assert run("docs", str(doc)).exit_code == 0
    assert doc.read_text() == committed
    assert run("docs", "--check", str(doc)).exit_code == 0


def test_hand_written_text_outside_the_markers_is_kept(tmp_path):
    doc = tmp_path / "design.md"
    text = "# Title\n\nprose before\n" + "".join(
        f"<!-- BEGIN GENERATED: {n} -->\nold\n<!-- END GENERATED: {n} -->\nprose after {n}\n"
        for n in ("erd", "indexes", "order-states", "routes", "settings"))
    doc.write_text(text)
    assert run("docs", str(doc)).exit_code == 0
    out = doc.read_text()
    assert out.startswith("# Title\n\nprose before\n<!-- BEGIN GENERATED: erd -->\n```mermaid\nerDiagram")
    assert "prose after settings\n" in out and "\nold\n" not in out


@pytest.mark.parametrize(("damage", "message"), [
    (lambda t: t.replace("<!-- END GENERATED: routes -->", ""), "not closed"),
    (lambda t: t.replace("<!-- BEGIN GENERATED: settings -->", "").replace("<!-- END GENERATED: settings -->", ""),
     "missing from the document: ['settings']"),
    (lambda t: t + "\n<!-- BEGIN GENERATED: wishes -->\n<!-- END GENERATED: wishes -->\n", "unknown"),
])
def test_check_fails_on_broken_markers(tmp_path, damage, message):
    doc = tmp_path / "design.md"
    doc.write_text(damage(DOC.read_text()))
    result = run("docs", "--check", str(doc))
    assert result.exit_code == 1 and message in result.output


def test_apply_sections_replaces_only_between_markers():
    text = "a\n<!-- BEGIN GENERATED: x -->\nold\n<!-- END GENERATED: x -->\nb\n"
    assert apply_sections(text, {"x": "new"}) == "a\n<!-- BEGIN GENERATED: x -->\nnew\n<!-- END GENERATED: x -->\nb\n"
    with pytest.raises(DocGenError, match="marked twice"):
        apply_sections(text + text, {"x": "new"})


def test_a_new_route_appears_with_its_auth():
    app = FastAPI()
    guarded = APIRouter(prefix="/admin", dependencies=[Depends(staff_user)])

    @guarded.get("/wreaths", summary="List wreaths")
    async def wreaths() -> list[str]:
        return []

    @guarded.delete("/wreaths/{wid}")
    async def delete_wreath(wid: str, admin: AdminUser) -> None:
        """Delete a wreath for good."""

    @app.get("/orders/{oid}/card", summary="The order's card")
    async def card(oid: str, user: OptionalUser,
                   token: Annotated[str | None, Header(alias="X-Order-Token")] = None) -> str:
        return ""

    @app.post("/cart/wrap", summary="Gift-wrap the cart")
    async def wrap(user: OptionalUser, cart: CartToken) -> str:
        return ""

    @app.get("/open", summary="Opening hours")
    async def hours() -> str:
        return ""

    app.include_router(guarded)
    table = route_section(app)
    assert "| GET | `/admin/wreaths` | staff | List wreaths |" in table
    assert "| DELETE | `/admin/wreaths/{wid}` | admin | Delete a wreath for good. |" in table
    assert "| GET | `/orders/{oid}/card` | optional bearer + `X-Order-Token` | The order's card |" in table
    assert "| POST | `/cart/wrap` | optional bearer + `X-Cart-Token` | Gift-wrap the cart |" in table
    assert "| GET | `/open` | public | Opening hours |" in table
    assert "5 operations." in table


def test_the_app_route_table_lists_every_openapi_operation():
    from app.main import create_app

    app = create_app(Settings(_env_file=None))
    table = route_section(app)
    for path, ops in app.openapi()["paths"].items():
        for method in ops:
            assert f"| {method.upper()} | `{path}` |" in table, (method, path)
    assert "| POST | `/api/v1/payments/webhook` | `Stripe-Signature` |" in table
    assert "| POST | `/api/v1/admin/orders/{order_id}/refund` | staff |" in table
    assert "| PATCH | `/api/v1/admin/users/{user_id}` | admin |" in table


def test_a_new_setting_appears_and_an_undocumented_one_fails():
    class WithKnob(Settings):
        bouquet_knob: int = Field(7, description="How many stems a knob holds")

    table = settings_section(WithKnob, ENV_EXAMPLE)
    assert "| `BOUQUET_KNOB` | int | `7` | How many stems a knob holds |" in table
    assert "| `SHOP_TIMEZONE` | str | `America/New_York` | The shop's IANA time zone" in table
    assert "dev-only" not in table  # secret defaults are never printed

    class Undocumented(Settings):
        vase_knob: int = 3

    with pytest.raises(DocGenError, match="VASE_KNOB"):
        settings_section(Undocumented, ENV_EXAMPLE)


def test_env_comments_are_shared_by_consecutive_variables_and_reset_by_sections():
    text = "# ===== area =====\n# Slots per day.\nA=1\nB=2\n\nC=3\n# --- next ---\n# D's meaning\n# D=\n"
    assert env_comments(text) == {"A": "Slots per day.", "B": "Slots per day.", "C": "", "D": "D's meaning"}


class Wish(Document):
    id: str
    user_id: str
    gift_id: str
    note: str = ""

    class Settings:
        name = "wishes"
        indexes = [IndexModel([("user_id", ASCENDING)], name="user")]


def test_a_new_collection_needs_its_references_and_index_queries():
    models = [*DOCUMENT_MODELS, Wish]
    with pytest.raises(DocGenError, match=r"wishes\.gift_id"):
        erd_section(models)
    refs = {**REFERENCES, ("wishes", "gift_id"): "products"}
    erd = erd_section(models, refs)
    assert '    users ||--o{ wishes : "user_id"' in erd
    assert '    products ||--o{ wishes : "gift_id"' in erd
    assert "        string gift_id FK" in erd
    assert "        datetime email_verified_at\n" in erd  # Optional[Annotated[datetime, ...]] is a datetime

    with pytest.raises(DocGenError, match=r"wishes\.user"):
        index_section(models)
    table = index_section(models, {**INDEX_QUERIES, ("wishes", "user"): "a customer's wish list"})
    assert "| `wishes` | `user` | user_id asc |  | a customer's wish list |" in table


def test_stale_reference_and_index_entries_fail():
    with pytest.raises(DocGenError, match=r"no longer exist: \['users.wishlist'\]"):
        erd_section(DOCUMENT_MODELS, {**REFERENCES, ("users", "wishlist"): "products"})
    with pytest.raises(DocGenError, match=r"gone: \['orders.by_florist'\]"):
        index_section(DOCUMENT_MODELS, {**INDEX_QUERIES, ("orders", "by_florist"): "florist's queue"})


def test_index_table_lists_keys_and_options():
    table = render_sections(["indexes"])["indexes"]
    assert "| `products` | `search_words` | search_words asc |" in table
    assert "| `carts` | `user_unique` | user_id asc | unique, partial `user_id` is a string |" in table
    assert "| `idempotency_keys` | `created_ttl` | created_at asc | TTL 86400 s |" in table


def test_order_state_diagram_follows_the_transition_table(monkeypatch):
    diagram = order_state_mermaid()
    for source, targets in order_states._EDGES.items():
        for target in targets:
            assert f"    {source.value} --> {target.value} : " in diagram
    assert "    [*] --> pending_payment\n    [*] --> confirmed\n" in diagram
    assert "    preparing --> out_for_delivery : staff, delivery only" in diagram
    assert "    pending_payment --> cancelled : customer or staff" in diagram
    assert "    pending_payment --> expired : system" in diagram
    for status in order_states.TERMINAL:
        assert f"    {status.value} --> [*]" in diagram

    edges = {**order_states._EDGES, OrderStatus.out_for_delivery: {OrderStatus.delivered, OrderStatus.cancelled}}
    monkeypatch.setattr(order_states, "_EDGES", edges)
    assert "    out_for_delivery --> cancelled : staff" in order_state_mermaid()
