"""The index table: every index the app declares and, from ``INDEX_QUERIES`` (kept by hand, here), the
queries it serves. An index without an entry, or an entry for an index that is gone, is a DocGenError: a
new index lands together with the sentence saying why it exists.

Besides ``Settings.indexes`` the table lists ``EXTRA_INDEXES`` (created outside ``init_beanie``) and the
``_id`` index every collection has (lookups by id, cursor pagination and the newest-first sorts: ids
are time-ordered).
"""

from __future__ import annotations

from typing import Any

from beanie import Document
from pymongo import IndexModel

from app.docgen.erd import collection, declared_index_models
from app.docgen.errors import DocGenError

# (collection, index name) -> the queries it serves (service and endpoint).
INDEX_QUERIES: dict[tuple[str, str], str] = {
    ("users", "email_unique"): "login, register, forgot-password and resend-verification look-ups by email "
                               "(app/services/auth.py); one account per email",
    ("users", "role_active"): "admin user list filtered by role/active; the last-active-admin guard "
                              "(app/services/accounts.py); the new-customers report (role)",
    ("users", "created_desc"): "new-customer counts of `/admin/reports/customers` and `/overview` "
                               "(created_at range, app/services/reports.py)",
    ("refresh_sessions", "token_hash_unique"): "`/auth/refresh` and `/auth/logout` find the session by the "
                                               "SHA-256 of the refresh token",
    ("refresh_sessions", "user_revoked"): "`/auth/logout-all`, password change and deactivation revoke every "
                                          "live session of a user (`user_id`, `revoked_at: null`)",
    ("refresh_sessions", "family"): "refresh-token reuse detection and logout revoke one rotation family",
    ("refresh_sessions", "expires_ttl"): "TTL: MongoDB deletes sessions 7 days after they expire",
    ("one_time_tokens", "token_hash_unique"): "`/auth/reset-password` and `/auth/verify-email` consume a link "
                                              "by the SHA-256 of its token",
    ("one_time_tokens", "user_purpose"): "a new link retires the user's older unused links of the same purpose",
    ("one_time_tokens", "expires_ttl"): "TTL: used or expired links are deleted a day after expiry",
    ("email_outbox", "dedupe_unique"): "the same logical email is queued at most once (`dedupe_key`)",
    ("email_outbox", "status_due"): "the email worker claims due items: `status: pending`, "
                                    "`next_attempt_at <= now`, oldest first (app/core/jobs.py)",
    ("email_outbox", "campaign_status"): "campaign statistics (emails per status, one aggregation per page of "
                                         "campaigns) and cancelling a campaign's unsent emails (partial: string "
                                         "`campaign_id`)",
    ("email_outbox", "to_status"): "an unsubscribe, hard bounce, deactivation or closed account cancels the "
                                   "address's unsent marketing email",
    ("email_outbox", "ordering_key_status"): "a claimed email of an ordering key (an order's emails) looks for an "
                                             "earlier pending one of its key and waits behind it (partial: string "
                                             "`ordering_key`)",
    ("newsletter_subscriptions", "email_unique"): "`/newsletter/*` and an account's `preferences.newsletter` find "
                                                  "the one consent record of an address; the campaign and cart "
                                                  "reminder checks (`$in` per batch)",
    ("newsletter_subscriptions", "status"): "the campaign job pages through confirmed subscribers in `_id` order "
                                            "(`status: confirmed`, `_id > cursor`)",
    ("email_suppressions", "email_unique"): "the suppression check of every marketing batch (`email $in`); one "
                                            "entry per address",
    ("campaigns", "status_send_at"): "the campaign job claims a `sending` campaign, or a `scheduled` one whose "
                                     "`schedule.send_at` passed; `/admin/campaigns?status=`",
    ("stock_alerts", "dedupe_unique"): "one waiting back-in-stock request per product, size and address "
                                       "(`dedupe_key`)",
    ("stock_alerts", "product_size_status"): "a size back in stock makes its waiting requests due (`update_many` "
                                             "from app/services/inventory.py)",
    ("stock_alerts", "status"): "the back-in-stock job claims due requests",
    ("stock_alerts", "email_status"): "the stop link of a back-in-stock email cancels its address's waiting "
                                      "requests",
    ("stock_alert_opt_outs", "email_unique"): "one stop per address; a guest's request looks it up, the owner's "
                                              "signed-in request removes it",
    ("categories", "slug_unique"): "`/categories/{slug}` and unique slugs",
    ("categories", "ancestors"): "a category move rewrites its subtree (`ancestors $in [id]`)",
    ("categories", "parent_order"): "children of a category in display order; delete refuses a category "
                                    "with children",
    ("categories", "search_keys"): "`/search/suggest` category prefixes (accent-free word keys)",
    ("products", "slug_unique"): "`/products/{slug}` and unique slugs",
    ("products", "status_category_price"): "`/products?category=` (subtree via `category_path`) sorted by price",
    ("products", "status_occasion_price"): "`/products?occasion=` sorted by price",
    ("products", "status_flower"): "`/products?flower_type=`",
    ("products", "status_color"): "`/products?color=`",
    ("products", "status_price"): "`/products?min_price=&max_price=` and `sort=price_asc|price_desc`",
    ("products", "status_popular"): "`/products/popular` and `sort=popular`",
    ("products", "status_rating"): "`/products?min_rating=` and `sort=rating`",
    ("products", "status_featured"): "`/products/featured` and `featured=true`",
    ("products", "status_category_popular"): "`/products?category=&sort=popular` and `/products/{id}/related`",
    ("products", "status_stock"): "`/products?in_stock=` and the admin product list's stock filter (`stock_total`)",
    ("products", "category"): "deleting a category refuses one that still has products; a category move "
                              "rewrites `category_path` of its products",
    ("products", "name_keys"): "`/search/suggest` product-name prefixes (anchored regex in `$elemMatch`)",
    ("products", "search_words"): "`/products?q=`: an anchored prefix match per query word on the accent- and "
                                  "case-folded words of name, tags, flower types, occasions, colours and "
                                  "description, ranked by the app (app/services/catalog_read.py)",
    ("stream_tickets", "expires_ttl"): "TTL clean-up of spent or expired live-stream tickets (taken by `_id`)",
    ("stock_movements", "product"): "`/admin/products/{id}/stock-movements`, newest first by `_id`",
    ("reviews", "product_user_unique"): "one review per product and customer (a second is 409)",
    ("reviews", "product_visible_rating"): "`/products/{id}/reviews` (visible, newest or by rating) and the "
                                           "star histogram of `/products/{id}/reviews/summary`",
    ("reviews", "user"): "reviews by one customer (moderation look-ups); edits and deletes match "
                         "`_id` + `user_id`",
    ("reviews", "hidden"): "`/admin/reviews?hidden=` moderation queue",
    ("delivery_zones", "active_zip"): "`/delivery/options?zip=`: the active zone of a ZIP (`zip_codes $in`)",
    ("delivery_zones", "name"): "zones by name (admin); the admin list itself pages by `_id`",
    ("delivery_slot_usage", "holds"): "releasing an order's slot (`holds $in [order id]`) exactly once",
    ("delivery_slot_usage", "date"): "`/admin/delivery/usage?date=`: every slot's usage of a day",
    ("promo_codes", "code_unique"): "`/cart/promo` and checkout find a code; one document per code",
    ("promo_codes", "active_created"): "`/admin/promo-codes?active=` list",
    ("promo_redemptions", "promo_status"): "uses taken per code (`promo_id`, `status`); the app reads "
                                           "redemptions by `_id` (= order id) today",
    ("carts", "user_unique"): "the signed-in customer's cart (at most one; partial: string `user_id`)",
    ("carts", "token_unique"): "a guest's cart by the SHA-256 of `X-Cart-Token` (partial: string `token_hash`)",
    ("carts", "expires_ttl"): "TTL: guest carts are deleted `GUEST_CART_DAYS` after their last change",
    ("carts", "customer_updated"): "the abandoned-cart scan reads customer carts by `(updated_at, _id)` from where "
                                   "it stopped (partial: string `user_id`)",
    ("orders", "number_unique"): "`/admin/orders?number=AF-…`; one order per number",
    ("orders", "cart_version_unique"): "checkout: one cart version yields at most one order (double-submit guard)",
    ("orders", "user_newest"): "`GET /orders` (the customer's orders, newest first); verified-purchase check",
    ("orders", "email_newest"): "`/admin/orders?email=`; campaign audiences (occasion, lapsed): a batch's "
                                "placed orders by `contact.email $in`",
    ("orders", "status_newest"): "`/admin/orders?status=`, newest first; `/admin/reports/overview` counts orders "
                                 "of each status placed in the last 30 shop days",
    ("orders", "created_desc"): "`/admin/orders?created_from=&created_to=`; the reports' created_at ranges",
    ("orders", "delivery_date_slot"): "`/admin/orders?delivery_date=`: the day's delivery run by slot",
    ("orders", "zone_date"): "`/admin/orders?zone=&delivery_date=`",
    ("orders", "status_expires"): "the expiry sweeper: `pending_payment` orders whose `expires_at` passed",
    ("orders", "status_method_created"): "reconciliation: card orders still `pending_payment` after "
                                         "`RECONCILE_AFTER_MINUTES`, oldest first",
    ("orders", "payment_intent"): "the Stripe webhook finds the order of a PaymentIntent",
    ("orders", "product_status"): "verified purchase: did this customer receive this product",
    ("orders", "refunds_pending"): "the reconciliation job retries refunds Stripe has not confirmed",
    ("orders", "payment_created"): "the customers report: paid orders in a created_at range",
    ("orders", "rollup_pending"): "the rollups job: orders whose sales-rollup change is still pending after "
                                  "ROLLUP_RETRY_SECONDS (app/services/sales_rollups.py)",
    ("sales_days", "currency_day"): "sales, top-products and overview reports: the daily rollups of a range of "
                                    "shop days in the shop's currency",
    ("idempotency_keys", "scope_key_unique"): "`POST /checkout` with `Idempotency-Key`: one record per "
                                              "(user or guest cart, key)",
    ("idempotency_keys", "created_ttl"): "TTL: keys are forgotten after 24 hours",
    ("audit_log", "actor_at"): "`/admin/audit?actor_id=`, newest first (`from`/`to` are an `_id` range: ids "
                               "carry their time)",
    ("audit_log", "target_at"): "`/admin/audit?target_id=` (and with `target_type`, `from`/`to`): a record's history",
    ("audit_log", "target_type_at"): "`/admin/audit?target_type=` (and with `from`/`to`)",
    ("audit_log", "action_at"): "`/admin/audit?action=` (and with `from`/`to`)",
    ("audit_log", "state_at"): "the audit recovery job: intents still `pending` after the grace period, "
                               "oldest first (app/services/audit.py)",
    ("audit_log", "expires_ttl"): "TTL: entries are deleted at `expires_at` (`AUDIT_RETENTION_DAYS` after the "
                                  "change)",
    ("analytics_events", "kind_start"): "every shopper report reads the buckets of one event kind overlapping the "
                                        "UTC range of its shop days (app/services/shopper_reports.py)",
    ("analytics_events", "orders"): "the funnel finds the checkout bucket (and so the visitor) of each paid order "
                                    "(`orders $in`)",
    ("analytics_events", "expires_ttl"): "TTL: a bucket is deleted at `expires_at` (`ANALYTICS_RETENTION_DAYS` after "
                                         "its last event)",
    ("analytics_product_views", "day"): "the funnel and product-interest reports read the product views of a range "
                                        "of shop days (app/services/shopper_reports.py)",
    ("analytics_product_views", "expires_ttl"): "TTL: a day's views are deleted at `expires_at` "
                                                "(`ANALYTICS_RETENTION_DAYS` after the day)",
}


def _keys(doc: dict[str, Any]) -> str:
    if "weights" in doc:
        return "text(" + ", ".join(f"{k} x{w}" for k, w in sorted(doc["weights"].items(), key=lambda kv: -kv[1])) + ")"
    return ", ".join(f"{k} {'desc' if d == -1 else 'asc' if d == 1 else d}" for k, d in doc["key"].items())


def _options(doc: dict[str, Any]) -> str:
    opts = []
    if doc.get("unique"):
        opts.append("unique")
    if "partialFilterExpression" in doc:
        opts.append("partial " + ", ".join(f"`{k}` is a {next(iter(v.values()))}" if isinstance(v, dict) else f"`{k}`"
                                           for k, v in doc["partialFilterExpression"].items()))
    if "expireAfterSeconds" in doc:
        opts.append(f"TTL {doc['expireAfterSeconds']} s")
    return ", ".join(opts)


def declared_indexes(models: list[type[Document]], extra: dict[str, list[IndexModel]] | None = None
                     ) -> list[tuple[str, dict[str, Any]]]:
    """(collection, IndexModel.document) of every declared index, in model order."""
    extra = extra or {}
    out = []
    for model in models:
        coll = collection(model)
        for ix in [*declared_index_models(model), *extra.get(coll, [])]:
            out.append((coll, ix.document))
    return out


def index_section(models: list[type[Document]], queries: dict[tuple[str, str], str] | None = None,
                  extra: dict[str, list[IndexModel]] | None = None) -> str:
    """The Markdown index table; raises DocGenError for an index without queries or a stale entry."""
    queries = INDEX_QUERIES if queries is None else queries
    rows = declared_indexes(models, extra)
    declared = {(c, d["name"]) for c, d in rows}
    missing = sorted(f"{c}.{n}" for c, n in declared - set(queries))
    stale = sorted(f"{c}.{n}" for c, n in set(queries) - declared)
    if missing or stale:
        raise DocGenError(f"indexes without their queries in INDEX_QUERIES (app/docgen/indexes.py): {missing}; "
                          f"entries for indexes that are gone: {stale}")
    out = ["| collection | index | keys | options | queries it serves |", "|---|---|---|---|---|"]
    for coll, doc in rows:
        text = queries[(coll, doc["name"])].replace("|", "\\|")
        out.append(f"| `{coll}` | `{doc['name']}` | {_keys(doc)} | {_options(doc)} | {text} |")
    without = [collection(m) for m in models if not declared_index_models(m) and collection(m) not in (extra or {})]
    out += ["", f"{len(rows)} declared indexes. Every collection also has its `_id` index (look-ups by id, "
            "cursor pagination, newest-first lists). Collections read only by `_id`: "
            + ", ".join(f"`{c}`" for c in without) + "."]
    return "\n".join(out)
