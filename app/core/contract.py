"""What a dependency adds to the published contract of every operation that uses it.

A dependency decorated with :func:`declares` carries a :class:`Contract`; the OpenAPI builder
(``app.core.openapi``) walks each operation's dependency tree and merges what it finds, so a new route
that depends on ``current_user`` documents 401 and the bearer security, one behind the admin router's guard
documents 403, one under the default rate limit documents 429 with ``Retry-After``, and so on — without any
annotation on the route itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

Security = Literal["required", "optional"]


@dataclass(frozen=True)
class Contract:
    """What using a dependency means for an operation.

    ``statuses``: error statuses it may answer (documented as problem+json).
    ``security``: ``"required"`` (a bearer token must be sent), ``"optional"`` (guests may call; a token that
    is sent must be valid) or None (says nothing about security).
    ``conditional``: the operation answers with ``ETag``/``Cache-Control`` and 304 on ``If-None-Match``.
    ``note``: one sentence added to the operation's description (who may call it).
    """

    statuses: tuple[int, ...] = ()
    security: Security | None = None
    conditional: bool = False
    note: str | None = None


def declares(**fields: Any) -> Callable[[F], F]:
    """Decorator for a dependency callable: attach a :class:`Contract` built from ``fields``."""

    contract = Contract(**fields)

    def mark(fn: F) -> F:
        fn.__contract__ = contract  # type: ignore[attr-defined]  # a marker attribute on the endpoint function
        return fn

    return mark


def contract_of(call: Any) -> Contract | None:
    """The contract attached to a dependency callable, if any."""
    return getattr(call, "__contract__", None)
