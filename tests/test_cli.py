"""The `amour-florals` command line: seed, create-admin, migrate, rollups (against a throwaway database)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymongo import MongoClient
from typer.testing import CliRunner

from app.cli import cli
from app.config import get_settings
from app.core.security import verify_password
from app.demo.seed import DEMO_PASSWORD, DEMO_USERS, seed_all
from tests.support import API, bearer

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def distance_back_to(name: str) -> str:
    """The ``--distance`` of ``migrate --backward`` that undoes migration ``name`` and every newer one."""
    return str(sum(1 for m in MIGRATIONS.glob("2*.py") if m.name >= name))


@pytest.fixture
def cli_db(mongo_url, monkeypatch):
    """Run commands against a fresh database of the test session's server; yields (invoke, database)."""
    name = f"cli_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("MONGODB_URL", mongo_url)
    monkeypatch.setenv("MONGODB_DB", name)
    get_settings.cache_clear()
    runner = CliRunner()
    client: MongoClient = MongoClient(mongo_url, tz_aware=True)

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    yield invoke, client[name]
    client.drop_database(name)
    client.close()
    get_settings.cache_clear()


def test_seed_names_the_address_serve_will_use_in_the_demo_image_urls(cli_db, monkeypatch):
    invoke, db = cli_db
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    assert invoke("seed", "--port", "9123").exit_code == 0
    urls = [i["url"] for p in db.products.find({}) for i in p.get("images", [])]
    assert urls and all(u.startswith("http://127.0.0.1:9123/") for u in urls), urls[:3]
    assert "PUBLIC_BASE_URL" not in os.environ  # set for the seeding only


def test_seed_is_idempotent_and_prints_the_demo_logins(cli_db):
    invoke, db = cli_db
    first = invoke("seed")
    assert first.exit_code == 0, first.output
    for email, _, _, role in DEMO_USERS:
        assert email in first.output and role.value in first.output
    assert DEMO_PASSWORD in first.output
    assert db.users.count_documents({}) == len(DEMO_USERS)
    admin = db.users.find_one({"email": "admin@amourflorals.com"})
    assert admin["role"] == "admin" and verify_password(DEMO_PASSWORD, admin["password_hash"])[0]
    customer = db.users.find_one({"email": "olivia@example.com"})
    assert len(customer["addresses"]) == 1 and customer["addresses"][0]["is_default"] is True

    counts = {name: db[name].count_documents({}) for name in db.list_collection_names()}
    second = invoke("seed")
    assert second.exit_code == 0 and "Demo logins:" in second.output and DEMO_PASSWORD in second.output
    assert {name: db[name].count_documents({}) for name in db.list_collection_names()} == counts
    assert db.users.count_documents({}) == len(DEMO_USERS)
    assert db.users.find_one({"email": "admin@amourflorals.com"})["_id"] == admin["_id"]


def test_create_admin_creates_then_promotes(cli_db):
    invoke, db = cli_db
    r = invoke("create-admin", "--email", "Boss@Example.com", "--password", "Orchid-Garden-2026")
    assert r.exit_code == 0 and "Created admin boss@example.com" in r.output
    boss = db.users.find_one({"email": "boss@example.com"})
    assert boss["role"] == "admin" and boss["is_active"] is True
    assert boss["_id"].startswith("usr_") and verify_password("Orchid-Garden-2026", boss["password_hash"])[0]

    db.users.insert_one({"_id": "usr_01JD7Z00000000000000000001", "email": "clerk@example.com", "first_name": "C",
                         "last_name": "K", "role": "customer", "is_active": False, "version": 0})
    r = invoke("create-admin", "--email", "clerk@example.com", "--password", "Magnolia-Tree-2026")
    assert r.exit_code == 0 and "Promoted clerk@example.com" in r.output
    clerk = db.users.find_one({"email": "clerk@example.com", "role": "admin", "is_active": True})
    assert clerk is not None
    assert verify_password("Magnolia-Tree-2026", clerk["password_hash"])[0]
    assert db.users.count_documents({}) == 2


def test_create_admin_is_audited_without_the_password(cli_db):
    invoke, db = cli_db
    assert invoke("create-admin", "--email", "owner@example.com", "--password", "Orchid-Garden-2026").exit_code == 0
    assert invoke("create-admin", "--email", "owner@example.com", "--password", "Lilac-Bower-2027").exit_code == 0
    owner = db.users.find_one({"email": "owner@example.com"})
    created, promoted = db.audit_log.find({}).sort("_id", 1)
    assert (created["action"], created["target_id"], created["actor_role"], created["actor_id"],
            created["state"], created["outcome"]) == ("user.create_admin", owner["_id"], "cli", None, "committed",
                                                      "succeeded")
    fields = {c["field"]: c["after"] for c in created["changes"]}
    assert fields["email"] == "owner@example.com" and fields["role"] == "admin"
    assert promoted["action"] == "user.promote_admin" and promoted["changes"] == []  # the hash is not a field
    text = str(list(db.audit_log.find({}))).lower()
    assert "orchid" not in text and "lilac" not in text and owner["password_hash"].lower() not in text
    assert "password" not in text and "hash" not in text


@pytest.mark.parametrize(("email", "password"), [("not-an-email", "Orchid-Garden-2026"), ("a@example.com", "short"),
                                                 ("a@example.com", "password123")])
def test_create_admin_refuses_bad_input(cli_db, email, password):
    invoke, db = cli_db
    r = invoke("create-admin", "--email", email, "--password", password)
    assert r.exit_code == 2 and "Refused" in r.output
    assert db.users.count_documents({}) == 0


def test_migrate_forward_and_backward(cli_db):
    invoke, db = cli_db
    db.users.insert_many([{"_id": "usr_old", "email": "old@example.com"},
                          {"_id": "usr_new", "email": "new@example.com", "preferences": {"newsletter": True}}])
    r = invoke("migrate", "--path", str(MIGRATIONS))
    assert r.exit_code == 0 and "Migrations done" in r.output, r.output
    old = db.users.find_one({"_id": "usr_old"})
    # Defaults added; the newsletter preference became the address's subscription (one fact, not two).
    assert old["preferences"] == {"email_notifications": True, "favorite_occasions": []}
    assert db.users.find_one({"_id": "usr_new"})["preferences"] == {}
    subs = list(db.newsletter_subscriptions.find({}, {"_id": 0, "email": 1, "status": 1, "source": 1}))
    assert subs == [{"email": "new@example.com", "status": "confirmed", "source": "migration"}]
    assert db.migrations_log.count_documents({}) >= 1

    r = invoke("migrate", "--path", str(MIGRATIONS), "--backward")
    assert r.exit_code == 0, r.output
    assert "preferences" not in db.users.find_one({"_id": "usr_old"})
    assert db.users.find_one({"_id": "usr_new"})["preferences"] == {"newsletter": True}
    assert db.newsletter_subscriptions.count_documents({}) == 0


async def test_every_printed_demo_login_signs_in(client):
    lines = await seed_all()
    for email, _, _, role in DEMO_USERS:
        assert any(email in line for line in lines)
        r = await client.post(f"{API}/auth/login", json={"email": email, "password": DEMO_PASSWORD})
        assert r.status_code == 200, r.text
        me = await client.get(f"{API}/users/me", headers=bearer(r.json()["tokens"]["access_token"]))
        assert me.json()["role"] == role.value


@pytest.mark.parametrize(("host", "port", "url"), [
    ("127.0.0.1", 9000, "http://127.0.0.1:9000"), ("0.0.0.0", 8123, "http://127.0.0.1:8123"),
    ("::1", 8001, "http://[::1]:8001"),
])
def test_serve_names_the_port_it_serves_in_links_unless_configured(monkeypatch, tmp_path, host, port, url):
    from app.cli import served_at
    from app.config import Settings
    from app.services.storage import make_storage

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    get_settings.cache_clear()
    env = served_at(host, port)
    assert env == {"PUBLIC_BASE_URL": url}
    monkeypatch.setenv("PUBLIC_BASE_URL", env["PUBLIC_BASE_URL"])
    storage = make_storage(Settings(_env_file=None, media_dir=tmp_path / "media", cloudinary_url=None))
    assert storage.base_url.startswith(f"{url}/")  # what an image uploaded while serving names

    monkeypatch.setenv("PUBLIC_BASE_URL", "https://api.amourflorals.com")
    get_settings.cache_clear()
    assert served_at(host, port) == {}
    get_settings.cache_clear()


def _paid_order(oid: str, at: datetime, amount: int, refunded: int = 0, status: str = "paid") -> dict:
    return {"_id": oid, "version": 4, "payment_status": status, "amount_paid": amount, "amount_refunded": refunded,
            "created_at": at, "amounts": {"subtotal": amount, "discount": 0, "total": amount, "currency": "USD"},
            "lines": [{"product_id": "prd_rose", "product_name": "Rose", "product_slug": "rose", "size": "standard",
                       "size_name": "Standard", "unit_price": amount, "quantity": 1, "line_total": amount}]}


def test_rollups_rebuild_and_the_migration_that_builds_them(cli_db):
    invoke, db = cli_db
    # New York: 03:30Z on Apr 9 is still Apr 8 in the shop; an unpaid order never counts.
    db.orders.insert_many([_paid_order("ord_a", datetime(2030, 4, 9, 3, 30, tzinfo=UTC), 6000),
                           _paid_order("ord_b", datetime(2030, 4, 9, 15, 0, tzinfo=UTC), 4000, refunded=500,
                                       status="partially_refunded"),
                           _paid_order("ord_c", datetime(2030, 4, 9, 16, 0, tzinfo=UTC), 9000, status="unpaid")])

    def days() -> dict[str, tuple[int, int, int]]:
        return {d["_id"]: (d["gross"], d["refunded"], d["orders"]) for d in db.sales_days.find({})}

    built = {"sd_2030-04-08_USD": (6000, 0, 1), "sd_2030-04-09_USD": (4000, 500, 1)}
    r = invoke("migrate", "--path", str(MIGRATIONS))
    assert r.exit_code == 0, r.output
    assert days() == built
    assert db.orders.find_one({"_id": "ord_a"})["rollup"]["counted"]["gross"] == 6000

    # back: the newer migrations (nothing to undo here), then the sales rollups
    r = invoke("migrate", "--path", str(MIGRATIONS), "--backward", "--distance",
               distance_back_to("20261211_000001_sales_rollups.py"))
    assert r.exit_code == 0, r.output
    assert days() == {} and "rollup" not in db.orders.find_one({"_id": "ord_a"})

    r = invoke("rollups", "rebuild")  # from the first order's shop day to the last one's
    assert r.exit_code == 0 and "2030-04-08 to 2030-04-09: 2 paid orders counted" in r.output, r.output
    assert days() == built
    r = invoke("rollups", "rebuild", "--from", "2030-04-01", "--to", "2030-04-30")
    assert r.exit_code == 0 and days() == built, r.output
    assert invoke("rollups", "rebuild", "--from", "April").exit_code == 2
