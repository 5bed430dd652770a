"""Field-level diffs for the audit log: flatten a JSON view to dotted paths, drop secrets, compare.

``flatten`` turns ``{"sizes": [{"code": "std", "price": 5000}], "stock": {"std": 4}}`` into
``{"sizes": ["std"], "sizes.std.price": 5000, "stock.std": 4}``: objects become dotted paths; a list of
objects that all carry an ``id`` (or a ``code``) is keyed by it (the list itself keeps the keys' order, so a
reorder shows); other lists of objects are keyed by position (append-only histories); lists of scalars stay
whole. ``diff`` lists the paths whose values differ (missing = null).

Secrets never enter an entry, whatever the view holds: a path with a segment named in ``DENIED`` or
containing one of ``DENIED_PARTS`` (password, secret, token, hash) is dropped by ``redact``.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

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


def denied(path: str) -> bool:
    """True when a segment of ``path`` names a secret (``DENIED``) or contains password/secret/token/hash."""
    for segment in path.lower().split("."):
        if segment in DENIED or any(part in segment for part in DENIED_PARTS):
            return True
    return False


def select(flat: dict[str, Any], only: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """The paths of ``flat`` matching one of the ``only`` patterns (all when empty), none of the ``ignore``
    patterns (``fnmatch``: ``*`` also spans dots) and not ``denied``."""
    return {k: v for k, v in flat.items()
            if (not only or any(fnmatchcase(k, p) for p in only))
            and not any(fnmatchcase(k, p) for p in ignore) and not denied(k)}


def redact(value: Any) -> dict[str, Any]:
    """``flatten`` then drop denied paths: what a caller-supplied before/after may contribute."""
    return select(flatten(value))


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{"field", "before", "after"}]`` for every path whose value differs, sorted by path."""
    return [{"field": k, "before": before.get(k), "after": after.get(k)}
            for k in sorted(before.keys() | after.keys()) if before.get(k) != after.get(k) and not denied(k)]
