"""The route table: method, path, auth and summary of every API route, read from the FastAPI app.

Auth comes from the route's dependency tree (router-level guards included): ``admin_user`` > ``staff_user``
> ``current_user`` > ``optional_user``; guest credentials from ``cart_token`` (``X-Cart-Token``) and the
header parameters a route declares (``X-Order-Token``, ``Idempotency-Key``, ``Stripe-Signature``).
``AUTH_NOTES`` covers routes that check credentials in their body (``/metrics``).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

AUTH_NOTES: dict[tuple[str, str], str] = {
    ("GET", "/metrics"): "`METRICS_TOKEN` bearer when set",
}

_ROLES = [("admin_user", "admin"), ("staff_user", "staff"), ("current_user", "bearer"),
          ("optional_user", "optional bearer")]
_HEADERS = {"x-order-token": "`X-Order-Token`", "idempotency-key": "`Idempotency-Key`"}


def _walk(dependant: Dependant) -> tuple[set[str], list[str]]:
    calls: set[str] = set()
    headers: list[str] = [p.alias for p in dependant.header_params]
    for sub in dependant.dependencies:
        calls.add(getattr(sub.call, "__name__", type(sub.call).__name__))
        c, h = _walk(sub)
        calls |= c
        headers += h
    return calls, headers


def auth_of(route: RouteContext, method: str, path: str) -> str:
    """The auth column of one route, e.g. ``staff`` or ``optional bearer + `X-Cart-Token```."""
    if (method, path) in AUTH_NOTES:
        return AUTH_NOTES[(method, path)]
    calls, headers = _walk(route.dependant)
    lowered = [h.lower() for h in headers]
    if "stripe-signature" in lowered:
        return "`Stripe-Signature`"
    role = next((label for name, label in _ROLES if name in calls), "public")
    extra = ["`X-Cart-Token`"] if "cart_token" in calls else []
    extra += [name for h, name in _HEADERS.items() if h in lowered]
    return " + ".join([role, *extra])


def routes(app: FastAPI) -> list[tuple[str, str, str, str, bool]]:
    """(method, path, auth, summary, in OpenAPI) of every API route, in the app's order."""
    out: list[tuple[str, str, str, str, bool]] = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute):
            continue
        # The context of an APIRoute always has these (they are None only for mounts); the route's own values
        # are there for the type checker.
        path, name, methods = ctx.path or route.path, ctx.name or route.name, ctx.methods or route.methods or set()
        doc = (ctx.endpoint.__doc__ or "").strip().splitlines()
        summary: str = ctx.summary or (doc[0] if doc else name.replace("_", " "))
        for method in sorted(methods - {"HEAD"}):
            out.append((method, path, auth_of(ctx, method, path), summary, bool(ctx.include_in_schema)))
    return out


def route_section(app: FastAPI) -> str:
    rows = routes(app)
    out = ["| method | path | auth | summary |", "|---|---|---|---|"]
    for method, path, auth, summary, public in rows:
        note = "" if public else " (not in the OpenAPI document)"
        text = summary.replace("|", "\\|")
        out.append(f"| {method} | `{path}` | {auth} | {text}{note} |")
    out += ["", f"{len(rows)} operations. `bearer`: any signed-in account; `staff`: staff or admin; "
            "`optional bearer`: guests too; `+ header`: the route also reads that header (a guest's "
            "credential, or the idempotency key). Every route but the health probes, `/metrics` and the webhook "
            "answers 429 past its rate limit."]
    return "\n".join(out)
