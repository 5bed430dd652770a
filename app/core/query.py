"""Query-string models parsed directly with pydantic (a hot-path alternative to ``Annotated[M, Query()]``).

FastAPI's per-field handling of query models costs more than the rest of a cached catalog request, so
public list endpoints validate ``request.query_params`` against the model in one call. The parameters
are still documented in OpenAPI (``openapi_extra``), and errors are the usual 422 problem+json.
"""

from __future__ import annotations

from typing import Any, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.utils import get_flat_params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from app.core.contract import declares


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(get_origin(a) is list for a in get_args(annotation))


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


class QueryModel:
    """``Depends(QueryModel(M))`` gives a validated ``M``; ``QueryModel(M).openapi`` documents it."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        self.lists = {name for name, f in model.model_fields.items() if _is_list(f.annotation)}
        schema = model.model_json_schema()
        defs = schema.get("$defs", {})
        self.openapi = {"parameters": [
            {"name": name, "in": "query", "required": False, "description": prop.get("description"),
             "schema": _inline(prop, defs), **({"style": "form", "explode": True} if name in self.lists else {})}
            for name, prop in schema["properties"].items()
        ]}

    async def __call__(self, request: Request) -> Any:
        data: dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            if key in self.lists:
                data.setdefault(key, []).append(value)
            else:
                data.setdefault(key, value)
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
            ) from None


def declared_query_names(route: APIRoute) -> frozenset[str]:
    """The query parameter names ``route`` declares: its (flattened) dependency tree's query parameters and
    the ``openapi_extra`` parameters of a :class:`QueryModel`. Computed once per route and kept on it (not in
    a table keyed by ``id(route)``, which a later route of another app could reuse)."""
    names: frozenset[str] | None = getattr(route, "_declared_query_names", None)
    if names is None:
        extra = (route.openapi_extra or {}).get("parameters", [])
        names = frozenset({f.alias for f in get_flat_params(route.dependant)}
                          | {p["name"] for p in extra if p.get("in") == "query"})
        route._declared_query_names = names  # type: ignore[attr-defined]  # memoised on the route object
    return names


# ``openapi_extra`` of a route opened from an email link (a browser GET that only redirects): the query
# parameters that link trackers and safe-link rewriters add (``utm_source``…) are ignored, not refused.
EMAIL_LINK: dict[str, object] = {"x-extra-query": "ignored"}


@declares(statuses=(422,))
async def known_query_parameters(request: Request) -> None:
    """Refuse a query parameter the operation does not declare: 422 ``validation-error`` with
    ``loc = ["query", <name>]`` and type ``extra_forbidden`` — as the list models (``extra="forbid"``) do, so a
    misspelt filter (``?colour=red``) is never silently ignored on any endpoint (except the redirects of email
    links, ``EMAIL_LINK``)."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or (route.openapi_extra or {}).get("x-extra-query") == "ignored":
        return
    known = declared_query_names(route)
    unknown = [key for key in dict.fromkeys(request.query_params.keys()) if key not in known]
    if unknown:
        raise RequestValidationError([
            {"type": "extra_forbidden", "loc": ("query", key), "msg": "Extra inputs are not permitted",
             "input": request.query_params.get(key)} for key in unknown])
