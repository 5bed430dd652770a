"""Field-level diffs for the audit log: flatten a JSON view to dotted paths, drop secrets, compare.

``flatten`` turns ``{"sizes": [{"code": "std", "price": 5000}], "stock": {"std": 4}}`` into
``{"sizes": ["std"], "sizes.std.price": 5000, "stock.std": 4}``: objects become dotted paths; a list of
objects that all carry an ``id`` (or a ``code``) is keyed by it (the list itself keeps the keys' order, so a
reorder shows); other lists of objects are keyed by position (append-only histories); lists of scalars stay
whole. ``diff`` lists the paths whose values differ (missing = null).

Secrets never enter an entry, whatever the view holds. A target's admin view (a pydantic model) is dumped by
``public_dump``, which leaves out every *field* whose name is a secret (``secret_name``: named in ``DENIED`` or
containing one of ``DENIED_PARTS`` — password, secret, token, hash) at any depth, while the keys of its
dict-typed fields (data chosen by staff, such as a size code) are kept whatever they spell: a size named
``secret`` is audited like any other. A plain dict handed to ``audit.record`` carries no field names to tell
apart, so ``redact`` drops every path with a segment that is a secret name.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel

# Segment names never written to the audit log (also when a view or a caller of audit.record passes them).
DENIED = frozenset({
    "password", "password_hash", "new_password", "current_password", "access_token_hash", "token", "token_hash",
    "tokens_valid_after", "security_stamp", "secret", "client_secret", "api_key", "api_secret", "access_token",
    "refresh_token", "idempotency_key", "request_hash", "storage_key", "signature",
})
DENIED_PARTS = ("password", "secret", "token", "hash")

_KEYS = ("id", "code")


def _list_key(items: list[Any]) -> str | None:
    for key in _KEYS:
        if items and all(isinstance(i, dict) and isinstance(i.get(key), str | int) for i in items):
            values = [i[key] for i in items]
            if len(set(values)) == len(values):
                return key
    return None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths -> JSON scalars (or lists of scalars) of a JSON-mode value (see the module docstring)."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
        key = _list_key(value)
        if key is not None:
            out[prefix] = [i[key] for i in value]
            for item in value:
                out.update(flatten({k: v for k, v in item.items() if k != key}, f"{prefix}.{item[key]}"))
        else:
            for n, item in enumerate(value):
                out.update(flatten(item, f"{prefix}.{n}"))
        return out
    out[prefix] = value
    return out


def secret_name(name: str) -> bool:
    """True when a field name names a secret (``DENIED``) or contains password/secret/token/hash."""
    name = name.lower()
    return name in DENIED or any(part in name for part in DENIED_PARTS)


def denied(path: str) -> bool:
    """True when a segment of ``path`` is a ``secret_name`` (paths of plain dicts, see ``redact``)."""
    return any(secret_name(segment) for segment in path.split("."))


def public_dump(model: BaseModel) -> dict[str, Any]:
    """``model.model_dump(mode="json")`` without the fields whose name is a ``secret_name``, at any depth (in
    nested models, and in the values of lists and dicts); the keys of dict-typed fields are data and are kept."""
    out: dict[str, Any] = _public(model, model.model_dump(mode="json"))
    return out


def _public(value: Any, dumped: Any) -> Any:
    if isinstance(value, BaseModel) and isinstance(dumped, dict):
        return {k: _public(getattr(value, k, None), v) for k, v in dumped.items() if not secret_name(k)}
    if isinstance(value, dict) and isinstance(dumped, dict) and len(value) == len(dumped):
        # the same keys in the same order (the dump keeps them): the keys are data, the values may be models
        return {k: _public(v, d) for (k, d), v in zip(dumped.items(), value.values(), strict=True)}
    if isinstance(value, list | tuple) and isinstance(dumped, list) and len(value) == len(dumped):
        return [_public(v, d) for v, d in zip(value, dumped, strict=True)]
    return dumped


def select(flat: dict[str, Any], only: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """The paths of ``flat`` matching one of the ``only`` patterns (all when empty) and none of the ``ignore``
    patterns (``fnmatch``: ``*`` also spans dots)."""
    return {k: v for k, v in flat.items()
            if (not only or any(fnmatchcase(k, p) for p in only)) and not any(fnmatchcase(k, p) for p in ignore)}


def redact(value: Any) -> dict[str, Any]:
    """``flatten`` a plain JSON-able dict, then drop every ``denied`` path: what a caller-supplied before/after
    (``audit.record``) may contribute."""
    return {k: v for k, v in flatten(value).items() if not denied(k)}


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{"field", "before", "after"}]`` for every path whose value differs, sorted by path (both sides are
    already free of secrets: ``public_dump`` or ``redact``)."""
    return [{"field": k, "before": before.get(k), "after": after.get(k)}
            for k in sorted(before.keys() | after.keys()) if before.get(k) != after.get(k)]
