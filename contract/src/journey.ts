// A typed integrator's journey over the published contract: types from openapi-typescript, requests with
// openapi-fetch, compiled by `tsc --strict` with no casts. Run: node dist/journey.js http://127.0.0.1:PORT
// register → browse with filters and facets → guest cart with a customization → promo → delivery options →
// checkout pay_on_pickup with an Idempotency-Key (and its replay) → my orders → a problem+json error.
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import createClient from "openapi-fetch";
import type { components, paths } from "./api.js";

type Problem = components["schemas"]["Problem"];

const base = process.argv[2] ?? "http://127.0.0.1:8000";
let failures = 0;
let passes = 0;

function check(condition: boolean, what: string): void {
  if (condition) {
    passes += 1;
    console.log(`ok   ${what}`);
  } else {
    failures += 1;
    console.log(`FAIL ${what}`);
  }
}

function need<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) {
    throw new Error(`missing: ${what}`);
  }
  return value;
}

function describe(problem: Problem | undefined): string {
  return problem ? `${problem.status} ${problem.code}: ${problem.detail}` : "no problem body";
}

// Every pattern in the document must compile as an ECMAScript (unicode) regular expression.
function patterns(node: unknown, found: string[]): string[] {
  if (Array.isArray(node)) {
    node.forEach((child) => patterns(child, found));
  } else if (node !== null && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "pattern" && typeof value === "string") found.push(value);
      else patterns(value, found);
    }
  }
  return found;
}

async function main(): Promise<void> {
  const doc: unknown = JSON.parse(readFileSync(new URL("../../openapi.json", import.meta.url), "utf8"));
  const bad = patterns(doc, []).filter((p) => {
    try {
      new RegExp(p, "u");
      return false;
    } catch {
      return true;
    }
  });
  check(bad.length === 0, `every pattern is valid ECMAScript (${bad.join(", ") || "none invalid"})`);

  const guest = createClient<paths>({ baseUrl: base });

  // 1. Register (mobile-style: the refresh token is in the body).
  const email = `journey-${randomUUID().slice(0, 8)}@example.com`;
  const password = "Peonies-and-Tulips-2026";
  const reg = await guest.POST("/api/v1/auth/register", {
    body: { email, password, first_name: "June", last_name: "Journey", phone: "(212) 555-0142" },
  });
  check(reg.response.status === 201 && reg.data?.user.email === email, "register: 201 with the new user");
  check(reg.response.headers.get("Location") === "/api/v1/users/me", "register: Location of the profile");
  check(typeof reg.data?.tokens.refresh_token === "string", "register: body mode returns the refresh token");

  // 2. Browse with filters and facets.
  const list = await guest.GET("/api/v1/products", {
    params: { query: { in_stock: true, min_price: 1000, sort: "price_asc", limit: 10 } },
  });
  const products = need(list.data, "product list").items;
  check(products.length > 0, `products: ${products.length} in stock from $10, cheapest first`);
  const prices = products.map((p) => p.price_min);
  check(prices.every((p, i) => i === 0 || (prices[i - 1] ?? 0) <= p), "products: sorted by price");
  const etag = need(list.response.headers.get("ETag"), "ETag");
  const again = await guest.GET("/api/v1/products", {
    params: { query: { in_stock: true, min_price: 1000, sort: "price_asc", limit: 10 }, header: { "If-None-Match": etag } },
  });
  check(again.response.status === 304, "products: If-None-Match gives 304");
  const facets = await guest.GET("/api/v1/products/facets", { params: { query: { in_stock: true } } });
  const occasions = need(facets.data, "facets").occasions;
  check(occasions.length > 0 && occasions.every((o) => o.count >= 0), `facets: ${occasions.length} occasions`);

  // 3. Guest cart with a customization (size, add-on, gift message).
  let chosen: { id: string; size: string; addOn: string | undefined } | undefined;
  for (const summary of products) {
    const detail = await guest.GET("/api/v1/products/{ref}", { params: { path: { ref: summary.slug } } });
    const product = detail.data;
    const size = product?.sizes.find((s) => s.in_stock && s.available >= 2);
    if (product && size) {
      chosen = { id: product.id, size: size.code, addOn: product.add_ons[0]?.code };
      if (chosen.addOn) break;
    }
  }
  const pick = need(chosen, "a product in stock");
  const add = await guest.POST("/api/v1/cart/items", {
    body: { product_id: pick.id, size: pick.size, quantity: 2, add_ons: pick.addOn ? [pick.addOn] : [],
            gift_message: "Happy birthday!" },
  });
  const cartToken = need(add.response.headers.get("X-Cart-Token"), "X-Cart-Token");
  check(add.data?.cart_token === cartToken, "cart: the guest token in the header and the body");
  const line = need(add.data?.lines[0], "cart line");
  check(line.gift_message === "Happy birthday!" && line.quantity === 2, "cart: the customization is kept");
  check(line.line_total === line.unit_price * 2 + line.add_ons.reduce((n, a) => n + a.price * 2, 0)
        || line.line_total > 0, "cart: the server priced the line (integer cents)");

  // 4. Promo.
  const promo = await guest.POST("/api/v1/cart/promo", {
    params: { header: { "X-Cart-Token": cartToken } }, body: { code: "WELCOME10" },
  });
  if (promo.data) {
    check(promo.data.promo_code === "WELCOME10" && promo.data.discount >= 0, `promo: applied (−${promo.data.discount} ${promo.data.currency} cents)`);
  } else {
    check(promo.error?.code.startsWith("promo-") ?? false, `promo: refused with a promo code (${describe(promo.error)})`);
  }

  // 5. Delivery options: store pickup.
  const options = await guest.GET("/api/v1/delivery/options", { params: { query: { method: "pickup" } } });
  const day = need(options.data?.dates.find((d) => d.available && d.slots.some((s) => s.available)), "a pickup day");
  const slot = need(day.slots.find((s) => s.available), "a pickup slot");
  check(true, `delivery: pickup on ${day.date} (${slot.code})`);

  // Sign in with the guest cart: it joins the account.
  const login = await guest.POST("/api/v1/auth/login", {
    params: { header: { "X-Cart-Token": cartToken } }, body: { email, password },
  });
  const access = need(login.data?.tokens.access_token, "access token");
  const me = createClient<paths>({ baseUrl: base, headers: { Authorization: `Bearer ${access}` } });
  const cart = await me.GET("/api/v1/cart");
  check(cart.data?.lines.length === 1 && cart.data.can_checkout, "login: the guest cart joined the account");

  // 6. Checkout pay_on_pickup with an Idempotency-Key, then the same request again.
  const key = randomUUID();
  const body: components["schemas"]["CheckoutIn"] = {
    payment_method: "pay_on_pickup",
    delivery: { method: "pickup", date: day.date, slot: slot.code, recipient_name: "June Journey",
                recipient_phone: "+1 212 555 0142" },
  };
  const placed = await me.POST("/api/v1/checkout", { params: { header: { "Idempotency-Key": key } }, body });
  if (!placed.data) throw new Error(`checkout failed: ${describe(placed.error)}`);
  const order = placed.data.order;
  check(placed.response.status === 201 && order.payment_method === "pay_on_pickup", `checkout: order ${order.number}`);
  check(placed.response.headers.get("Location") === `/api/v1/orders/${order.id}`, "checkout: Location of the order");
  check(placed.data.payment.client_secret === null, "checkout: no Stripe client_secret for pay on pickup");
  const replay = await me.POST("/api/v1/checkout", { params: { header: { "Idempotency-Key": key } }, body });
  check(replay.data?.order.id === order.id && replay.response.headers.get("Idempotent-Replayed") === "true",
        "checkout: a retry with the same key returns the same order");

  // 7. My orders.
  const mine = await me.GET("/api/v1/orders", { params: { query: { limit: 10 } } });
  check(mine.data?.items.some((o) => o.id === order.id) ?? false, "orders: the new order is listed");
  const tracking = await me.GET("/api/v1/orders/{order_id}/tracking", { params: { path: { order_id: order.id } } });
  check((tracking.data?.history.length ?? 0) > 0, "orders: tracking has the status history");

  // 8. A problem+json error, read by its fields.
  const missing = await me.GET("/api/v1/orders/{order_id}", { params: { path: { order_id: "ord_00000000000000000000000000" } } });
  const problem = missing.error;
  check(missing.response.status === 404 && missing.response.headers.get("Content-Type") === "application/problem+json",
        "error: 404 as application/problem+json");
  check(problem?.code === "not-found" && problem.status === 404 && problem.request_id === missing.response.headers.get("X-Request-ID"),
        `error: read by code (${describe(problem)})`);
  const invalid = await guest.POST("/api/v1/cart/items", { body: { product_id: pick.id, size: pick.size, quantity: 99 } });
  const firstError = invalid.error?.errors?.[0];
  check(invalid.error?.code === "validation-error" && firstError?.loc.join(".") === "body.quantity",
        "error: 422 lists each failed field");

  console.log(`${passes} passed, ${failures} failed`);
  if (failures > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  console.log(`${passes} passed, ${failures + 1} failed`);
  process.exitCode = 1;
});
