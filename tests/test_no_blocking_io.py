"""No synchronous network I/O or sleeping on the event loop: an ``ast`` walk over the request-path code in
``app/`` refuses a synchronous Redis or MongoDB client, ``requests``, ``urllib.request``, a synchronous
``httpx`` client or call, ``smtplib``, ``time.sleep``, the synchronous ``limits`` storage/strategies (and
slowapi, which drives only those), and a direct call of the Cloudinary uploader (it must go through
``asyncio.to_thread``); and every call of the rate limits (coroutines) is awaited. Each checker is tested on a
sample that contains each form."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

# Modules never on a request path, each with the reason (command-line tools and the embedded server's
# process management, which runs before the app serves or after it stops).
NOT_REQUEST_PATH = {
    "cli.py": "command-line entry points (backup/restore use a synchronous MongoClient)",
    "core/backup.py": "`amour-florals backup/restore`, run from the command line",
    "core/embedded_mongo.py": "starts/stops the development database process, before serving and after",
    "core/nx_child.py": "the embedded database's child-process wrapper",
}

BANNED_MODULES = {
    "requests": "requests (synchronous HTTP)",
    "urllib.request": "urllib.request (synchronous HTTP)",
    "http.client": "http.client (synchronous HTTP)",
    "smtplib": "smtplib (synchronous SMTP; use aiosmtplib)",
    "slowapi": "slowapi (drives the synchronous limits storage)",
    "limits.storage": "synchronous limits storage (use limits.aio.storage)",
    "limits.strategies": "synchronous limits strategies (use limits.aio.strategies)",
    "redis.client": "synchronous Redis client (use redis.asyncio)",
    "redis.cluster": "synchronous Redis cluster client (use redis.asyncio)",
    "redis.sentinel": "synchronous Redis sentinel client (use redis.asyncio)",
}
# ``from <module> import <name>`` that bring a blocking client or call.
BANNED_NAMES = {
    ("redis", "Redis"), ("redis", "StrictRedis"), ("redis", "from_url"), ("redis", "RedisCluster"),
    ("pymongo", "MongoClient"), ("httpx", "Client"), ("httpx", "get"), ("httpx", "post"), ("httpx", "put"),
    ("httpx", "patch"), ("httpx", "delete"), ("httpx", "request"), ("httpx", "stream"), ("time", "sleep"),
}
# Calls through a module attribute: (module, attribute).
BANNED_CALLS = BANNED_NAMES | {("cloudinary.uploader", "*")}


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def blocking_uses(source: str, filename: str = "<sample>") -> list[str]:
    """``"file:line: what"`` for each blocking import or call in ``source``."""
    found: list[str] = []
    aliases: dict[str, str] = {}  # local name -> module it stands for

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{node.lineno}: {what}")

    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                aliases[local] = alias.name if alias.asname else local
                for mod, why in BANNED_MODULES.items():
                    if alias.name == mod or alias.name.startswith(mod + "."):
                        flag(node, why)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for mod, why in BANNED_MODULES.items():
                if node.module == mod or node.module.startswith(mod + "."):
                    flag(node, why)
            for alias in node.names:
                if (node.module, alias.name) in BANNED_NAMES:
                    flag(node, f"from {node.module} import {alias.name} (blocking)")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if not name or "." not in name:
            continue
        first, _, rest = name.partition(".")
        parts = [*aliases.get(first, first).split("."), *rest.split(".")]
        for i in range(1, len(parts)):  # redis.Redis.from_url: ("redis", "Redis") is what blocks
            module = ".".join(parts[:i])
            if (module, parts[i]) in BANNED_CALLS or (module, "*") in BANNED_CALLS:
                flag(node, f"{name}(...) blocks the event loop")
                break
    return found


def test_the_checker_finds_every_blocking_form():
    sample = "\n".join([
        "import requests",
        "import smtplib",
        "import time",
        "import time as clock",
        "import httpx",
        "import redis",
        "import cloudinary.uploader",
        "from redis import Redis",
        "from pymongo import MongoClient",
        "from limits.storage import RedisStorage",
        "from limits.strategies import MovingWindowRateLimiter",
        "from slowapi import Limiter",
        "from time import sleep",
        "async def handler():",
        "    time.sleep(0.1)",
        "    clock.sleep(1)",
        "    httpx.Client().get('http://x')",
        "    httpx.get('http://x')",
        "    redis.Redis.from_url('redis://x')",
        "    redis.from_url('redis://x')",
        "    cloudinary.uploader.upload(b'')",
    ])
    found = blocking_uses(sample)
    lines = sorted({int(f.split(":")[1]) for f in found})
    # every line but the harmless imports (time, httpx, redis, cloudinary.uploader) and the def line
    assert lines == [1, 2, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 21], found


def test_the_checker_accepts_the_asyncio_forms():
    sample = "\n".join([
        "import asyncio",
        "import aiosmtplib",
        "import httpx",
        "import cloudinary.uploader",
        "from redis.asyncio import Redis",
        "from redis.exceptions import RedisError",
        "from pymongo import AsyncMongoClient",
        "from limits.aio.storage import RedisStorage",
        "from limits.aio.strategies import MovingWindowRateLimiter",
        "async def handler():",
        "    await asyncio.sleep(0.1)",
        "    async with httpx.AsyncClient() as c:",
        "        await c.get('http://x')",
        "    await asyncio.to_thread(cloudinary.uploader.upload, b'')",
        "    await Redis.from_url('redis://x').get('k')",
    ])
    assert blocking_uses(sample) == []


def test_request_path_code_does_no_blocking_io():
    files = sorted(APP.rglob("*.py"))
    assert len(files) > 50
    found: list[str] = []
    for path in files:
        rel = path.relative_to(APP).as_posix()
        if rel in NOT_REQUEST_PATH:
            continue
        found += blocking_uses(path.read_text(encoding="utf-8"), f"app/{rel}")
    assert found == [], "blocking I/O on the event loop:\n" + "\n".join(found)


def unawaited_limits(source: str, filename: str = "<sample>") -> list[str]:
    """``"file:line"`` of each call of ``app.core.ratelimit``'s coroutines (``hit``, ``count_failures``) that is
    not awaited (``await hit(...)``, ``async with count_failures(...)``): an unawaited one limits nothing."""
    tree = ast.parse(source, filename)
    names = {alias.asname or alias.name for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and node.module == "app.core.ratelimit"
             for alias in node.names if alias.name in ("hit", "count_failures")}
    awaited = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Await)}
    awaited |= {id(item.context_expr) for node in ast.walk(tree) if isinstance(node, ast.AsyncWith)
                for item in node.items}
    return [f"{filename}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names
            and id(node) not in awaited]


def test_the_limit_checker_finds_an_unawaited_limit():
    sample = "\n".join([
        "from app.core.ratelimit import count_failures, hit",
        "async def a(request):",
        "    hit(request, '5/minute', 'k')",
        "    await hit(request, '5/minute', 'k')",
        "    with count_failures(request, []):",
        "        pass",
        "    async with count_failures(request, []):",
        "        pass",
    ])
    assert unawaited_limits(sample) == ["<sample>:3", "<sample>:5"]


def test_every_rate_limit_is_awaited():
    found = [hit for path in sorted(APP.rglob("*.py"))
             for hit in unawaited_limits(path.read_text(encoding="utf-8"), f"app/{path.relative_to(APP).as_posix()}")]
    assert found == [], "rate limits called without await (they would limit nothing):\n" + "\n".join(found)
