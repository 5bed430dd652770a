"""The ERD: every Beanie collection, its top-level fields and its string-id references (Mermaid ``erDiagram``).

Documents reference each other by prefixed string id (never ``Link``/DBRef, which the embedded server
cannot store), so references are found by name: a field (also inside sub-documents and lists of them)
whose name ends in ``_id``/``_ids`` points at the document class of that stem (``product_id`` ->
``Product``), unless ``REFERENCES`` says otherwise. ``REFERENCES`` also names id-holding fields with
other names (``favorites``, ``ancestors``). A ``*_id`` field that neither resolves nor is listed is a
DocGenError: say in ``REFERENCES`` what it points at, or that it points at nothing stored here.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from beanie import Document
from pydantic import BaseModel
from pymongo import IndexModel

from app.docgen.errors import DocGenError

# (collection, dotted field path) -> the collection it references ("?" after it: not always, e.g. a
# slot's scope is a zone id or "pickup"), or "-" + why it is not drawn. "_id" as the path: the document's
# own id is another document's id (one per that document).
REFERENCES: dict[tuple[str, str], str] = {
    ("refresh_sessions", "family_id"): "- groups the rotations of one sign-in; no document of its own",
    ("refresh_sessions", "replaced_by"): "refresh_sessions",
    ("stream_tickets", "family_id"): "- the refresh-session family of the access token that asked for it",
    ("stream_tickets", "order_id"): "orders?",
    ("categories", "parent_id"): "categories",
    ("categories", "ancestors"): "categories",
    ("products", "category_path"): "categories",
    ("stock_movements", "actor_id"): "users",
    ("stock_movements", "ref"): "orders",
    ("reviews", "hidden_by"): "users",
    ("users", "favorites"): "products",
    ("delivery_slot_usage", "scope"): "delivery_zones?",
    ("delivery_slot_usage", "holds"): "orders",
    ("promo_customer_uses", "promo_id"): "promo_codes",
    ("promo_redemptions", "_id"): "orders",
    ("promo_redemptions", "promo_id"): "promo_codes",
    ("carts", "promo_code"): "promo_codes",
    ("orders", "promo_code"): "promo_codes",
    ("orders", "delivery.zone_id"): "delivery_zones",
    ("orders", "payment_intent_id"): "- Stripe PaymentIntent id (external)",
    ("orders", "refunds.stripe_refund_id"): "- Stripe Refund id (external)",
    ("audit_log", "actor_id"): "users?",
    ("audit_log", "target_id"): "- the changed document, in the collection named by target_type",
    ("audit_log", "request_id"): "- the X-Request-ID of the request that made the change",
    ("analytics_events", "events.visitor_id"): "- the storefront's anonymous visitor token (X-Visitor-Id)",
    ("analytics_events", "orders"): "orders",
    ("analytics_product_views", "product_id"): "products",
    ("analytics_product_views", "viewers"): "- shoppers: `v:` + the storefront's visitor token, or `u:` + a user id",
    ("orders", "rollup.counted.day_id"): "sales_days",
    ("orders", "rollup.pending.figures.day_id"): "sales_days",
}


@dataclass(frozen=True)
class Ref:
    source: str
    path: str
    target: str  # a collection, or "-why" when not drawn
    many: bool  # the source holds a list of them
    optional: bool
    unique: bool


def collection(model: type[Document]) -> str:
    """The collection a document model declares (``Settings.name``)."""
    name: str = model.Settings.name  # each model's own inner class (typed Any: pydantic's metaclass __getattr__)
    return name


def declared_index_models(model: type[Document]) -> list[IndexModel]:
    """The indexes a document model declares (``Settings.indexes``; [] when it declares none)."""
    indexes: list[IndexModel] = getattr(model.Settings, "indexes", None) or []
    return indexes


def _unwrap(annotation: Any) -> tuple[Any, bool, bool]:
    """(inner type, is a list, may be None) of a field annotation."""
    optional = many = False
    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Annotated:
            annotation = args[0]
        elif origin in (typing.Union, types.UnionType):
            non_none = [a for a in args if a is not type(None)]
            optional = optional or len(non_none) < len(args)
            annotation = non_none[0] if len(non_none) == 1 else Any
        elif origin in (list, set, tuple, frozenset):
            many = True
            annotation = args[0] if args else Any
        else:
            return annotation, many, optional


def type_name(annotation: Any) -> str:
    """A one-word Mermaid attribute type: ``string``, ``int``, ``datetime``, an enum or sub-document class
    name, ``map``; ``[]`` marks a list."""
    inner, many, _ = _unwrap(annotation)
    if isinstance(inner, type) and issubclass(inner, Enum):
        name = inner.__name__
    elif isinstance(inner, type) and issubclass(inner, BaseModel):
        name = inner.__name__
    elif typing.get_origin(inner) is dict or inner is dict:
        name = "map"
    else:
        name = {str: "string", int: "int", float: "float", bool: "bool", datetime: "datetime"}.get(inner, "any")
    return name + ("[]" if many else "")


def fields(model: type[BaseModel], prefix: str = "", many: bool = False, optional: bool = False
           ) -> Iterator[tuple[str, Any, bool, bool]]:
    """Yield (dotted path, annotation, inside-or-is a list, may be None) for every stored field, recursing
    into sub-documents. Excluded fields (Beanie's ``revision_id``) are skipped."""
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        stored = "_id" if name == "id" and not prefix else name
        inner, is_list, is_opt = _unwrap(info.annotation)
        path = prefix + stored
        yield path, info.annotation, many or is_list, optional or is_opt
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from fields(inner, path + ".", many or is_list, optional or is_opt)


def _unique_single_keys(model: type[Document]) -> set[str]:
    out = set()
    for ix in declared_index_models(model):
        keys = list(ix.document["key"])
        if ix.document.get("unique") and len(keys) == 1:
            out.add(keys[0])
    return out


def references(models: list[type[Document]], explicit: dict[tuple[str, str], str] | None = None) -> list[Ref]:
    """Every reference of ``models``; raises DocGenError for an unresolved ``*_id`` field or a stale entry."""
    explicit = REFERENCES if explicit is None else explicit
    by_class = {m.__name__.lower(): collection(m) for m in models}
    names = {collection(m) for m in models}
    refs: list[Ref] = []
    problems: list[str] = []
    used: set[tuple[str, str]] = set()
    for model in models:
        coll = collection(model)
        unique = _unique_single_keys(model)
        for path, _, many, optional in fields(model):
            key = (coll, path)
            leaf = path.rsplit(".", 1)[-1]
            if key in explicit:
                target = explicit[key]
                used.add(key)
                if target.endswith("?"):
                    target, optional = target[:-1], True
            elif path != "_id" and (leaf.endswith("_id") or leaf.endswith("_ids")):
                stem = leaf[: -len("_ids")] if leaf.endswith("_ids") else leaf[: -len("_id")]
                if stem not in by_class:
                    problems.append(f"{coll}.{path}: what does it reference? Add ({coll!r}, {path!r}) to "
                                    "REFERENCES in app/docgen/erd.py (a collection, or '- why not drawn').")
                    continue
                target = by_class[stem]
            else:
                continue
            if not target.startswith("-") and target not in names:
                problems.append(f"{coll}.{path} references {target!r}, which is not a collection")
                continue
            refs.append(Ref(coll, path, target, many, optional, path in unique or path == "_id"))
    stale = sorted(f"{c}.{p}" for c, p in set(explicit) - used if c in names)
    if stale:
        problems.append(f"REFERENCES names fields that no longer exist: {stale}")
    if problems:
        raise DocGenError("\n".join(problems))
    return refs


def _cardinality(ref: Ref) -> str:
    left = "|o" if ref.optional else "||"
    if ref.many:
        return "}o--o{"
    return left + ("--o|" if ref.unique else "--o{")


def erd_mermaid(models: list[type[Document]], explicit: dict[tuple[str, str], str] | None = None) -> str:
    refs = references(models, explicit)
    drawn = [r for r in refs if not r.target.startswith("-")]
    lines = ["```mermaid", "erDiagram"]
    for model in models:
        coll = collection(model)
        fk = {r.path.split(".")[0]: r for r in drawn if r.source == coll}
        unique = _unique_single_keys(model)
        lines.append(f"    {coll} {{")
        for name, info in model.model_fields.items():
            if info.exclude:
                continue
            stored = "_id" if name == "id" else name
            keys = [k for k, cond in (("PK", stored == "_id"), ("FK", stored in fk), ("UK", stored in unique)) if cond]
            attr = f"        {type_name(info.annotation)} {stored}"
            if keys:
                attr += " " + ", ".join(keys)
            notes = [f"{r.path} to {r.target}" for r in drawn if r.source == coll and r.path.split(".")[0] == stored
                     and r.path != stored]
            if notes:
                attr += f' "{"; ".join(notes)}"'
            lines.append(attr)
        lines.append("    }")
    for r in drawn:
        lines.append(f'    {r.target} {_cardinality(r)} {r.source} : "{r.path}"')
    lines.append("```")
    return "\n".join(lines)


def erd_section(models: list[type[Document]], explicit: dict[tuple[str, str], str] | None = None) -> str:
    """The ERD plus a table of id-holding fields that are not drawn (external ids, groupings)."""
    refs = references(models, explicit)
    out = [erd_mermaid(models, explicit), "",
           f"{len(models)} collections; every `_id` is a prefixed string id. Ids not drawn as relationships:", "",
           "| collection | field | what it holds |", "|---|---|---|"]
    out += [f"| `{r.source}` | `{r.path}` | {r.target[1:].strip()} |" for r in refs if r.target.startswith("-")]
    return "\n".join(out)
