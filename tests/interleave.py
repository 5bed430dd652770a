"""Races made deterministic: run a competing actor at an exact point of the code under test.

``interleave(monkeypatch, Owner, "method", actor)`` wraps ``Owner.method`` (an async function or classmethod)
so that the real method runs, then ``actor()`` runs — a second request, an admin change — before the caller
sees the result, on the first ``times`` calls. Nothing is faked: both sides run the real code against the
real database; only the order of their steps is fixed, so a test asserts one outcome, not "either".
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest


def interleave(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, actor: Callable[[], Awaitable[Any]],
               *, times: int = 1, skip: int = 0) -> list[Any]:
    """Patch ``owner.name`` for this test; the actor runs after calls ``skip + 1`` to ``skip + times``.
    Returns the list of the actor's results (one per interleaving)."""
    raw = inspect.getattr_static(owner, name)
    is_classmethod = isinstance(raw, classmethod)
    is_staticmethod = isinstance(raw, staticmethod)
    original = getattr(owner, name)
    done: list[Any] = []
    state = {"calls": 0, "acting": False}

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if is_classmethod:
            args = args[1:]  # getattr(owner, name) is already bound to the class
        result = await original(*args, **kwargs)
        if state["acting"]:  # the actor's own calls of the method run plainly
            return result
        state["calls"] += 1
        if skip < state["calls"] <= skip + times:
            state["acting"] = True
            try:
                done.append(await actor())
            finally:
                state["acting"] = False
        return result

    if is_classmethod:
        monkeypatch.setattr(owner, name, classmethod(wrapper))
    elif is_staticmethod:
        monkeypatch.setattr(owner, name, staticmethod(wrapper))
    else:
        monkeypatch.setattr(owner, name, wrapper)
    return done
