// Live stock and order status over Server-Sent Events — no build step, no library.
// Contract: GET /api/v1/events/stock?product_id=… (public) sends `stock` events, first the current
// availability of every size, then each change; POST /api/v1/events/tickets gives a single-use ticket for
// GET /api/v1/events/orders/{id}?ticket=…, which sends `order` events (current status first). Every
// stream may send `end` {reason}: "revoked" means stop; anything else means reconnect (the server sends
// the current state again, so nothing is missed).
const params = new URLSearchParams(location.search);
const API = (params.get("api") || "http://127.0.0.1:8000").replace(/\/$/, "");
document.getElementById("api").textContent = API;

const logBox = document.getElementById("log");
function log(text) {
  const line = document.createElement("div");
  line.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  logBox.prepend(line);
}

// --- live stock -----------------------------------------------------------------------------------
async function showProducts() {
  const r = await fetch(`${API}/api/v1/products?limit=6&sort=popular`);
  const page = await r.json();
  const grid = document.getElementById("products");
  for (const p of page.items) {
    const card = document.createElement("div");
    card.className = "card";
    card.innerHTML = `<h3></h3>`;
    card.querySelector("h3").textContent = p.name;
    for (const s of p.sizes) {
      const row = document.createElement("div");
      row.className = "size";
      row.id = `stock-${p.id}-${s.code}`;
      row.innerHTML = `<span></span><b></b>`;
      row.firstChild.textContent = s.name;
      card.append(row);
      render({ product_id: p.id, size: s.code, available: s.available, in_stock: s.in_stock }, false);
    }
    grid.append(card);
  }
  openStock(page.items.map((p) => p.id));
}

function render(stock, flash = true) {
  const row = document.getElementById(`stock-${stock.product_id}-${stock.size}`);
  if (!row) return;
  const cell = row.querySelector("b");
  cell.textContent = stock.in_stock ? `${stock.available} left` : "sold out";
  cell.className = stock.in_stock ? "in" : "out";
  if (flash) { row.classList.remove("flash"); void row.offsetWidth; row.classList.add("flash"); }
}

function openStock(ids) {
  const state = document.getElementById("stock-state");
  const url = `${API}/api/v1/events/stock?` + ids.map((id) => `product_id=${id}`).join("&");
  const source = new EventSource(url);   // reconnects by itself; each connection starts with the current state
  source.onopen = () => { state.textContent = "live"; };
  source.onerror = () => { state.textContent = "reconnecting"; };
  source.addEventListener("stock", (e) => {
    const stock = JSON.parse(e.data);
    render(stock);
    log(`stock ${stock.product_id} ${stock.size}: ${stock.available} (${stock.in_stock ? "in stock" : "sold out"})`);
  });
  source.addEventListener("end", (e) => log(`stock stream ended: ${JSON.parse(e.data).reason}; reconnecting`));
}

// --- an order's status ------------------------------------------------------------------------------
let auth = null;        // {Authorization: "Bearer …"} or {"X-Order-Token": "…"}
let orderSource = null;

async function ticketFor(orderId) {
  const r = await fetch(`${API}/api/v1/events/tickets`, {
    method: "POST", headers: { "Content-Type": "application/json", ...auth },
    body: JSON.stringify({ stream: "order", order_id: orderId }),
  });
  if (!r.ok) throw new Error(`ticket: ${r.status} ${(await r.json()).detail}`);
  return (await r.json()).url;
}

async function followOrder(orderId) {
  if (orderSource) orderSource.close();
  const state = document.getElementById("order-state");
  // A ticket opens one connection only: when the stream drops, EventSource's own retry would reuse it
  // and be refused, so every (re)connection asks for a fresh ticket.
  const source = (orderSource = new EventSource(API + (await ticketFor(orderId))));
  source.onopen = () => { state.textContent = "live"; };
  source.addEventListener("order", (e) => {
    const o = JSON.parse(e.data);
    document.getElementById("number").textContent = o.number;
    document.getElementById("status").textContent = o.status.replaceAll("_", " ");
    document.getElementById("payment").textContent = `payment: ${o.payment_status}`;
    log(`order ${o.number}: ${o.status} / ${o.payment_status}`);
  });
  source.addEventListener("end", (e) => {
    const reason = JSON.parse(e.data).reason;
    source.close();
    log(`order stream ended: ${reason}`);
    state.textContent = reason === "revoked" ? "signed out" : "reconnecting";
    if (reason !== "revoked") setTimeout(() => followOrder(orderId), 1000);
  });
  source.onerror = () => {
    if (source !== orderSource) return;
    source.close();
    state.textContent = "reconnecting";
    setTimeout(() => followOrder(orderId).catch((err) => log(err.message)), 2000);
  };
}

document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  try {
    if (form.get("order_id") && form.get("order_token")) {
      auth = { "X-Order-Token": form.get("order_token") };
      return await followOrder(form.get("order_id"));
    }
    const r = await fetch(`${API}/api/v1/auth/login`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: form.get("email"), password: form.get("password") }),
    });
    if (!r.ok) throw new Error(`sign in: ${r.status}`);
    auth = { Authorization: `Bearer ${(await r.json()).tokens.access_token}` };
    const orders = await (await fetch(`${API}/api/v1/orders`, { headers: auth })).json();
    const select = document.getElementById("orders");
    select.innerHTML = "";
    for (const o of orders.items) select.add(new Option(`${o.number} (${o.status})`, o.id));
    select.hidden = orders.items.length === 0;
    select.onchange = () => followOrder(select.value);
    if (orders.items.length) await followOrder(orders.items[0].id);
    else log("this account has no orders");
  } catch (err) {
    log(err.message);
  }
});

showProducts().catch((err) => log(`cannot reach the API at ${API}: ${err.message}`));
if (params.has("signin")) document.querySelector("#login button").click();  // ?signin: follow an order at once
