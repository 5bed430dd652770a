"""Route matching with prefix guards (app/core/routing.py) answers exactly like FastAPI's own matching."""

from __future__ import annotations

import re

from starlette.routing import Match

from app.config import Settings
from app.core.routing import PrefixGuard
from app.main import create_app

EXTRA = ["/", "/api", "/api/v1", "/api/v1/", "/api/v1/nowhere", "/api/v1/products/x/", "/api/v1/adminx",
         "/api/v1/healthz", "/metrics", "/metricsx", "/docs", "/media/p/x.jpg", "/api/v1/users/me/favorites/x/y"]


def _scope(path: str, method: str) -> dict:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": b"", "headers": []}


def test_every_path_matches_as_without_the_guards():
    app = create_app(Settings(_env_file=None, environment="test"))
    guards = [r.__dict__["matches"] for r in app.router.routes if isinstance(r.__dict__.get("matches"), PrefixGuard)]
    assert len(guards) >= 12  # every router under /api/v1 and the metrics router
    templates = list(app.openapi()["paths"])
    paths = [re.sub(r"\{[^}]+\}", "x1", t) for t in templates] + EXTRA
    paths += [p.rstrip("/") if p.endswith("/") else p + "/" for p in paths]  # the redirect_slashes variants
    checked = 0
    for path in paths:
        for method in ("GET", "POST", "DELETE"):
            for guard in guards:
                assert guard(_scope(path, method))[0] == guard.inner(_scope(path, method))[0], (path, method)
                checked += 1
    assert checked > 3000

    # and the guards do skip: a health probe reaches one router's routes, not fifteen
    assert sum(g(_scope("/api/v1/health", "GET"))[0] != Match.NONE for g in guards) == 1
