"""What the per-request session check costs: the access-token check before and after logout revocation.

    .venv/bin/python bench/auth_check.py [--n 500] [--rounds 3]

Every authenticated request loads its user by ``_id``; since logout revokes at once it also looks up the
token's session by ``_id`` (``session_is_live``), concurrently. This times, on one embedded database:
(a) the user lookup alone (before), (b) both lookups concurrently (now), (c) both one after the other.
Prints p50/p95/mean in milliseconds per check. The embedded server is not a database benchmark; on real
MongoDB both are single indexed point reads.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.embedded_mongo import EmbeddedMongo  # noqa: E402


async def main(n: int, rounds: int) -> None:
    from datetime import timedelta

    from app.config import Settings
    from app.core.clock import utcnow
    from app.models.auth import RefreshSession
    from app.models.db import connect
    from app.models.user import User
    from app.services.auth import session_is_live

    server = EmbeddedMongo(None)
    url = server.start()
    try:
        client = await connect(Settings(_env_file=None, mongodb_db="bench_auth"), url)
        users = [User(email=f"u{i}@example.com", first_name="U", last_name=str(i)) for i in range(200)]
        for u in users:
            await u.insert()
            await RefreshSession(user_id=u.id, family_id=f"fam_{u.id}", token_hash=u.id,
                                 expires_at=utcnow() + timedelta(days=30)).insert()
        sessions = {s.user_id: s.id async for s in RefreshSession.find_all()}
        target = users[100]
        sid = sessions[target.id]

        async def before():
            await User.get(target.id)

        async def now():
            await asyncio.gather(User.get(target.id), session_is_live(sid, target.id))

        async def sequential():
            await User.get(target.id)
            await session_is_live(sid, target.id)

        results: dict[str, list[float]] = {"(a) user only": [], "(b) user + session, concurrent": [],
                                           "(c) user + session, sequential": []}
        for _ in range(rounds):
            for name, fn in zip(results, (before, now, sequential), strict=True):
                for _ in range(n):
                    t = time.perf_counter()
                    await fn()
                    results[name].append((time.perf_counter() - t) * 1000)
        for name, xs in results.items():
            xs.sort()
            print(f"{name:34s} p50 {xs[len(xs) // 2]:6.2f} ms  p95 {xs[int(len(xs) * 0.95)]:6.2f} ms  "
                  f"mean {statistics.mean(xs):6.2f} ms")
        await client.drop_database("bench_auth")
        await client.close()
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    a = parser.parse_args()
    asyncio.run(main(a.n, a.rounds))
